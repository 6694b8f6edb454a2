#!/bin/sh
# getDate: every call in your scope between two days (dd/mm/yyyy, both included).
# Usage: ./getDate.sh 01/07/2018 30/07/2018
set -eu
. "$(dirname "$0")/_post.sh"
printf '{"requestType":"getDate","partnerSecret":"%s","data":{"fromDate":"%s","toDate":"%s"}}' \
    "$VOIP24H_PARTNER_SECRET" "$1" "$2" | post

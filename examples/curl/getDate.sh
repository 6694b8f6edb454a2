#!/bin/sh
# getDate: every call in your scope between two days (dd/mm/yyyy, both included).
# Usage: ./getDate.sh 01/07/2018 30/07/2018
set -eu
ARGC=$#
. "$(dirname "$0")/_post.sh"
usage 2 "FROM TO   (dd/mm/yyyy, e.g. 01/07/2018 30/07/2018)"
printf '{"requestType":"getDate","partnerSecret":"%s","data":{"fromDate":"%s","toDate":"%s"}}' \
    "$VOIP24H_PARTNER_SECRET" "$1" "$2" | post

#!/bin/sh
# getUserDate: one extension's calls between two days.   Usage: ./getUserDate.sh 137 01/07/2018 30/07/2018
set -eu
. "$(dirname "$0")/_post.sh"
printf '{"requestType":"getUserDate","partnerSecret":"%s","data":{"user":"%s","fromDate":"%s","toDate":"%s"}}' \
    "$VOIP24H_PARTNER_SECRET" "$1" "$2" "$3" | post

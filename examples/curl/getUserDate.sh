#!/bin/sh
# getUserDate: one extension's calls between two days.   Usage: ./getUserDate.sh 137 01/07/2018 30/07/2018
set -eu
ARGC=$#
. "$(dirname "$0")/_post.sh"
usage 3 "USER FROM TO   (e.g. 137 01/07/2018 30/07/2018)"
printf '{"requestType":"getUserDate","partnerSecret":"%s","data":{"user":"%s","fromDate":"%s","toDate":"%s"}}' \
    "$VOIP24H_PARTNER_SECRET" "$1" "$2" "$3" | post

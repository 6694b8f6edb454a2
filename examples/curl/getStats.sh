#!/bin/sh
# getStats: per user and day, counts by status and talk time.   Usage: ./getStats.sh 01/07/2018 30/07/2018
set -eu
. "$(dirname "$0")/_post.sh"
printf '{"requestType":"getStats","partnerSecret":"%s","data":{"fromDate":"%s","toDate":"%s"}}' \
    "$VOIP24H_PARTNER_SECRET" "$1" "$2" | post

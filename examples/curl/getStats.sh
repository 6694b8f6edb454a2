#!/bin/sh
# getStats: per user and day, counts by status and talk time.   Usage: ./getStats.sh 01/07/2018 30/07/2018
set -eu
ARGC=$#
. "$(dirname "$0")/_post.sh"
usage 2 "FROM TO   (dd/mm/yyyy, e.g. 01/07/2018 30/07/2018)"
printf '{"requestType":"getStats","partnerSecret":"%s","data":{"fromDate":"%s","toDate":"%s"}}' \
    "$VOIP24H_PARTNER_SECRET" "$1" "$2" | post

#!/bin/sh
# getCallData: the records of one call by its callId (servers with the extended API).
# Usage: ./getCallData.sh 1532857052.131132
set -eu
ARGC=$#
. "$(dirname "$0")/_post.sh"
usage 1 "CALL_ID   (e.g. 1532857052.131132)"
printf '{"requestType":"getCallData","partnerSecret":"%s","data":{"callId":"%s"}}' \
    "$VOIP24H_PARTNER_SECRET" "$1" | post

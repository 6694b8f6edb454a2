#!/bin/sh
# recordingListen: a signed, expiring link that plays a call's recording (no secret needed to open it).
# Usage: ./recordingListen.sh 1532857052.131132
set -eu
ARGC=$#
. "$(dirname "$0")/_post.sh"
usage 1 "CALL_ID   (a call with a recording)"
printf '{"requestType":"recordingListen","partnerSecret":"%s","data":{"callId":"%s"}}' \
    "$VOIP24H_PARTNER_SECRET" "$1" | post

#!/bin/sh
# recordingDownload: a signed, expiring link that downloads a call's recording.
# Usage: ./recordingDownload.sh 1532857052.131132      then: curl -OJ "<the link>"
set -eu
ARGC=$#
. "$(dirname "$0")/_post.sh"
usage 1 "CALL_ID   (a call with a recording)"
printf '{"requestType":"recordingDownload","partnerSecret":"%s","data":{"callId":"%s"}}' \
    "$VOIP24H_PARTNER_SECRET" "$1" | post

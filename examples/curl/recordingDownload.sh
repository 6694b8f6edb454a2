#!/bin/sh
# recordingDownload: a signed, expiring link that downloads a call's recording.
# Usage: ./recordingDownload.sh 1532857052.131132      then: curl -OJ "<the link>"
set -eu
. "$(dirname "$0")/_post.sh"
printf '{"requestType":"recordingDownload","partnerSecret":"%s","data":{"callId":"%s"}}' \
    "$VOIP24H_PARTNER_SECRET" "$1" | post

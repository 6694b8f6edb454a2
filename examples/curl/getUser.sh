#!/bin/sh
# getUser: every call of one extension.   Usage: ./getUser.sh 137
set -eu
. "$(dirname "$0")/_post.sh"
printf '{"requestType":"getUser","partnerSecret":"%s","data":{"user":"%s"}}' \
    "$VOIP24H_PARTNER_SECRET" "$1" | post

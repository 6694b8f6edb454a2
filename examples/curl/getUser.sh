#!/bin/sh
# getUser: every call of one extension.   Usage: ./getUser.sh 137
set -eu
ARGC=$#
. "$(dirname "$0")/_post.sh"
usage 1 "USER   (an extension, e.g. 137)"
printf '{"requestType":"getUser","partnerSecret":"%s","data":{"user":"%s"}}' \
    "$VOIP24H_PARTNER_SECRET" "$1" | post

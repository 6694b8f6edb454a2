# Shared by the curl examples: POST a request body (read from stdin) to the endpoint.
# The secret travels inside the body on stdin, so it never shows in `ps` or shell history.
VOIP24H_URL="${VOIP24H_URL:-http://127.0.0.1:8024}"
# usage COUNT "ARGS": stop with the script's usage unless it got exactly COUNT arguments,
# then make sure there is a secret to send.
usage() {
    if [ "$ARGC" -ne "$1" ]; then
        echo "usage: $(basename "$0") $2" >&2
        exit 2
    fi
    : "${VOIP24H_PARTNER_SECRET:?set VOIP24H_PARTNER_SECRET to your partner secret}"
}
post() {
    curl -sS -X POST "$VOIP24H_URL/api/v1/partner/voip24h" \
        -H 'Content-Type: application/json' --data-binary @-
    echo
}

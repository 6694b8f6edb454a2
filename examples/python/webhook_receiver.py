"""A voip24h webhook receiver with Python's standard library only: it verifies each
delivery's Standard Webhooks signature, drops repeats by webhook-id, prints the event.

    export VOIP24H_WEBHOOK_SECRET=whsec_...   # the secret webhookAdd showed, once
    python3 webhook_receiver.py 8025          # listens on 127.0.0.1:8025

Prints one line per new event: its sequence, type, callId, user, callStatus and
duration, tab-separated. Answers 204 when the event is taken, 401 when the signature
does not verify (the server then retries, and gives up after its schedule).
"""

import base64
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE = 300  # seconds a timestamp may be off (replayed deliveries are refused)
SEEN: set[str] = set()  # webhook-ids already taken: delivery is at least once


def verify(secret: str, headers: dict, body: bytes) -> bool:
    """True when one v1 signature of the delivery matches ``secret``."""
    msg_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    if not msg_id or not stamp.isdigit() or abs(time.time() - int(stamp)) > TOLERANCE:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{stamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for signature in headers.get("webhook-signature", "").split(" "):
        version, _, value = signature.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return True
    return False


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        headers = {k.lower(): v for k, v in self.headers.items()}
        if not verify(os.environ["VOIP24H_WEBHOOK_SECRET"], headers, body):
            self.send_response(401)
            self.end_headers()
            return
        event = json.loads(body)
        if headers["webhook-id"] not in SEEN:
            SEEN.add(headers["webhook-id"])
            data = event.get("data", {})
            fields = [event.get("sequence", ""), event["type"], data.get("callId", ""),
                      data.get("user", ""), data.get("callStatus", ""), data.get("duration", "")]
            print("\t".join(str(f) for f in fields), flush=True)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8025
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()

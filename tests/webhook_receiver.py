"""A webhook receiver on 127.0.0.1 for tests: verifies each delivery with standardwebhooks,
records it, answers scripted statuses, and can go down and come back on the same port."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from standardwebhooks import Webhook, WebhookVerificationError


class Receiver:
    """Deliveries land in ``seen`` (dicts: id, body, verified, headers)."""

    def __init__(self, secrets: list[str] | None = None, delay: float = 0.0) -> None:
        self.secrets = secrets or []
        self.delay = delay
        self.replies: list[tuple[int, dict[str, str]]] = []
        self.status: int = 200  # once ``replies`` are spent
        self.seen: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.delay:
                    time.sleep(receiver.delay)
                headers = {k.lower(): v for k, v in self.headers.items()}
                verified = None
                for secret in receiver.secrets:
                    try:
                        verified = Webhook(secret).verify(body, headers)
                        break
                    except WebhookVerificationError:
                        continue
                with receiver.lock:
                    status, extra = (
                        receiver.replies.pop(0) if receiver.replies else (receiver.status, {})
                    )
                    receiver.seen.append(
                        {
                            "id": headers.get("webhook-id"),
                            "body": orjson.loads(body),
                            "raw": body,
                            "verified": verified is not None,
                            "headers": headers,
                            "status": status,
                        }
                    )
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def start(self) -> Receiver:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def delivered(self) -> list[dict[str, Any]]:
        """The deliveries answered 2xx, in arrival order."""
        with self.lock:
            return [s for s in self.seen if 200 <= s["status"] < 300]

    def wait_for(self, check: Callable[[], bool], timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return True
            time.sleep(0.02)
        return check()

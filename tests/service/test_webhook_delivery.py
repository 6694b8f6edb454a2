"""One delivery attempt against a real receiver on 127.0.0.1 that verifies the signature
with standardwebhooks, and the deliverer's lease on every backend."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from voip24h.db.queries import leases
from voip24h.domain.netaddr import parse_networks
from voip24h.service.webhooks.sender import Outcome, new_client, send
from voip24h.service.webhooks.signing import generate_secret, signature_headers
from voip24h.service.webhooks.targets import resolve

SECRET = generate_secret()


class Receiver:
    """An HTTP server answering POSTs with scripted (status, headers) replies in turn and
    noting each request's verification result and Host header."""

    def __init__(self) -> None:
        self.replies: list[tuple[int, dict[str, str]]] = []
        self.seen: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    verified = Webhook(SECRET).verify(body, dict(self.headers.items()))
                except WebhookVerificationError:
                    verified = None
                receiver.seen.append({"verified": verified, "host": self.headers["Host"]})
                status, headers = receiver.replies.pop(0) if receiver.replies else (200, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    thread = threading.Thread(target=found.server.serve_forever, daemon=True)
    thread.start()
    yield found
    found.server.shutdown()
    found.server.server_close()


def deliver(url: str, body: bytes, secrets: list[str], attempts: int = 1) -> list[Outcome]:
    async def run() -> list[Outcome]:
        target = await resolve(url, parse_networks("127.0.0.1"))
        async with new_client() as client:
            return [
                await send(client, target, signature_headers(secrets, "evt_1", body), body)
                for _ in range(attempts)
            ]

    return asyncio.run(run())


BODY = b'{"id":"evt_1","type":"record.created"}'


def test_a_signed_event_is_verified_by_the_receiver(receiver):
    (outcome,) = deliver(receiver.url, BODY, [SECRET])
    assert outcome == Outcome(200, True)
    assert receiver.seen[0]["verified"] == {"id": "evt_1", "type": "record.created"}
    assert receiver.seen[0]["host"] == receiver.url.split("/")[2]


def test_503_then_200_honours_retry_after_and_keeps_the_id(receiver):
    receiver.replies = [(503, {"Retry-After": "7"})]
    first, second = deliver(receiver.url, BODY, [SECRET], attempts=2)
    assert (first.status, first.delivered, first.retry_after) == (503, False, 7.0)
    assert second.delivered
    assert [seen["verified"]["id"] for seen in receiver.seen] == ["evt_1", "evt_1"]


def test_410_says_the_endpoint_is_gone(receiver):
    receiver.replies = [(410, {})]
    (outcome,) = deliver(receiver.url, BODY, [SECRET])
    assert outcome.gone and not outcome.delivered


def test_a_redirect_is_not_followed(receiver):
    receiver.replies = [(302, {"Location": "http://169.254.169.254/"})]
    (outcome,) = deliver(receiver.url, BODY, [SECRET])
    assert (outcome.status, outcome.delivered) == (302, False)
    assert len(receiver.seen) == 1


def test_the_receiver_with_the_old_secret_still_verifies_during_a_rotation(receiver):
    deliver(receiver.url, BODY, [generate_secret(), SECRET])
    assert receiver.seen[0]["verified"] is not None


def test_a_refused_connection_is_a_failed_attempt():
    (outcome,) = deliver("http://127.0.0.1:9/hook", BODY, [SECRET])
    assert outcome.status is None and not outcome.delivered and outcome.error


def test_one_holder_has_the_deliverer_lease_until_it_expires(engine):
    now = datetime(2026, 12, 7, 12, 0, 0)
    ttl = timedelta(seconds=30)
    assert leases.acquire(engine, "deliverer", "a", now, ttl)
    assert not leases.acquire(engine, "deliverer", "b", now + timedelta(seconds=10), ttl)
    assert leases.acquire(engine, "deliverer", "a", now + timedelta(seconds=20), ttl)  # renewed
    assert not leases.acquire(engine, "deliverer", "b", now + timedelta(seconds=45), ttl)
    assert leases.acquire(engine, "deliverer", "b", now + timedelta(seconds=51), ttl)
    leases.release(engine, "deliverer", "a")  # not a's any more: nothing happens
    assert not leases.acquire(engine, "deliverer", "a", now + timedelta(seconds=52), ttl)
    leases.release(engine, "deliverer", "b")
    assert leases.acquire(engine, "deliverer", "a", now + timedelta(seconds=53), ttl)

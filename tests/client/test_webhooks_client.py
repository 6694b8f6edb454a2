"""The Python client and push: manage endpoints, iterate getEvents (blocking and async),
and verify a delivery the server signed, over a real socket on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.builders import calls
from tests.live_server import live_server
from tests.webhook_receiver import Receiver
from voip24h.client import AsyncClient, Client, Event, WebhookSignatureError, verify_webhook
from voip24h.server.app import create_app


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver().start()
    yield found
    found.stop()


def test_iter_events_and_verify_a_delivery(settings, add_partner, load, receiver):
    secret = add_partner("crm", accountcodes=("acme",))
    load(*calls())
    app = create_app(settings.replace(webhook_allow_cidrs="127.0.0.1", webhook_poll_seconds=0.05))
    with live_server(app) as server, Client(server.url, secret) as client:
        endpoint = client.webhook_add(receiver.url, event_types=["record.created"])
        assert endpoint["secret"].startswith("whsec_")
        assert [e["id"] for e in client.webhook_list()] == [endpoint["id"]]
        every = list(client.iter_events(page_size=2))
        assert every and all(isinstance(e, Event) for e in every)
        assert [e.sequence for e in every] == sorted(e.sequence for e in every)
        assert {e.data["callId"] for e in every} and every[0].type == "record.created"
        assert list(client.iter_events(every[-1].sequence)) == []

        async def from_async() -> list[Event]:
            async with AsyncClient(server.url, secret) as aclient:
                return [event async for event in aclient.iter_events(page_size=3)]

        assert asyncio.run(from_async()) == every
        assert client.webhook_test(endpoint["id"])["delivered"] is True
        assert client.webhook_redeliver(endpoint["id"], since=0)["queued"] == len(every)
        assert receiver.wait_for(lambda: len(receiver.delivered()) >= 1 + len(every))
        delivery = receiver.delivered()[-1]
        raw = delivery["raw"]
        event = verify_webhook(endpoint["secret"], raw, delivery["headers"])
        assert event.id == delivery["id"] and event.type == "record.created"
        with pytest.raises(WebhookSignatureError):
            verify_webhook(endpoint["secret"], raw + b" ", delivery["headers"])
        rotated = client.webhook_rotate(endpoint["id"], overlap_hours=0)
        assert rotated["secret"] != endpoint["secret"]
        assert client.webhook_remove(endpoint["id"])["removed"] is True
        assert client.webhook_list() == []

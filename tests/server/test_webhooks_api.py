"""Partners manage their webhook endpoints and read their event feed through the partner
API: webhookAdd/List/Remove/Test/Rotate, getEvents, webhookRedeliver."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from tests.builders import calls
from tests.conftest import API
from tests.webhook_receiver import Receiver
from voip24h.service.webhooks.endpoints import Webhooks, utcnow


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver().start()
    yield found
    found.stop()


@pytest.fixture
def api(make_client: Any) -> Any:
    client = make_client(webhook_allow_cidrs="127.0.0.1")

    def call(request_type: str, secret: str, data: Any = None) -> Any:
        body = {"requestType": request_type, "partnerSecret": secret, "data": data or {}}
        return client.post(API, json=body)

    return call


def test_add_shows_the_secret_once_list_never_and_remove_deletes(api, add_partner, receiver):
    secret = add_partner("crm", accountcodes=("acme",))
    added = api("webhookAdd", secret, {"url": receiver.url, "eventTypes": ["record.created"]})
    assert added.status_code == 200, added.text
    doc = added.json()["data"]
    assert doc["secret"].startswith("whsec_") and doc["id"].startswith("ep_")
    assert doc["eventTypes"] == ["record.created"] and doc["enabled"] is True
    listed = api("webhookList", secret).json()["data"]
    assert [e["id"] for e in listed] == [doc["id"]]
    assert "secret" not in listed[0] and doc["secret"] not in str(listed)
    assert api("webhookRemove", secret, {"endpointId": doc["id"]}).json()["data"] == {
        "id": doc["id"],
        "removed": True,
    }
    assert api("webhookList", secret).json()["data"] == []
    again = api("webhookRemove", secret, {"endpointId": doc["id"]})
    assert (again.status_code, again.json()["errorCode"]) == (404, "webhook_not_found")


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://10.1.2.3/hook",
        "http://[::1]:8080/hook",
        "http://localhost:9/hook",
        "ftp://example.com/hook",
        "http://user:pw@127.0.0.1/hook",
    ],
)
def test_forbidden_addresses_are_refused(make_client, add_partner, url):
    client = make_client()  # no CIDR allowed: loopback is refused too
    secret = add_partner("crm")
    body = {"requestType": "webhookAdd", "partnerSecret": secret, "data": {"url": url}}
    got = client.post(API, json=body)
    assert (got.status_code, got.json()["errorCode"]) == (400, "webhook_url_refused")
    assert got.json()["respCode"] == -1


def test_a_partner_cannot_see_or_touch_another_partner_s_endpoint(api, add_partner, receiver):
    a = add_partner("a", accountcodes=("acme",))
    b = add_partner("b", accountcodes=("other",))
    endpoint = api("webhookAdd", a, {"url": receiver.url}).json()["data"]["id"]
    assert api("webhookList", b).json()["data"] == []
    for kind in ("webhookRemove", "webhookTest", "webhookRotate"):
        got = api(kind, b, {"endpointId": endpoint})
        assert (got.status_code, got.json()["errorCode"]) == (404, "webhook_not_found"), kind
    assert len(api("webhookList", a).json()["data"]) == 1


def test_a_user_filter_outside_the_scope_is_refused(api, add_partner, receiver):
    secret = add_partner("crm", extensions=("100-199",))
    got = api("webhookAdd", secret, {"url": receiver.url, "users": ["205"]})
    assert (got.status_code, got.json()["errorCode"]) == (403, "user_not_permitted")
    ok = api("webhookAdd", secret, {"url": receiver.url, "users": [137]})
    assert ok.json()["data"]["users"] == ["137"]


def test_get_events_pages_in_order_within_the_scope_only(api, add_partner, load):
    load(*calls())
    everyone = add_partner("all")
    acme = add_partner("acme", accountcodes=("acme",))
    every = api("getEvents", everyone, {"limit": 1000}).json()
    assert {e["data"]["callId"] for e in every["data"]}
    mine: list[dict[str, Any]] = []
    cursor = 0
    while True:
        page = api("getEvents", acme, {"cursor": cursor, "limit": 2}).json()
        assert len(page["data"]) <= 2
        if not page["data"]:
            assert page["nextCursor"] == cursor
            break
        mine.extend(page["data"])
        cursor = page["nextCursor"]
    all_acme = [e for e in every["data"] if e["sequence"] in {m["sequence"] for m in mine}]
    assert mine == all_acme and mine
    assert [e["sequence"] for e in mine] == sorted({e["sequence"] for e in mine})
    others = [e for e in every["data"] if e not in mine]
    assert others, "the fixture has calls of another tenant"
    assert set(e["id"] for e in others).isdisjoint(e["id"] for e in mine)


def test_webhook_test_sends_a_signed_event_and_rotate_signs_with_both(api, add_partner, receiver):
    secret = add_partner("crm")
    added = api("webhookAdd", secret, {"url": receiver.url}).json()["data"]
    receiver.secrets = [added["secret"]]
    tested = api("webhookTest", secret, {"endpointId": added["id"]}).json()["data"]
    assert tested == {"id": added["id"], "delivered": True, "status": 200, "error": ""}
    assert receiver.seen[0]["verified"] and receiver.seen[0]["body"]["type"] == "webhook.test"
    rotated = api("webhookRotate", secret, {"endpointId": added["id"]}).json()["data"]
    assert rotated["secret"] != added["secret"] and rotated["secret"].startswith("whsec_")
    api("webhookTest", secret, {"endpointId": added["id"]})
    signatures = receiver.seen[1]["headers"]["webhook-signature"].split(" ")
    assert len(signatures) == 2 and receiver.seen[1]["verified"]  # the old secret still works
    receiver.secrets = [rotated["secret"]]
    api("webhookTest", secret, {"endpointId": added["id"]})
    assert receiver.seen[2]["verified"]


def test_redeliver_needs_one_of_event_id_or_since(api, add_partner, receiver, load):
    load(*calls())
    secret = add_partner("crm", accountcodes=("acme",))
    endpoint = api("webhookAdd", secret, {"url": receiver.url}).json()["data"]["id"]
    missing = api("webhookRedeliver", secret, {"endpointId": endpoint, "eventId": "evt_nope"})
    assert (missing.status_code, missing.json()["errorCode"]) == (404, "event_not_found")
    both = api("webhookRedeliver", secret, {"endpointId": endpoint, "eventId": "x", "since": 0})
    assert both.json()["errorCode"] == "invalid_field"
    visible = api("getEvents", secret, {"limit": 1000}).json()["data"]
    queued = api("webhookRedeliver", secret, {"endpointId": endpoint, "since": 0}).json()
    assert queued["data"] == {"id": endpoint, "queued": len(visible)}
    by_time = api(
        "webhookRedeliver", secret, {"endpointId": endpoint, "since": "2000-01-01T00:00:00Z"}
    )
    assert by_time.json()["data"]["queued"] == len(visible)
    unknown = api("getEvents", secret, {"cursr": 0})
    assert (unknown.status_code, unknown.json()["errorCode"]) == (400, "unknown_field")


def test_retention_prunes_events_older_than_the_setting(settings, engine, load, api, add_partner):
    load(*calls())
    secret = add_partner("crm")
    count = len(api("getEvents", secret, {"limit": 1000}).json()["data"])
    service = Webhooks(settings, engine)
    assert service.prune() == 0
    assert service.prune(utcnow() + timedelta(days=31)) == count
    assert api("getEvents", secret, {"limit": 1000}).json()["data"] == []


def test_the_server_delivers_from_its_lifespan_and_shows_the_metrics(
    make_client, add_partner, load, receiver
):
    client = make_client(webhook_allow_cidrs="127.0.0.1", webhook_poll_seconds=0.05, ops_token="")
    secret = add_partner("crm")
    body = {"requestType": "webhookAdd", "partnerSecret": secret, "data": {"url": receiver.url}}
    receiver.secrets = [client.post(API, json=body).json()["data"]["secret"]]
    load(*calls())
    feed = {"requestType": "getEvents", "partnerSecret": secret, "data": {"limit": 1000}}
    expected = [e["id"] for e in client.post(API, json=feed).json()["data"]]
    assert receiver.wait_for(lambda: len(receiver.delivered()) >= len(expected))
    assert sorted(s["id"] for s in receiver.delivered()) == sorted(expected)
    assert all(s["verified"] for s in receiver.delivered())
    text = client.get("/metrics").text
    for name in (
        "voip24h_webhook_queue_depth",
        "voip24h_webhook_delivery_seconds_bucket",
        "voip24h_webhook_deliverer_leader 1.0",
    ):
        assert name in text, name


def test_deliver_in_serve_off_leaves_delivery_to_voip24h_deliver(
    make_client, add_partner, load, receiver
):
    client = make_client(webhook_allow_cidrs="127.0.0.1", deliver_in_serve=False)
    secret = add_partner("crm")
    body = {"requestType": "webhookAdd", "partnerSecret": secret, "data": {"url": receiver.url}}
    assert client.post(API, json=body).status_code == 200
    load(*calls())
    assert not receiver.wait_for(lambda: bool(receiver.seen), timeout=1.0)

"""The live event stream (SSE): bearer secret, scope, resume with Last-Event-ID, heartbeats."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest

from tests.live_server import live_server
from voip24h.db.queries.events import append_events
from voip24h.server import stream
from voip24h.server.app import create_app

PATH = "/api/v1/partner/events/stream"


def live(call: str, user: str, tenant: str, kind: str = "call.ringing") -> tuple[str, dict]:
    return kind, {
        "accountcode": tenant,
        "user_ext": user,
        "user_num": int(user),
        "callid": call,
        "occurred_at": datetime(2026, 12, 7, 1, 2, 3, tzinfo=UTC),
        "payload": {
            "callId": call,
            "user": user,
            "phoneNumber": "0987",
            "direction": "inbound",
            "sequence": 1,
        },
    }


def sse_events(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """Each event of an SSE response as {id, event, data} (comments as {comment})."""
    fields: dict[str, Any] = {}
    for line in response.iter_lines():
        if line.startswith(":"):
            yield {"comment": line[1:].strip()}
        elif not line:
            if fields:
                yield fields
            fields = {}
        else:
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value


def take(response: httpx.Response | Iterator[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    events = sse_events(response) if isinstance(response, httpx.Response) else response
    for event in events:
        if "data" in event:
            got.append(event)
            if len(got) == count:
                break
    return got


@pytest.fixture
def server(settings: Any) -> Iterator[Any]:
    with live_server(create_app(settings)) as running:
        yield running


def test_the_stream_resumes_after_a_disconnect_without_losing_an_event(
    server: Any, engine: Any, add_partner: Any
) -> None:
    secret = add_partner("crm", accountcodes=("acme",))
    with engine.begin() as conn:
        append_events(
            conn,
            [
                live("1.1", "101", "acme"),
                live("2.1", "201", "other"),
                live("1.1", "101", "acme", "call.answered"),
            ],
        )
    headers = {"Authorization": f"Bearer {secret}"}
    with httpx.Client(base_url=server.url, timeout=10) as client:
        with client.stream("GET", PATH, headers=headers) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            [first] = take(response, 1)
        # Disconnected: the PBX goes on.
        with engine.begin() as conn:
            append_events(
                conn, [live("1.1", "101", "acme", "call.ended"), live("3.1", "102", "acme")]
            )
        resumed = {**headers, "Last-Event-ID": first["id"]}
        with client.stream("GET", PATH, headers=resumed) as response:
            rest = take(response, 3)
    seen = [first, *rest]
    assert [e["id"] for e in seen] == ["1", "3", "4", "5"]  # 2 is another tenant's
    assert [e["event"] for e in seen] == [
        "call.ringing",
        "call.answered",
        "call.ended",
        "call.ringing",
    ]
    document = orjson.loads(first["data"])
    assert document["type"] == "call.ringing" and document["sequence"] == 1
    assert document["occurredAt"] == "2026-12-07T01:02:03Z"
    assert document["data"]["callId"] == "1.1" and document["data"]["user"] == "101"


def test_a_quiet_stream_sends_heartbeats_and_new_events_as_they_come(
    server: Any, engine: Any, add_partner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream, "HEARTBEAT_SECONDS", 0.2)
    monkeypatch.setattr(stream, "POLL_SECONDS", 0.05)
    secret = add_partner("crm", extensions=("101",))
    with (
        httpx.Client(base_url=server.url, timeout=10) as client,
        client.stream("GET", PATH, headers={"Authorization": f"Bearer {secret}"}) as response,
    ):
        comments = []
        events = sse_events(response)
        for event in events:
            comments.append(event.get("comment"))
            if (event.get("comment") or "").startswith("ping") or "data" in event:
                break
        with engine.begin() as conn:
            append_events(conn, [live("9.1", "102", "acme"), live("9.1", "101", "acme")])
        [event] = take(events, 1)
    assert comments[0] == "voip24h events" and comments[-1].startswith("ping")
    assert orjson.loads(event["data"])["data"]["user"] == "101"  # 102 is out of scope


def test_the_stream_needs_a_bearer_secret_and_a_valid_last_event_id(
    server: Any, add_partner: Any
) -> None:
    secret = add_partner()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        missing = client.get(PATH)
        wrong = client.get(PATH, headers={"Authorization": "Bearer not-a-secret-at-all"})
        bad = client.get(
            PATH, headers={"Authorization": f"Bearer {secret}", "Last-Event-ID": "evt_x"}
        )
    assert (missing.status_code, missing.json()["errorCode"]) == (401, "missing_secret")
    assert (wrong.status_code, wrong.json()["errorCode"]) == (401, "invalid_secret")
    assert (bad.status_code, bad.json()["errorCode"]) == (400, "invalid_cursor")

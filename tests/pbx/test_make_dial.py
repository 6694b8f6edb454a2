"""makeDial end to end: the partner API, the exact Originate on the scripted peer's socket,
scope and number checks before the PBX is asked, idempotency, its own limit, the audit."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import API
from tests.pbx.ami_peer import BANNER, AmiPeer, Step, Transcript, peer_in_thread
from tests.support import audit_rows, flush
from voip24h.config import Settings
from voip24h.pbx import dialer as dialer_module
from voip24h.pbx.dialer import PbxDialer
from voip24h.server.audit import audit_engine

CHANNEL_ID = "1796592530.c2c0000000001"
DIAL = {
    "dial_context": "internal",
    "dial_channel": "SIP/{user}",
    "dial_caller_id": '"Click2Call" <{user}>',
    "dial_timeout_seconds": 30,
}


def scripted(reply: str) -> Transcript:
    """A peer that answers an Originate with ``reply`` (its ActionID rewritten)."""
    transcript = Transcript(BANNER)
    transcript.steps.append(Step({"Action": "Originate", "ActionID": "rec-1"}, b"", reply.encode()))
    return transcript


def failure(reason: str) -> Transcript:
    return scripted(
        "Response: Success\r\nActionID: rec-1\r\nMessage: Originate successfully queued\r\n\r\n"
        "Event: OriginateResponse\r\nPrivilege: call,all\r\nActionID: rec-1\r\n"
        f"Response: Failure\r\nChannel: SIP/101\r\nContext: internal\r\nExten: 102\r\n"
        f"Reason: {reason}\r\nUniqueid: <unknown>\r\nCallerIDNum: 101\r\n\r\n"
    )


@pytest.fixture
def pbx(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """pbx(transcript) -> a peer in a thread; ChannelIds are fixed for exact bytes."""
    monkeypatch.setattr(dialer_module, "new_channel_id", lambda: CHANNEL_ID)
    peers: list[Any] = []

    def start(transcript: Transcript | None = None, **options: Any) -> AmiPeer:
        manager = peer_in_thread(transcript, **options)
        peers.append(manager)
        return manager.__enter__()

    yield start
    for manager in peers:
        manager.__exit__(None, None, None)


def linked(make_client: Any, peer: AmiPeer, **overrides: Any) -> Any:
    """A server whose PBX link is up (so makeDial uses it)."""
    client = make_client(ami_url=peer.url, **DIAL, **overrides)
    deadline = time.monotonic() + 10
    while not peer.logins and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)  # the link's on_connect has run
    return client


def dial(client: Any, secret: str, user: Any = "101", number: str = "102", **data: Any) -> Any:
    return client.post(
        API,
        json={
            "requestType": "makeDial",
            "partnerSecret": secret,
            "data": {"user": user, "phoneNumber": number, **data},
        },
    )


def test_make_dial_sends_exactly_this_originate_and_answers_with_the_call(
    make_client: Any, add_partner: Any, pbx: Any, settings: Settings
) -> None:
    peer = pbx(Transcript.load("originate"))
    client = linked(make_client, peer)
    answer = dial(client, add_partner("crm", extensions=("100-199",)), idempotencyKey="k1")
    assert answer.status_code == 200
    assert answer.json() == {
        "respCode": 0,
        "respMsg": "Success",
        "data": {
            "result": "answered",
            "callId": "1796592530.73",
            "user": "101",
            "phoneNumber": "102",
            "reason": "4",
        },
    }
    [sent] = peer.actions("Originate")
    action_id = re.search(rb"ActionID: (v24h-[0-9a-f]+-\d+)\r\n", sent)
    assert action_id is not None
    assert sent == (
        b"Action: Originate\r\n"
        b"ActionID: " + action_id.group(1) + b"\r\n"
        b"Channel: SIP/101\r\n"
        b"Context: internal\r\n"
        b"Exten: 102\r\n"
        b"Priority: 1\r\n"
        b'CallerID: "Click2Call" <101>\r\n'
        b"Timeout: 30000\r\n"
        b"Async: true\r\n"
        b"ChannelId: 1796592530.c2c0000000001\r\n"
        b"Variable: VOIP24H_CALLID=1796592530.c2c0000000001\r\n"
        b"\r\n"
    )
    assert peer.connections == 1  # the link's own session, not one of its own
    flush(client)
    engine = audit_engine(settings.replace(**DIAL))
    try:
        [row] = [r for r in audit_rows(engine) if r["request_type"] == "makeDial"]
    finally:
        engine.dispose()
    assert (row["partner"], row["status"]) == ("crm", 200)
    assert json.loads(row["params"]) == {
        "user": "101",
        "phoneNumber": "102",
        "idempotencyKey": "k1",
        "result": "answered",
        "callId": "1796592530.73",
        "reason": "4",
        "replayed": False,
    }


@pytest.mark.parametrize(
    ("transcript", "result", "reason"),
    [
        (lambda: Transcript.load("originate_busy"), "busy", "5"),
        (lambda: Transcript.load("originate_noanswer"), "no_answer", "3"),
        (lambda: failure("8"), "congested", "8"),
        (lambda: failure("0"), "failed", "0"),
        (lambda: failure("1"), "failed", "1"),
        (
            lambda: scripted(
                "Response: Error\r\nActionID: rec-1\r\nMessage: Extension does not exist.\r\n\r\n"
            ),
            "no_such_extension",
            "",
        ),
    ],
)
def test_every_originate_reason_from_the_peer_maps_to_its_result(
    transcript: Any, result: str, reason: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dialer_module, "new_channel_id", lambda: CHANNEL_ID)

    async def main() -> Any:
        async with AmiPeer(transcript()) as peer:
            settings = Settings(ami_url=peer.url, **DIAL)  # type: ignore[arg-type]
            done = await PbxDialer(settings).originate("102", "101")
            assert len(peer.actions("Originate")) == 1 and peer.actions("Logoff") == []
            return done

    done = asyncio.run(main())
    assert (done.result, done.call_id, done.reason) == (result, CHANNEL_ID, reason)


def test_out_of_scope_and_hostile_dials_are_refused_before_the_pbx_is_asked(
    make_client: Any, add_partner: Any, pbx: Any
) -> None:
    peer = pbx(Transcript.load("originate"))
    client = linked(make_client, peer)
    mine = add_partner("crm", extensions=("101",))
    tenant_only = add_partner("tenant", accountcodes=("tenantA",))
    refused = [dial(client, mine, user="102"), dial(client, tenant_only)]
    assert [(r.status_code, r.json()["errorCode"]) for r in refused] == [
        (403, "user_not_permitted")
    ] * 2
    for number in [
        "101@other-context",
        "123&SIP/x",
        "1;2",
        "+",
        "1" * 21,
        "12 3",
        "123\r\nAction: Command",
        "\uff11\uff12",
    ]:
        answer = dial(client, mine, number=number)
        assert (answer.status_code, answer.json()["errorCode"]) == (400, "invalid_phone_number")
    assert dial(client, mine, user="trunk").json()["errorCode"] == "invalid_user"
    assert peer.actions("Originate") == []


def test_a_repeated_idempotency_key_gets_the_first_answer_without_a_second_call(
    make_client: Any, add_partner: Any, pbx: Any
) -> None:
    peer = pbx(Transcript.load("originate"))
    client = linked(make_client, peer)
    secret = add_partner("crm")
    first = dial(client, secret, idempotencyKey="order-7")
    again = dial(client, secret, idempotencyKey="order-7")
    other = dial(client, secret, number="103", idempotencyKey="order-7")
    assert first.status_code == again.status_code == 200 and first.json() == again.json()
    assert (other.status_code, other.json()["errorCode"]) == (400, "idempotency_key_reused")
    assert len(peer.actions("Originate")) == 1


def test_makedial_has_a_per_partner_limit_of_its_own(
    make_client: Any, add_partner: Any, pbx: Any
) -> None:
    peer = pbx(failure("5"), reuse_steps=True)
    client = linked(make_client, peer, dials_per_minute=1)
    secret, other = add_partner("crm"), add_partner("other")
    first = dial(client, secret)
    assert first.json().get("data", {}).get("result") == "busy", first.json()
    limited = dial(client, secret, number="103")
    assert (limited.status_code, limited.json()["errorCode"]) == (429, "rate_limited")
    assert int(limited.headers["retry-after"]) >= 1
    lookups = client.post(
        API, json={"requestType": "getUser", "partnerSecret": secret, "data": {"user": "101"}}
    )
    assert lookups.status_code == 200  # the dial limit is not the request limit
    theirs = dial(client, other)
    assert theirs.status_code == 200, theirs.json()  # nor another partner's
    assert len(peer.actions("Originate")) == 2


def test_without_a_pbx_link_makedial_is_a_clear_503(make_client: Any, add_partner: Any) -> None:
    client = make_client()
    answer = dial(client, add_partner())
    assert answer.status_code == 503 and answer.json() == {
        "respCode": -1,
        "errorCode": "pbx_unavailable",
        "respMsg": "makeDial needs the PBX link: ami_url is not set.",
    }
    assert answer.headers["retry-after"] == "5"


def test_both_clients_and_voip24h_query_dial_place_the_call(
    settings: Settings, add_partner: Any, pbx: Any
) -> None:
    from click.testing import CliRunner

    from tests.live_server import live_server
    from voip24h.cli.main import cli
    from voip24h.client import AsyncClient, Client, DialResult
    from voip24h.server.app import create_app

    peer = pbx(failure("5"), reuse_steps=True)
    secret = add_partner("crm", extensions=("101",))
    with live_server(create_app(settings.replace(ami_url=peer.url, **DIAL))) as server:
        deadline = time.monotonic() + 10
        while not peer.logins and time.monotonic() < deadline:
            time.sleep(0.01)
        with Client(server.url, secret) as client:
            blocking = client.make_dial("101", "0987654321")

        async def call() -> DialResult:
            async with AsyncClient(server.url, secret) as client:
                return await client.make_dial(101, "+84987654321", idempotency_key="x-1")

        asynchronous = asyncio.run(call())
        result = CliRunner().invoke(
            cli,
            ["query", "dial", "101", "0912345678", "--json", "--url", server.url],
            env={"VOIP24H_PARTNER_SECRET": secret},
        )
        refused = CliRunner().invoke(
            cli,
            ["query", "dial", "102", "0912345678", "--url", server.url],
            env={"VOIP24H_PARTNER_SECRET": secret},
        )
    assert blocking == DialResult("busy", CHANNEL_ID, "101", "0987654321", "5")
    assert asynchronous == DialResult("busy", CHANNEL_ID, "101", "+84987654321", "5")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [
        {
            "result": "busy",
            "callId": CHANNEL_ID,
            "user": "101",
            "phoneNumber": "0912345678",
            "reason": "5",
        }
    ]
    assert refused.exit_code == 3 and "user_not_permitted" in refused.output
    assert len(peer.actions("Originate")) == 3  # the refused one never reached the PBX


def test_a_repeat_waits_for_the_first_dial_and_a_failure_is_not_remembered() -> None:
    from voip24h import errors
    from voip24h.domain.mapping import ExtensionMatcher
    from voip24h.domain.partners import Scope
    from voip24h.service.dial import DialQuery, DialService
    from voip24h.service.results import Dialed

    class SlowPbx:
        def __init__(self) -> None:
            self.calls = 0
            self.gate = asyncio.Event()

        async def originate(self, user: str, phone_number: str) -> Dialed:
            self.calls += 1
            await self.gate.wait()
            if self.calls == 1:
                raise errors.PbxUnavailable()
            return Dialed("answered", "1.1", user, phone_number, "4")

    async def main() -> tuple[list[Any], SlowPbx, Dialed]:
        pbx = SlowPbx()
        service = DialService(ExtensionMatcher(), pbx)
        query = DialQuery("101", "0987", "k")
        first = asyncio.create_task(service.dial(1, Scope(), query))
        await asyncio.sleep(0.01)
        repeat = asyncio.create_task(service.dial(1, Scope(), query))
        await asyncio.sleep(0.01)
        pbx.gate.set()
        outcomes = await asyncio.gather(first, repeat, return_exceptions=True)
        again = await service.dial(1, Scope(), query)  # the failure was not an answer
        return outcomes, pbx, again

    outcomes, pbx, again = asyncio.run(main())
    assert [type(o).__name__ for o in outcomes] == ["PbxUnavailable", "PbxUnavailable"]
    assert pbx.calls == 2 and again.result == "answered" and not again.replayed

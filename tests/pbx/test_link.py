"""The PBX link: reconnects after a drop, backs off on a wrong secret, pings, masks secrets."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time

import pytest

from tests.pbx.ami_peer import AmiPeer, Transcript
from voip24h.pbx.backoff import Backoff
from voip24h.pbx.link import PbxLink
from voip24h.pbx.protocol import Message
from voip24h.pbx.target import parse_ami_url


async def until(condition, seconds: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.005)


def test_a_link_dropped_mid_call_reconnects_and_logs_in_again() -> None:
    async def main() -> tuple[AmiPeer, PbxLink, list[Message]]:
        # 20 kB in, the queue call's events are cut off in the middle of the call.
        async with AmiPeer(Transcript.load("queue_call"), drop_after=20_000) as peer:
            events: list[Message] = []
            link = PbxLink(parse_ami_url(peer.url), listeners=[events.append],
                           backoff=Backoff(0.02, 0.1))
            runner = asyncio.create_task(link.run())
            await until(lambda: peer.logins >= 2 and any(
                e.get("Event") == "Hangup" and e.get("Channel") == "SIP/trunk-0000004b"
                for e in events))
            connection = await link.wait_connected(1)
            assert not connection.closed
            link.stop()
            await runner
            return peer, link, events

    peer, link, events = asyncio.run(main())
    assert peer.connections == 2 and peer.logins == 2 and link.logins == 2
    assert len(link.retry_delays) == 1 and 0.01 <= link.retry_delays[0] <= 0.02
    assert sum(e.get("Event") == "FullyBooted" for e in events) == 2  # replayed after login


def test_a_wrong_secret_is_one_clear_error_then_retries_that_slow_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> tuple[AmiPeer, PbxLink]:
        async with AmiPeer(secret="amipass") as peer:
            link = PbxLink(parse_ami_url(peer.url_with("n0t-the-s3cret")),
                           backoff=Backoff(0.02, 0.16))
            runner = asyncio.create_task(link.run())
            await asyncio.sleep(0.6)
            assert not runner.done()  # no crash: still trying
            link.stop()
            await runner
            return peer, link

    with caplog.at_level(logging.DEBUG, logger="voip24h.pbx"):
        peer, link = asyncio.run(main())
    attempts = peer.login_attempts
    assert 3 <= len(attempts) <= 10  # a retry loop, not a hot loop (0.6 s)
    assert peer.logins == 0 and link.failures == len(attempts)
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    delays = list(link.retry_delays)
    # 0.02, 0.04, 0.08, then capped at 0.16, each shortened by up to half (jitter): they
    # grow until the cap, then jitter within [0.08, 0.16].
    rising = delays[:4]
    assert all(later >= earlier for earlier, later in itertools.pairwise(rising))
    assert delays[3] > 2 * delays[0] and max(delays) <= 0.16 and min(delays[3:]) >= 0.08
    assert all(gap >= delay * 0.9 for gap, delay in zip(gaps, delays, strict=False))
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1  # logged once, not once a retry
    message = errors[0].getMessage()
    assert "AMI login refused for user 'admin'" in message
    assert "Authentication failed" in message and f"127.0.0.1:{peer.port}" in message
    assert "n0t-the-s3cret" not in caplog.text and "amipass" not in caplog.text


def test_pings_keep_the_link_and_a_peer_that_stops_answering_is_left_for_a_new_link() -> None:
    async def main(answer: bool) -> tuple[AmiPeer, PbxLink]:
        async with AmiPeer(answer_pings=answer) as peer:
            link = PbxLink(parse_ami_url(peer.url), backoff=Backoff(0.01, 0.05),
                           ping_interval=0.03, ping_timeout=0.05)
            runner = asyncio.create_task(link.run())
            started = time.monotonic()
            if answer:
                await until(lambda: peer.pings >= 4)
            else:
                await until(lambda: peer.logins >= 3)
            elapsed = time.monotonic() - started
            link.stop()
            await runner
            assert elapsed < 2
            return peer, link

    peer, _ = asyncio.run(main(answer=True))
    assert peer.connections == 1 and peer.logins == 1  # answered Pings: one session
    assert all(raw.startswith(b"Action: Ping\r\nActionID: ") for raw in peer.actions("Ping"))
    peer, _link = asyncio.run(main(answer=False))
    assert peer.connections >= 3
    assert peer.pings >= 2


def test_an_unreachable_pbx_is_retried_without_raising() -> None:
    async def main() -> PbxLink:
        async with AmiPeer() as peer:
            port = peer.port
        link = PbxLink(parse_ami_url(f"ami://admin:x@127.0.0.1:{port}"),
                       backoff=Backoff(0.01, 0.04))
        runner = asyncio.create_task(link.run())
        await asyncio.sleep(0.2)
        link.stop()
        await runner
        return link

    link = asyncio.run(main())
    assert link.failures >= 2 and isinstance(link.last_error, OSError)


def test_the_ami_url_is_parsed_and_its_secret_never_shown() -> None:
    target = parse_ami_url("amis://admin:p%40ss@pbx.example:5039")
    assert (target.host, target.port, target.username, target.secret, target.tls) == (
        "pbx.example", 5039, "admin", "p@ss", True)
    assert "p@ss" not in repr(target) and str(target) == "amis://admin:***@pbx.example:5039"
    assert parse_ami_url("ami://u:s@10.0.0.1").port == 5038
    for bad in ("http://u:s@h", "ami://h:5038", "ami://u:s@", "ami://u:s@h:99999", "ami://u:s@h/x"):
        with pytest.raises(ValueError) as caught:
            parse_ami_url(bad)
        assert ":s@" not in str(caught.value)


def test_a_stop_while_the_session_is_being_opened_still_ends_the_link() -> None:
    async def main() -> tuple[AmiPeer, PbxLink]:
        # A slow peer: the banner and the Login's answer take a few tenths of a second.
        async with AmiPeer(chunk=8, delay=0.02) as peer:
            link = PbxLink(parse_ami_url(peer.url), backoff=Backoff(0.02, 0.1))
            runner = asyncio.create_task(link.run())
            await until(lambda: peer.connections >= 1)
            link.stop()  # the login is still under way
            async with asyncio.timeout(5):
                await runner
            return peer, link

    peer, link = asyncio.run(main())
    assert link.connection is None and peer.connections == 1

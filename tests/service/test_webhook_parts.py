"""Webhook parts a partner or operator sees: which URLs are refused (after DNS), that
signatures verify with the standardwebhooks package (both during a rotation), and the
retry schedule."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from voip24h.config import SettingsError, load_settings
from voip24h.domain.netaddr import parse_networks
from voip24h.service.webhooks.schedule import RETRY_DELAYS, next_delay, parse_retry_after
from voip24h.service.webhooks.signing import generate_secret, signature_headers
from voip24h.service.webhooks.targets import TargetRefused, resolve


def run_resolve(url: str, allow: str = "") -> str:
    return asyncio.run(resolve(url, parse_networks(allow))).address


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",  # refused after resolution, not by its name
        "http://10.1.2.3/hook",
        "http://192.168.1.10/hook",
        "http://172.16.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",
        "http://[::1]/hook",
        "http://[fe80::1]/hook",
        "http://[fd00:ec2::254]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://2130706433/hook",  # 127.0.0.1 written as one number
    ],
)
def test_internal_addresses_are_refused(url):
    with pytest.raises(TargetRefused, match="resolves to"):
        run_resolve(url)


def test_the_operator_may_allow_a_network():
    assert run_resolve("http://127.0.0.1:9000/hook", "127.0.0.1") == "127.0.0.1"
    with pytest.raises(TargetRefused):
        run_resolve("http://127.0.0.2:9000/hook", "127.0.0.1")


def test_a_public_address_is_delivered_to_as_resolved():
    assert run_resolve("https://93.184.215.14/hook") == "93.184.215.14"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.com/x", "https:// or http://"),
        ("https://user:pw@example.com/x", "user or password"),
        ("https:///x", "needs a host"),
        ("https://example.com:99999/x", "port"),
        ("https://no-such-host.invalid/x", "does not resolve"),
    ],
)
def test_bad_urls_say_why(url, why):
    with pytest.raises(TargetRefused, match=why):
        run_resolve(url)


def test_signatures_verify_with_standardwebhooks_and_both_sign_during_a_rotation():
    old, new = generate_secret(), generate_secret()
    assert new.startswith("whsec_") and old != new
    body = b'{"type":"record.created"}'
    now = datetime.now(UTC)
    headers = signature_headers([new, old], "evt_1", body, now)
    assert headers["webhook-id"] == "evt_1"
    assert headers["webhook-timestamp"] == str(int(now.timestamp()))
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert Webhook(new).verify(body, headers) == {"type": "record.created"}
    assert Webhook(old).verify(body, headers) == {"type": "record.created"}
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new).verify(body + b" ", headers)


def test_the_retry_schedule_is_the_standards_with_jitter():
    rng = random.Random(7)
    delays = [next_delay(n, rng=rng) for n in range(len(RETRY_DELAYS))]
    for got, base in zip(delays, RETRY_DELAYS, strict=True):
        assert got is not None and base * 0.9 <= got <= base * 1.1
    assert sum(RETRY_DELAYS) == 99305  # about 27.6 hours of retries
    assert next_delay(len(RETRY_DELAYS)) is None
    assert next_delay(1, retry_after=120, rng=rng) == 120  # a later Retry-After wins
    assert next_delay(2, retry_after=1, rng=rng) >= 270  # an earlier one does not


def test_retry_after_reads_seconds_and_http_dates():
    now = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("30") == 30
    later = (now + timedelta(seconds=90)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after(later, now) == 90
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_push_settings_are_validated():
    settings = load_settings({}, environ={})
    assert (settings.event_retention_days, settings.webhook_disable_after_days) == (30, 5)
    assert settings.webhook_allow_cidrs == ""
    with pytest.raises(SettingsError, match="webhook_allow_cidrs"):
        load_settings({"webhook_allow_cidrs": "not-a-net"}, environ={})
    with pytest.raises(SettingsError, match="webhook_max_in_flight"):
        load_settings({"webhook_max_in_flight": 0}, environ={})


def test_push_settings_refuse_what_cannot_work():
    from voip24h.config import SettingsError, load_settings

    assert load_settings({"webhook_retry_seconds": "0, 0.5,1"}, environ={}).retry_delays == (
        0.0,
        0.5,
        1.0,
    )
    for name, bad in [
        ("webhook_retry_seconds", ""),
        ("webhook_retry_seconds", "1,,2"),
        ("webhook_retry_seconds", "-1"),
        ("webhook_poll_seconds", 0),
        ("webhook_lease_seconds", 0),
    ]:
        with pytest.raises(SettingsError, match=name):
            load_settings({name: bad}, environ={})

"""Per-partner rate limits: 429 with the -1 envelope, Retry-After and RateLimit headers,
per-partner overrides, and limits shared across processes through Redis."""

from __future__ import annotations

import json
import os
import re
import socket
import uuid

import pytest

from tests.builders import cdr_row
from tests.conftest import API
from voip24h.service import partner_admin

REDIS_URL = os.environ.get("VOIP24H_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture
def redis_settings():
    if not _redis_up():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("redis not available at 127.0.0.1:6379 (CI=true requires it)")
        pytest.skip("redis not available at 127.0.0.1:6379")
    return {"redis_url": REDIS_URL, "redis_key_prefix": f"voip24h-test:{uuid.uuid4().hex}:"}


def body(secret, user="137"):
    return {"requestType": "getUser", "partnerSecret": secret, "data": {"user": user}}


def test_over_the_request_rate_gets_429_envelope_and_headers(add_partner, make_client):
    secret = add_partner()
    client = make_client(rate_limit_per_second=2, rate_limit_rows_per_minute=0)
    first, second, third = (client.post(API, json=body(secret)) for _ in range(3))
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.headers["RateLimit-Policy"] == '"requests";q=2;w=1'
    assert first.headers["RateLimit"].startswith('"requests";r=1;t=')
    assert second.headers["RateLimit"].startswith('"requests";r=0;t=')
    assert third.status_code == 429
    assert third.json() == {
        "respCode": -1,
        "respMsg": "Too many requests for this partner; retry after the time in Retry-After.",
        "errorCode": "rate_limited",
    }
    assert third.headers["Retry-After"] == "1"
    assert third.headers["RateLimit"].startswith('"requests";r=0;t=')


def test_rows_per_minute_limit_books_the_rows_returned(load, add_partner, make_client):
    load(*[cdr_row(uniqueid=f"r.{n}") for n in range(3)])
    secret = add_partner()
    client = make_client(rate_limit_per_second=0, rate_limit_rows_per_minute=5)
    first = client.post(API, json=body(secret))
    assert first.status_code == 200 and len(first.json()["data"]) == 3
    assert first.headers["RateLimit-Policy"] == '"rows";q=5;w=60'
    assert first.headers["RateLimit"].startswith('"rows";r=2;t=')
    # Budget left (2 rows) lets one more answer through; it then owes a row.
    assert client.post(API, json=body(secret)).status_code == 200
    refused = client.post(API, json=body(secret))
    assert refused.status_code == 429
    assert refused.json()["errorCode"] == "rate_limited"
    assert "records this minute" in refused.json()["respMsg"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 24  # one owed row = 12 s at 5/min


def test_limits_are_per_partner_and_overridable(engine, add_partner, make_client):
    slow = add_partner("slow")
    fast = add_partner("fast")
    partner_admin.set_limits(engine, "fast", {"rate_per_second": 0})  # unlimited
    partner_admin.set_limits(engine, "slow", {"rate_per_second": 0.25})
    client = make_client(rate_limit_per_second=0.5, rate_limit_rows_per_minute=0)
    slow_codes = [client.post(API, json=body(slow)).status_code for _ in range(2)]
    fast_codes = [client.post(API, json=body(fast)).status_code for _ in range(10)]
    assert slow_codes == [200, 429]
    assert fast_codes == [200] * 10
    assert "RateLimit" not in client.post(API, json=body(fast)).headers
    # Back to the server default (one per 2 s), picked up on the next lookup (no cache here).
    partner_admin.set_limits(engine, "fast", {"rate_per_second": None})
    codes = [client.post(API, json=body(fast)).status_code for _ in range(2)]
    assert codes == [200, 429]


def test_limit_is_per_process_without_redis(add_partner, make_client):
    secret = add_partner()
    # One request per 2 s (slow enough that a busy test machine cannot refill it).
    one = make_client(rate_limit_per_second=0.5, rate_limit_rows_per_minute=0)
    two = make_client(rate_limit_per_second=0.5, rate_limit_rows_per_minute=0)
    codes = [c.post(API, json=body(secret)).status_code for c in (one, two, one, two)]
    assert codes == [200, 200, 429, 429]


def test_limit_holds_across_two_servers_sharing_redis(add_partner, make_client, redis_settings):
    secret = add_partner()
    common = dict(rate_limit_per_second=0.5, rate_limit_rows_per_minute=0, **redis_settings)
    one, two = make_client(**common), make_client(**common)
    codes = [c.post(API, json=body(secret)).status_code for c in (one, two, one)]
    assert codes == [200, 429, 429]
    refused = two.post(API, json=body(secret))
    assert refused.headers["RateLimit-Policy"] == '"requests";q=1;w=2'
    assert refused.headers["Retry-After"] in ("1", "2")
    assert refused.json()["errorCode"] == "rate_limited"


def test_rows_budget_shared_through_redis(load, add_partner, make_client, redis_settings):
    load(*[cdr_row(uniqueid=f"s.{n}") for n in range(4)])
    secret = add_partner()
    common = dict(rate_limit_per_second=0, rate_limit_rows_per_minute=4, **redis_settings)
    one, two = make_client(**common), make_client(**common)
    assert one.post(API, json=body(secret)).status_code == 200  # spends all 4 rows
    assert two.post(API, json=body(secret)).status_code == 429


def test_redis_down_fails_open_and_is_counted(add_partner, make_client):
    secret = add_partner()
    client = make_client(
        rate_limit_per_second=1, redis_url="redis://127.0.0.1:1/0", rate_limit_rows_per_minute=0
    )
    codes = [client.post(API, json=body(secret)).status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    metrics = client.get("/metrics").text
    errors = re.search(r"^voip24h_ratelimit_store_errors_total (\S+)$", metrics, re.M)
    assert errors is not None and float(errors.group(1)) >= 3


def test_rate_limit_hits_are_counted_in_metrics(add_partner, make_client):
    secret = add_partner()
    client = make_client(rate_limit_per_second=0.5, rate_limit_rows_per_minute=0)
    for _ in range(3):
        client.post(API, json=body(secret))
    metrics = client.get("/metrics").text
    assert 'voip24h_rate_limited_total{limit="requests"} 2.0' in metrics
    assert 'voip24h_requests_total{request_type="getUser",status="429"} 2.0' in metrics


def test_partner_limits_from_the_command_line(settings, add_partner, make_client):
    from click.testing import CliRunner

    from voip24h.cli.main import cli

    runner = CliRunner()
    db = ["--db", settings.database_url]
    added = runner.invoke(cli, ["partner", "add", "slow", "--rate", "0.5", "--json", *db])
    assert added.exit_code == 0, added.output
    secret = json.loads(added.output)["secret"]
    shown = runner.invoke(cli, ["partner", "limits", "slow", "--json", *db])
    assert json.loads(shown.output) == {
        "name": "slow",
        "rate_per_second": 0.5,
        "rows_per_minute": None,
    }
    client = make_client(rate_limit_per_second=5, rate_limit_rows_per_minute=0)
    assert [client.post(API, json=body(secret)).status_code for _ in range(2)] == [200, 429]
    changed = runner.invoke(
        cli, ["partner", "limits", "slow", "--rate", "default", "--rows-per-minute", "0", *db]
    )
    assert changed.exit_code == 0, changed.output
    assert "rate_per_second: 10.0 (server default)" in changed.output  # the CLI's settings
    assert "rows_per_minute: unlimited" in changed.output
    bad = runner.invoke(cli, ["partner", "limits", "slow", "--rate", "-1", *db])
    assert bad.exit_code != 0 and "negative" in bad.output
    missing = runner.invoke(cli, ["partner", "limits", "nobody", *db])
    assert missing.exit_code != 0 and "no partner named 'nobody'" in missing.output


def test_remaining_counts_whole_units_exactly():
    from voip24h.server.ratelimit import gcra

    verdict, _ = gcra(None, 1000.0, 0.1, 10, 1, "take")  # 10/s, burst 10: 9 left
    assert (verdict.allowed, verdict.remaining) == (True, 9)
    verdict, _ = gcra(None, 1000.0, 60 / 7, 7, 1, "peek")
    assert verdict.remaining == 7


def test_in_process_buckets_stay_bounded_under_a_flood_of_keys():
    import asyncio

    from voip24h.server.ratelimit import MemoryBuckets

    buckets = MemoryBuckets(max_keys=100)

    async def flood() -> None:
        for n in range(1000):
            await buckets.hit(f"af:198.51.{n // 256}.{n % 256}", 3.0, 20, 1, "force")

    asyncio.run(flood())
    assert len(buckets._tat) <= 100


def test_a_bucket_of_one_unit_always_allows_its_first_request():
    from voip24h.server.ratelimit import gcra

    # (now + interval) - interval is not always now in floating point.
    nows = [1000.0 + i * 0.0137 for i in range(2000)]
    assert all(gcra(None, now, 60.0, 1, 1, "take")[0].allowed for now in nows)
    assert not gcra(nows[0] + 60.0, nows[0], 60.0, 1, 1, "take")[0].allowed

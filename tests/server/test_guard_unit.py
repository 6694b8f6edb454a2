"""server/guard.py on its own: no HTTP server, no database.

The partner directory is a dict of secrets; the buckets run the real GCRA arithmetic
(server/ratelimit.py:gcra) on a clock the test moves by hand.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.requests import Request

from voip24h import errors
from voip24h.config import Settings
from voip24h.domain.partners import Scope
from voip24h.server.guard import BEARER_NOT_VALID, Guard, bearer_secret, check_shape, request_info
from voip24h.server.observability import Metrics
from voip24h.server.ratelimit import Mode, Verdict, gcra
from voip24h.service.answers import Partner
from voip24h.wire.protocol import DATA_TYPES, PATH, Envelope

ALICE = Partner(1, "alice", Scope())
SLOW = Partner(2, "slow", Scope(), rate_per_second=0.5, rows_per_minute=10)


class Clock:
    """Seconds that pass only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0


class ClockBuckets:
    """GCRA buckets on the test's clock."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.tat: dict[str, float] = {}

    async def hit(
        self, key: str, interval: float, capacity: int, cost: int = 1, mode: Mode = "take"
    ) -> Verdict:
        verdict, new_tat = gcra(self.tat.get(key), self.clock.now, interval, capacity, cost, mode)
        if new_tat is not None:
            self.tat[key] = new_tat
        return verdict

    async def close(self) -> None:
        self.tat.clear()


class Directory:
    """PartnerDirectory's contract: MissingSecret for none, InvalidSecret for unknown."""

    def __init__(self, partners: dict[str, Partner]) -> None:
        self.partners = partners

    async def authenticate(self, secret: str | None) -> Partner:
        if not secret:
            raise errors.MissingSecret()
        if secret not in self.partners:
            raise errors.InvalidSecret()
        return self.partners[secret]


def make_request(client: str = "10.0.0.1", authorization: str | None = None) -> Request:
    headers = [] if authorization is None else [(b"authorization", authorization.encode())]
    scope: dict[str, Any] = {
        "type": "http", "method": "POST", "path": PATH, "query_string": b"",
        "headers": headers, "client": (client, 40000),
    }  # fmt: skip
    return Request(scope)


def envelope(secret: str | None, data: Any = None) -> Envelope:
    return Envelope("getUser", secret, {"user": "101"} if data is None else data)


class Rig:
    def __init__(self, **settings: Any) -> None:
        self.clock = Clock()
        self.metrics = Metrics(tuple(DATA_TYPES))
        options = {"rate_limit_per_second": 0.0, "rate_limit_rows_per_minute": 0, **settings}
        self.settings = Settings().replace(**options)
        self.guard = Guard(
            self.settings,
            Directory({"alice-secret": ALICE, "slow-secret": SLOW}),  # type: ignore[arg-type]
            ClockBuckets(self.clock),
            self.metrics,
        )

    def admit(self, secret: str | None, request: Request | None = None, data: Any = None) -> Any:
        return asyncio.run(self.guard.admit(request or make_request(), envelope(secret, data)))

    def count(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name + "_total", labels or None) or 0.0


# --- secrets -------------------------------------------------------------------------


def test_a_known_secret_admits_its_partner_and_names_it_in_the_request_info():
    rig = Rig()
    request = make_request()
    assert rig.admit("alice-secret", request) == ALICE
    info = request_info(request)
    assert (info.partner_id, info.partner, info.request_type) == (1, "alice", "getUser")
    assert info.params == {"user": "101"}


def test_no_secret_is_missing_secret_and_a_wrong_one_invalid_secret():
    rig = Rig()
    with pytest.raises(errors.MissingSecret) as missing:
        rig.admit(None)
    assert missing.value.status == 401 and missing.value.message == "partnerSecret is required."
    with pytest.raises(errors.InvalidSecret) as wrong:
        rig.admit("guess")
    assert wrong.value.message == "partnerSecret is not valid."
    assert rig.count("voip24h_auth_failures") == 1


def test_the_bearer_header_wins_over_the_body_and_says_it_was_the_header():
    rig = Rig()
    header = make_request(authorization="Bearer alice-secret")
    assert rig.admit("wrong-body-secret", header) == ALICE
    with pytest.raises(errors.InvalidSecret) as exc:
        rig.admit("alice-secret", make_request(authorization="Bearer nope"))
    assert exc.value.message == BEARER_NOT_VALID


def test_a_secret_longer_than_any_string_allowed_is_invalid_without_a_lookup():
    rig = Rig(max_string_length=16)
    with pytest.raises(errors.InvalidSecret):
        rig.admit("x" * 17)


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer   abc  ", "abc"),
        ("Basic abc", None),
        ("Bearer", None),
        ("Bearer   ", None),
        (None, None),
    ],
)
def test_bearer_secret_reads_only_a_bearer_token(header, token):
    assert bearer_secret(make_request(authorization=header)) == token


# --- the failed-secret throttle ------------------------------------------------------


def test_an_address_with_too_many_failed_checks_gets_429_until_the_bucket_refills():
    rig = Rig(auth_failures_per_minute=3)
    for _ in range(3):
        with pytest.raises(errors.InvalidSecret):
            rig.admit("guess")
    with pytest.raises(errors.RateLimited) as exc:
        rig.admit("alice-secret")  # the right secret too: the address is throttled
    assert exc.value.status == 429 and exc.value.headers == {"Retry-After": "20"}
    assert "failed secret checks from this address" in exc.value.message
    assert rig.count("voip24h_rate_limited", limit="auth_failures") == 1
    # Another address is not throttled; the same one is again after one refill interval.
    assert rig.admit("alice-secret", make_request(client="10.0.0.2")) == ALICE
    rig.clock.now += 20
    assert rig.admit("alice-secret") == ALICE


def test_successful_checks_never_fill_the_failed_secret_bucket():
    rig = Rig(auth_failures_per_minute=1)
    for _ in range(5):
        assert rig.admit("alice-secret") == ALICE


# --- request and row limits ----------------------------------------------------------


def test_the_request_rate_refuses_past_the_burst_with_retry_after_and_ratelimit_headers():
    rig = Rig(rate_limit_per_second=2.0)
    assert rig.admit("alice-secret") == ALICE
    assert rig.admit("alice-secret") == ALICE
    with pytest.raises(errors.RateLimited) as exc:
        rig.admit("alice-secret")
    headers = exc.value.headers
    assert headers["Retry-After"] == "1"
    assert headers["RateLimit-Policy"] == '"requests";q=2;w=1'
    assert headers["RateLimit"].startswith('"requests";r=0;')
    assert rig.count("voip24h_rate_limited", limit="requests") == 1
    rig.clock.now += 0.5  # one request's worth refilled
    assert rig.admit("alice-secret") == ALICE


def test_a_partners_own_limits_replace_the_server_defaults():
    rig = Rig(rate_limit_per_second=100.0)
    assert rig.admit("slow-secret") == SLOW  # 0.5/s: a burst of one
    with pytest.raises(errors.RateLimited) as exc:
        rig.admit("slow-secret")
    assert exc.value.headers["Retry-After"] == "2"
    assert rig.admit("alice-secret") == ALICE  # alice keeps the server's 100/s


def test_charge_books_rows_and_the_next_request_is_refused_once_the_budget_is_spent():
    rig = Rig(rate_limit_rows_per_minute=10)
    request = make_request()
    partner = rig.admit("alice-secret", request)
    headers = asyncio.run(rig.guard.charge(request, partner, 25))  # answers are never cut
    assert request_info(request).rows == 25
    assert headers["RateLimit-Policy"] == '"rows";q=10;w=60'
    assert headers["RateLimit"].startswith('"rows";r=0;')
    with pytest.raises(errors.RateLimited) as exc:
        rig.admit("alice-secret")
    assert "too many records this minute" in exc.value.message
    assert rig.count("voip24h_rate_limited", limit="rows") == 1


def test_no_limits_configured_means_no_ratelimit_headers():
    rig = Rig()
    request = make_request()
    partner = rig.admit("alice-secret", request)
    assert asyncio.run(rig.guard.charge(request, partner, 5)) == {}


def test_the_dial_budget_is_a_limit_of_its_own():
    rig = Rig(dials_per_minute=2, rate_limit_per_second=1.0)
    assert asyncio.run(rig.guard.dial_budget(1)) is None
    assert asyncio.run(rig.guard.dial_budget(1)) is None
    wait = asyncio.run(rig.guard.dial_budget(1))
    assert wait == pytest.approx(30.0)
    assert asyncio.run(rig.guard.dial_budget(2)) is None  # another partner's budget
    assert rig.count("voip24h_rate_limited", limit="dials") == 1
    assert rig.admit("alice-secret") == ALICE  # the request budget is untouched


def test_no_dial_limit_means_every_dial_is_allowed():
    rig = Rig(dials_per_minute=0)
    assert all(asyncio.run(rig.guard.dial_budget(1)) is None for _ in range(20))


# --- the shape of data ---------------------------------------------------------------


def test_admit_refuses_a_too_deep_data_before_checking_the_secret():
    rig = Rig(max_json_depth=2)
    with pytest.raises(errors.RequestTooComplex) as exc:
        rig.admit(None, data={"a": {"b": {"c": 1}}})  # no secret: the shape comes first
    assert exc.value.message == "data is nested deeper than 2 levels."


LONG_STRING = "A string in data is longer than 8 characters."
LONG_NAME = "A field name in data is longer than 8 characters."
TOO_DEEP = "data is nested deeper than 2 levels."


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        ({"user": "x" * 9}, errors.ValueTooLong, LONG_STRING),
        ({"u" * 9: 1}, errors.ValueTooLong, LONG_NAME),
        ({"a": ["x" * 9]}, errors.ValueTooLong, LONG_STRING),
        ({"a": {"k" * 9: 1}}, errors.ValueTooLong, LONG_NAME),
        ({"a": [[1]]}, errors.RequestTooComplex, TOO_DEEP),
        ([[[]]], errors.RequestTooComplex, TOO_DEEP),
    ],
)
def test_check_shape_refuses(data, error, message):
    with pytest.raises(error) as exc:
        check_shape(data, 2, 8)
    assert exc.value.message == message
    assert exc.value.status == 400


@pytest.mark.parametrize(
    "data",
    [{"user": "x" * 8, "n": 3, "ok": None}, {"a": ["x" * 8, 1]}, [1, 2], "x" * 8, None, {}],
)
def test_check_shape_allows_values_within_the_limits(data):
    assert check_shape(data, 2, 8) is None

"""The client's retry arithmetic and answer interpretation, without a server."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import httpx
import pytest

from voip24h.client import BadRequest, Client, RateLimited, RetryPolicy, ServiceUnavailable
from voip24h.client._core import endpoint, retry_after_seconds


def test_backoff_grows_with_jitter_and_a_cap():
    policy = RetryPolicy(backoff=0.5, max_backoff=4.0)
    rng = random.Random(7)
    for attempt, (low, high) in enumerate([(0.25, 0.5), (0.5, 1), (1, 2), (2, 4), (2, 4)], 1):
        delays = {policy.delay(attempt, None, rng) for _ in range(50)}
        assert all(low <= d <= high for d in delays), attempt
        assert len(delays) > 40  # jittered: clients do not retry in step


def test_retry_after_is_a_floor():
    policy = RetryPolicy(backoff=0.5)
    rng = random.Random(1)
    assert all(3 <= policy.delay(1, 3.0, rng) <= 3.5 for _ in range(50))


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        (" 2.5 ", 2.5),
        ("-3", 0.0),
        ("Fri, 27 Nov 2026 06:00:30 GMT", 30.0),
        ("Fri, 27 Nov 2026 05:59:00 GMT", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_header_forms(header, seconds):
    now = datetime(2026, 11, 27, 6, 0, 0, tzinfo=UTC)
    assert retry_after_seconds(header, now) == seconds


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://h:8024", "http://h:8024/api/v1/partner/voip24h"),
        ("https://cdr.example.com/", "https://cdr.example.com/api/v1/partner/voip24h"),
        ("https://x/api/v1/partner/voip24h", "https://x/api/v1/partner/voip24h"),
        ("https://x/prefix", "https://x/prefix/api/v1/partner/voip24h"),
    ],
)
def test_endpoint(url, expected):
    assert endpoint(url) == expected


def _answer(status: int, body: dict, headers: dict | None = None) -> httpx.MockTransport:
    return httpx.MockTransport(lambda _request: httpx.Response(status, json=body, headers=headers))


def test_a_minus_one_answer_with_http_200_is_still_an_error():
    body = {"respCode": -1, "respMsg": "Partner secret invalid", "errorCode": "x"}
    with (
        Client("http://h", "s", transport=_answer(200, body)) as api,
        pytest.raises(BadRequest) as caught,
    ):
        api.get_user("137")
    assert (caught.value.status, caught.value.resp_msg) == (200, "Partner secret invalid")


def test_a_retry_after_beyond_the_maximum_is_not_waited_for():
    body = {"respCode": -1, "respMsg": "slow down", "errorCode": "rate_limited"}
    slept: list[float] = []
    transport = _answer(429, body, {"Retry-After": "3600"})
    with (
        Client("http://h", "s", transport=transport, sleep=slept.append) as api,
        pytest.raises(RateLimited) as caught,
    ):
        api.get_user("137")
    assert slept == [] and caught.value.retry_after == 3600


def test_never_retries_other_4xx():
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(
            413, json={"respCode": -1, "respMsg": "too big", "errorCode": "payload_too_large"}
        )

    with (
        Client("http://h", "s", transport=httpx.MockTransport(handler)) as api,
        pytest.raises(BadRequest),
    ):
        api.get_user("137")
    assert len(calls) == 1


def test_timeouts_are_on_by_default():
    with Client("http://h", "s") as api:
        timeout = api._http.timeout
    assert (timeout.connect, timeout.read, timeout.write, timeout.pool) == (5.0, 30.0, 30.0, 30.0)


def test_a_query_too_slow_for_the_server_is_not_retried():
    body = {"respCode": -1, "respMsg": "narrow it", "errorCode": "database_timeout"}
    slept: list[float] = []
    with (
        Client("http://h", "s", transport=_answer(503, body), sleep=slept.append) as api,
        pytest.raises(ServiceUnavailable) as caught,
    ):
        api.get_date("01/01/2018", "31/12/2018")
    assert slept == [] and caught.value.error_code == "database_timeout"

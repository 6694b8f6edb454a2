"""voip24h.client against the real server, in-process: records, dates, zones, errors."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.builders import cdr_row, chan
from voip24h.client import (
    AsyncClient,
    AuthenticationError,
    BadRequest,
    CallRecord,
    Client,
    PermissionDenied,
    ProtocolError,
    ServiceUnavailable,
)
from voip24h.server.app import create_app

HCM = ZoneInfo("Asia/Ho_Chi_Minh")


class Counting(httpx.BaseTransport):
    """Wraps a transport and counts the requests that go through it."""

    def __init__(self, inner: httpx.BaseTransport):
        self.inner = inner
        self.sent = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        return self.inner.handle_request(request)


@pytest.fixture
def seed_calls(load):
    load(
        cdr_row(uniqueid="1532857052.131132", disposition="NO ANSWER", billsec=0),
        cdr_row(
            uniqueid="1532834934.130789",
            calldate=datetime(2018, 7, 29, 10, 28, 54),
            dst="0971828252",
            disposition="NO ANSWER",
            billsec=0,
        ),
        cdr_row(
            uniqueid="1530000000.1",
            calldate=datetime(2018, 6, 26, 14, 0, 0),
            src="205",
            channel=chan("205"),
        ),
    )


@pytest.fixture
def transport(client):
    """The in-process transport of a started TestClient (lifespan run, database open)."""
    return Counting(client._transport)


def test_each_request_type_returns_typed_records(seed_calls, add_partner, transport):
    secret = add_partner()
    with Client("http://testserver", secret, transport=transport) as api:
        by_user = api.get_user("137")
        by_date = api.get_date("29/07/2018", "29/07/2018")
        by_both = api.get_user_date(137, date(2018, 7, 1), date(2018, 7, 30))
    assert by_user == by_both == by_date
    first = by_user[0]
    assert first == CallRecord(
        call_id="1532857052.131132",
        user="137",
        phone_number="0982056720",
        call_type="EXTERNAL",
        call_status="NO ANSWER",
        call_date=datetime(2018, 7, 29, 16, 37, 32, tzinfo=HCM),
    )
    # callDate is aware: the epoch part of callId is that very instant.
    assert [int(r.call_date.timestamp()) for r in by_user] == [
        int(r.call_id.split(".")[0]) for r in by_user
    ]
    assert first.call_date.utcoffset().total_seconds() == 7 * 3600
    assert first.to_wire()["callDate"] == "2018-07-29 16:37:32"


def test_zone_is_configurable(seed_calls, add_partner, transport):
    secret = add_partner()
    with Client("http://testserver", secret, zone="UTC", transport=transport) as api:
        record = api.get_user("137")[0]
    # The wall-clock time is the server's; the zone says where that clock hangs.
    assert record.call_date == datetime(2018, 7, 29, 16, 37, 32, tzinfo=UTC)


def test_endpoint_url_may_be_given_in_full(seed_calls, add_partner, transport):
    secret = add_partner()
    url = "http://testserver/api/v1/partner/voip24h"
    with Client(url, secret, transport=transport) as api:
        assert len(api.get_user("137")) == 2
    assert api.url == url


@pytest.mark.parametrize(
    ("secret_kind", "call", "error", "status", "code"),
    [
        ("wrong", lambda api: api.get_user("137"), AuthenticationError, 401, "invalid_secret"),
        ("scoped", lambda api: api.get_user("205"), PermissionDenied, 403, "user_not_permitted"),
        (
            "good",
            lambda api: api.get_date("31/02/2018", "01/03/2018"),
            BadRequest,
            400,
            "invalid_date",
        ),
        (
            "good",
            lambda api: api.get_date("02/03/2018", "01/03/2018"),
            BadRequest,
            400,
            "date_range_reversed",
        ),
        ("good", lambda api: api.get_user("viettel"), BadRequest, 400, "invalid_user"),
    ],
)
def test_errors_carry_the_envelope_and_are_not_retried(
    seed_calls, add_partner, transport, secret_kind, call, error, status, code
):
    secret = {
        "wrong": "not-a-secret",
        "scoped": add_partner("scoped", extensions=("137",)),
        "good": add_partner("good"),
    }[secret_kind]
    slept: list[float] = []
    with (
        Client("http://testserver", secret, transport=transport, sleep=slept.append) as api,
        pytest.raises(error) as caught,
    ):
        call(api)
    exc = caught.value
    assert (exc.resp_code, exc.status, exc.error_code) == (-1, status, code)
    assert (exc.respCode, exc.respMsg, exc.errorCode) == (-1, exc.resp_msg, code)
    assert exc.resp_msg and exc.resp_msg in str(exc)
    assert transport.sent == 1 and slept == []


def test_secret_is_never_in_repr_errors_or_logs(seed_calls, add_partner, transport, caplog):
    secret = add_partner("scoped", extensions=("137",))
    caplog.set_level(logging.DEBUG)
    with Client("http://testserver", secret, transport=transport) as api:
        api.get_user("137")
        with pytest.raises(PermissionDenied) as caught:
            api.get_user("205")
        shown = [repr(api), str(api), repr(caught.value), str(caught.value)]
    shown += [record.getMessage() for record in caplog.records]
    assert caplog.records, "httpx should have logged the requests"
    assert not [text for text in shown if secret in text]
    assert "secret='***'" in repr(api)


def test_async_client_in_process(seed_calls, add_partner, settings):
    secret = add_partner()
    app = create_app(settings)

    async def run() -> tuple[list[CallRecord], Exception]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with AsyncClient("http://testserver", secret, transport=transport) as api:
                records = await api.get_user_date("137", "01/07/2018", "30/07/2018")
            async with AsyncClient("http://testserver", "nope", transport=transport) as api:
                try:
                    await api.get_user("137")
                except AuthenticationError as exc:
                    return records, exc
        raise AssertionError("no error raised")

    records, error = asyncio.run(run())
    assert [r.call_id for r in records] == ["1532857052.131132", "1532834934.130789"]
    assert records[1].call_date == datetime(2018, 7, 29, 10, 28, 54, tzinfo=HCM)
    assert error.error_code == "invalid_secret"


def test_a_proxy_error_page_is_not_mistaken_for_an_answer():
    def html(status: int):
        return httpx.MockTransport(
            lambda request: httpx.Response(
                status, text="<html>Bad Gateway</html>", headers={"content-type": "text/html"}
            )
        )

    slept: list[float] = []
    with (
        Client("http://proxy", "s3cret", transport=html(502), sleep=slept.append) as api,
        pytest.raises(ServiceUnavailable) as caught,
    ):
        api.get_user("137")
    assert caught.value.error_code == "http_502" and len(slept) == api.retry.attempts - 1
    with (
        Client("http://proxy", "s3cret", transport=html(200)) as api,
        pytest.raises(ProtocolError, match="not a voip24h answer"),
    ):
        api.get_user("137")


def test_bad_arguments_fail_before_sending():
    with pytest.raises(ValueError, match="http"):
        Client("cdr.example.com", "s")
    with pytest.raises(ValueError, match="secret"):
        Client("http://cdr.example.com", "")
    with pytest.raises(ValueError, match="auth"):
        Client("http://cdr.example.com", "s", auth="query")

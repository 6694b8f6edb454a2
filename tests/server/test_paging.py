"""Keyset paging (limit, cursor -> nextCursor) on all three databases."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest

from tests.builders import cdr_row
from tests.conftest import API
from tests.support import unlimited
from voip24h.domain import cdr
from voip24h.ingest.loader import Loader


@pytest.fixture
def client(make_client: Any, settings: Any) -> Any:
    """The app without per-partner rate limits: these tests send many requests quickly."""
    return make_client(**unlimited(settings))


START = datetime(2018, 7, 1, 8, 0, 0)


def page(client: Any, secret: str, request_type: str, data: dict[str, Any]) -> dict[str, Any]:
    response = client.post(
        API, json={"requestType": request_type, "partnerSecret": secret, "data": data}
    )
    assert response.status_code == 200, response.text
    return response.json()


def walk(client: Any, secret: str, data: dict[str, Any], limit: int) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    cursor = None
    while True:
        body = page(
            client,
            secret,
            "getDate",
            {**data, "limit": limit, "cursor": cursor} if cursor else {**data, "limit": limit},
        )
        seen += [(r["callId"], r["user"]) for r in body["data"]]
        cursor = body["nextCursor"]
        if cursor is None:
            return seen


def test_pages_follow_the_seed_order_and_end_with_null(load, add_partner, client):
    same = datetime(2018, 7, 1, 9, 0, 0)
    load(
        cdr_row(uniqueid="p.1", calldate=same),
        cdr_row(uniqueid="p.2", calldate=same),
        cdr_row(uniqueid="p.3", calldate=same + timedelta(hours=1)),
        # An internal call: two records with the same callId and the same callDate.
        cdr_row(
            uniqueid="p.4",
            calldate=same,
            src="101",
            dst="102",
            channel="PJSIP/101-1",
            dstchannel="PJSIP/102-2",
        ),
    )
    secret = add_partner()
    everything = page(client, secret, "getDate", {"fromDate": "01/07/2018", "toDate": "01/07/2018"})
    order = [(r["callId"], r["user"]) for r in everything["data"]]
    assert order[:1] == [("p.3", "137")]
    assert "nextCursor" not in everything
    first = page(
        client, secret, "getDate", {"fromDate": "01/07/2018", "toDate": "01/07/2018", "limit": 2}
    )
    assert [(r["callId"], r["user"]) for r in first["data"]] == order[:2]
    assert isinstance(first["nextCursor"], str)
    window = {"fromDate": "01/07/2018", "toDate": "01/07/2018"}
    assert walk(client, secret, window, 1) == order
    assert walk(client, secret, window, 2) == order
    last = page(client, secret, "getDate", {**window, "limit": 5})
    assert last["nextCursor"] is None and len(last["data"]) == 5


def test_paging_works_with_user_filters_and_extended_fields(load, add_partner, client):
    load(
        *[
            cdr_row(
                uniqueid=f"u.{n}",
                calldate=START + timedelta(minutes=n),
                disposition="ANSWERED" if n % 2 else "BUSY",
            )
            for n in range(9)
        ]
    )
    secret = add_partner()
    data = {"user": "137", "callStatus": ["ANSWERED"], "limit": 3, "fields": ["billsec"]}
    first = page(client, secret, "getUser", data)
    assert [r["callId"] for r in first["data"]] == ["u.7", "u.5", "u.3"]
    assert all(r["billsec"] == 30 for r in first["data"])
    second = page(client, secret, "getUser", {**data, "cursor": first["nextCursor"]})
    assert [r["callId"] for r in second["data"]] == ["u.1"]
    assert second["nextCursor"] is None


def test_cursor_without_limit_uses_the_page_size(load, add_partner, make_client, settings):
    load(*[cdr_row(uniqueid=f"s.{n}", calldate=START + timedelta(minutes=n)) for n in range(5)])
    secret = add_partner()
    client = make_client(page_size=2, **unlimited(settings))
    first = page(client, secret, "getUser", {"user": "137", "limit": 1})
    second = page(client, secret, "getUser", {"user": "137", "cursor": first["nextCursor"]})
    assert [r["callId"] for r in second["data"]] == ["s.3", "s.2"]


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor",
        base64.urlsafe_b64encode(b'[2,1,"a","137"]').decode(),
        base64.urlsafe_b64encode(b'[1,"x","a","137"]').decode(),
        base64.urlsafe_b64encode(orjson.dumps({"ts": 1})).decode(),
    ],
)
def test_a_cursor_the_server_did_not_make_is_refused(cursor, load, add_partner, post):
    load(cdr_row(uniqueid="c.1"))
    secret = add_partner()
    response = post("getUser", secret, {"user": "137", "limit": 2, "cursor": cursor})
    assert response.status_code == 400
    assert response.json()["errorCode"] == "invalid_cursor"


def test_limit_bounds(load, add_partner, post):
    load(cdr_row(uniqueid="l.1"))
    secret = add_partner()
    for limit, code in [
        (0, "invalid_field"),
        (-3, "invalid_field"),
        (1001, "invalid_field"),
        ("7", "invalid_field"),
    ]:
        response = post("getUser", secret, {"user": "137", "limit": limit})
        assert response.status_code == 400
        assert response.json()["errorCode"] == code
    assert post("getUser", secret, {"user": "137", "limit": 1000}).status_code == 200


def test_a_page_never_hits_result_too_large(load, add_partner, make_client, settings):
    load(*[cdr_row(uniqueid=f"b.{n}", calldate=START + timedelta(minutes=n)) for n in range(6)])
    secret = add_partner()
    client = make_client(max_records=3, **unlimited(settings))
    body = page(client, secret, "getUser", {"user": "137", "limit": 3})
    assert len(body["data"]) == 3 and body["nextCursor"]


def _rows(first: int, count: int, base: datetime, step: timedelta) -> list[dict[str, Any]]:
    rows = []
    for n in range(first, first + count):
        # Several calls share each second, so ties on callDate are exercised as well.
        rows.append(
            cdr_row(
                uniqueid=f"{1530000000 + n // 3}.{n}",
                calldate=base + step * (n // 3),
                dst=f"09{n:08d}",
                channel=f"PJSIP/{100 + n % 50}-{n:08x}",
                linkedid="",
                sequence=1,
            )
        )
    return rows


def _user_of(row: dict[str, Any]) -> str:
    return str(row["channel"].split("/")[1].split("-")[0])


@pytest.mark.slow
def test_walk_10000_records_in_pages_of_7_while_calls_arrive(
    engine, settings, add_partner, make_client
):
    loader = Loader(engine, settings)
    loader.check_ready()
    zone = settings.zone
    old = _rows(0, 10_000, START, timedelta(seconds=1))
    loader.load((cdr.normalize(row, zone) for row in old), batch_size=10_000)
    expected = {(row["uniqueid"], _user_of(row)) for row in old}
    secret = add_partner()
    client = make_client(**unlimited(settings))
    window = {"fromDate": "01/07/2018", "toDate": "31/07/2018"}
    seen: list[tuple[str, str]] = []
    cursor = None
    arrived = 0
    pages = 0
    while True:
        data = {**window, "limit": 7}
        if cursor:
            data["cursor"] = cursor
        body = page(client, secret, "getDate", data)
        pages += 1
        seen += [(r["callId"], r["user"]) for r in body["data"]]
        cursor = body["nextCursor"]
        if cursor is None:
            break
        if pages % 5 == 0:
            # New calls arrive between pages: newer than everything already sent...
            later = START + timedelta(days=5, seconds=arrived)
            new = _rows(20_000 + arrived, 3, later, timedelta(seconds=1))
            if pages % 100 == 0:
                # ...and now and then a late import, older than every record so far: it is
                # still ahead of the cursor, so the walk must send it exactly once.
                late = _rows(40_000 + pages, 1, START - timedelta(hours=1), timedelta(0))
                expected |= {(row["uniqueid"], _user_of(row)) for row in late}
                new += late
            loader.load(cdr.normalize(row, zone) for row in new)
            arrived += 3
    assert arrived > 0
    assert len(seen) == len(set(seen)), "a record was sent twice"
    assert set(seen) == expected, "records were skipped"
    late_count = len(expected) - 10_000
    assert late_count == 14
    assert pages == -(-(10_000 + late_count) // 7)

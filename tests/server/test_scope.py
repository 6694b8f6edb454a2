"""Partners see only their tenants and extensions: every request type, filter, paging and
export path, checked against the raw table (with partner A's secret no answer ever carries a
record of tenant B)."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import datetime, timedelta

import orjson
import pytest
from sqlalchemy import select

from tests.builders import cdr_row, chan
from tests.conftest import API
from voip24h.db.schema import call_records
from voip24h.domain.partners import parse_extensions

START = datetime(2018, 7, 10, 9, 0, 0)
WINDOW = {"fromDate": "01/07/2018", "toDate": "31/07/2018"}


@pytest.fixture
def tenants(load):
    """acme and globex reuse extension numbers 101-105; globex also has 201-205."""
    rows = []
    n = 0
    for account, exts in [
        ("acme", ["101", "102", "103", "104", "105", "150"]),
        ("globex", ["101", "102", "103", "104", "105", "201", "202", "205"]),
    ]:
        for ext in exts:
            for kind in ("out", "in"):
                n += 1
                start = START + timedelta(minutes=n)
                uid = f"{1531188000 + n * 60}.{n}"
                if kind == "out":
                    rows.append(
                        cdr_row(
                            uniqueid=uid,
                            calldate=start,
                            accountcode=account,
                            src=ext,
                            channel=chan(ext),
                            dst=f"09{n:08d}",
                        )
                    )
                else:
                    rows.append(
                        cdr_row(
                            uniqueid=uid,
                            calldate=start,
                            accountcode=account,
                            src=f"03{n:08d}",
                            dst=ext,
                            channel=chan("viettel-trunk"),
                            dstchannel=chan(ext),
                        )
                    )
    load(*rows)


def raw_rows(engine, records):
    """The stored rows behind the returned records."""
    out = []
    with engine.connect() as conn:
        for record in records:
            row = (
                conn.execute(
                    select(call_records).where(
                        call_records.c.callid == record["callId"],
                        call_records.c.user_ext == record["user"],
                    )
                )
                .mappings()
                .one()
            )
            out.append(row)
    return out


SCOPES = [
    (("acme",), (), lambda row: row["accountcode"] == "acme"),
    ((), ("100-199",), lambda row: row["user_ext"] in parse_extensions("100-199")),
    (
        ("globex",),
        ("200-299", "101"),
        lambda row: (
            row["accountcode"] == "globex" and row["user_ext"] in ("101", "201", "202", "205")
        ),
    ),
]


@pytest.mark.parametrize(
    ("accountcodes", "extensions", "allowed"),
    SCOPES,
    ids=["tenant", "extensions", "tenant+extensions"],
)
def test_scope_holds_in_every_request_type(
    tenants, add_partner, post, engine, accountcodes, extensions, allowed
):
    secret = add_partner("p", accountcodes=accountcodes, extensions=extensions)
    with engine.connect() as conn:
        everything = conn.execute(select(call_records)).mappings().all()
    expected_all = {(r["callid"], r["user_ext"]) for r in everything if allowed(r)}
    assert expected_all and len(expected_all) < len(everything)

    got = post("getDate", secret, WINDOW).json()["data"]
    assert {(r["callId"], r["user"]) for r in got} == expected_all
    assert all(allowed(row) for row in raw_rows(engine, got))

    for user in ["101", "102", "150", "201", "205"]:
        expected = {key for key in expected_all if key[1] == user}
        for request_type, data in [
            ("getUser", {"user": user}),
            ("getUserDate", {"user": user, **WINDOW}),
        ]:
            response = post(request_type, secret, data)
            if not extensions or user in parse_extensions(*extensions):
                got = response.json()["data"]
                assert {(r["callId"], r["user"]) for r in got} == expected
                assert all(allowed(row) for row in raw_rows(engine, got))
            else:
                assert response.status_code == 403
                assert response.json()["errorCode"] == "user_not_permitted"
                assert "data" not in response.json()


def test_tenant_partner_asking_for_a_reused_extension_sees_only_its_tenant(
    tenants, add_partner, post, engine
):
    secret = add_partner("acme-crm", accountcodes=("acme",))
    got = post("getUser", secret, {"user": "101"}).json()["data"]
    assert len(got) == 2
    assert {row["accountcode"] for row in raw_rows(engine, got)} == {"acme"}


def test_range_does_not_match_longer_or_zero_padded_extensions(load, add_partner, post):
    load(
        cdr_row(uniqueid="x.1", src="1500", channel=chan("1500")),
        cdr_row(uniqueid="x.2", src="0150", channel=chan("0150")),
        cdr_row(uniqueid="x.3", src="150", channel=chan("150")),
    )
    secret = add_partner("p", extensions=("100-199",))
    got = post("getDate", secret, {"fromDate": "29/07/2018", "toDate": "29/07/2018"}).json()["data"]
    assert [r["user"] for r in got] == ["150"]
    assert post("getUser", secret, {"user": "1500"}).status_code == 403
    assert post("getUser", secret, {"user": "0150"}).status_code == 403


USERS = ["101", "102", "103", "104", "105", "150", "201", "205"]
FILTERS = [
    {},
    {"callStatus": ["ANSWERED"]},
    {"callType": "EXTERNAL"},
    {"direction": "INBOUND"},
    {"direction": "OUTBOUND"},
    {"phoneNumber": "09*"},
    {"phonePrefix": "03"},
    {"extended": True},
    {"fields": ["did", "linkedid"]},
]


@pytest.fixture
def ask(make_client):
    client = make_client(rate_limit_per_second=0, rate_limit_rows_per_minute=0)

    def _ask(secret, request_type, **data):
        body = {"requestType": request_type, "partnerSecret": secret, "data": data}
        return client.post(API, json=body)

    return _ask


@pytest.fixture
def acme(tenants, add_partner, engine):
    """Partner of tenant acme: its secret and the raw (callId, user) keys it may see."""
    secret = add_partner("acme-crm", accountcodes=("acme",))
    with engine.connect() as conn:
        rows = conn.execute(select(call_records)).mappings().all()
    mine = {(r["callid"], r["user_ext"]) for r in rows if r["accountcode"] == "acme"}
    theirs = {(r["callid"], r["user_ext"]) for r in rows if r["accountcode"] != "acme"}
    assert mine and theirs
    return secret, mine, theirs


def keys(records):
    return {(r["callId"], r["user"]) for r in records}


def assert_only_acme(engine, records):
    assert all(row["accountcode"] == "acme" for row in raw_rows(engine, records))


def walk(ask, secret, request_type, **data):
    """Every record of a request, page by page (limit 2)."""
    records, cursor, pages = [], None, 0
    while True:
        extra = {"cursor": cursor} if cursor else {}
        body = ask(secret, request_type, limit=2, **data, **extra).json()
        records += body["data"]
        pages += 1
        cursor = body.get("nextCursor")
        if not cursor:
            return records, pages


def test_listing_requests_with_every_filter(acme, ask, engine):
    secret, mine, theirs = acme
    for filters in FILTERS:
        got = ask(secret, "getDate", **WINDOW, **filters).json()["data"]
        assert keys(got) <= mine and not keys(got) & theirs, filters
        assert_only_acme(engine, got)
        if not filters or "extended" in filters or "fields" in filters:
            assert keys(got) == mine
        for user in USERS:
            for request_type, data in (("getUser", {}), ("getUserDate", WINDOW)):
                got = ask(secret, request_type, user=user, **data, **filters).json()["data"]
                allowed = {k for k in mine if k[1] == user}
                assert keys(got) <= allowed
                if not filters:
                    assert keys(got) == allowed
                assert_only_acme(engine, got)


def test_paging_never_crosses_tenants(acme, ask, engine):
    secret, mine, _theirs = acme
    records, pages = walk(ask, secret, "getDate", **WINDOW)
    assert pages > 3 and len(records) == len(mine) and keys(records) == mine
    assert_only_acme(engine, records)
    for user in ("101", "201"):
        for request_type, data in (("getUser", {}), ("getUserDate", WINDOW)):
            records, _ = walk(ask, secret, request_type, user=user, **data)
            assert keys(records) == {k for k in mine if k[1] == user}


def test_cursor_from_another_partner_reveals_nothing(acme, ask, add_partner):
    secret, mine, _theirs = acme
    globex = add_partner("globex-crm", accountcodes=("globex",))
    first = ask(globex, "getDate", limit=2, **WINDOW).json()
    stolen = ask(secret, "getDate", limit=100, cursor=first["nextCursor"], **WINDOW)
    if stolen.status_code == 200:
        assert keys(stolen.json()["data"]) <= mine
    else:
        assert stolen.json()["errorCode"] == "invalid_cursor"


def test_exports_never_cross_tenants(acme, ask):
    secret, mine, _theirs = acme
    as_csv = ask(secret, "getDate", format="csv", **WINDOW)
    rows = list(csv.DictReader(io.StringIO(as_csv.text, newline="")))
    assert {(r["callId"], r["user"]) for r in rows} == mine
    as_ndjson = ask(secret, "getDate", format="ndjson", **WINDOW)
    lines = [orjson.loads(line) for line in as_ndjson.content.splitlines() if line]
    assert keys(lines) == mine


def test_get_call_data_for_every_call(acme, ask, engine):
    secret, mine, theirs = acme
    for call_id in sorted({c for c, _ in mine}):
        got = ask(secret, "getCallData", callId=call_id).json()["data"]
        assert keys(got) <= mine and got
        assert_only_acme(engine, got)
    for call_id in sorted({c for c, _ in theirs}):
        refused = ask(secret, "getCallData", callId=call_id)
        assert refused.status_code == 404
        assert set(refused.json()) == {"respCode", "respMsg", "errorCode"}
        assert call_id not in refused.text


def test_stats_count_only_the_partners_tenant(acme, ask):
    secret, mine, _theirs = acme
    got = ask(secret, "getStats", **WINDOW).json()["data"]
    assert Counter({e["user"]: e["total"] for e in got}) == Counter(user for _, user in mine)


def test_recording_links_for_another_tenant_are_refused(acme, ask):
    secret, _mine, theirs = acme
    for request_type in ("recordingListen", "recordingDownload"):
        for call_id in sorted({c for c, _ in theirs})[:3]:
            refused = ask(secret, request_type, callId=call_id)
            assert refused.status_code in (403, 404)
            assert refused.json()["respCode"] == -1 and "data" not in refused.json()

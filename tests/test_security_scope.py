"""Tenant isolation on every request type, filter, paging and export path: with partner
A's secret no answer ever carries a record of tenant B (checked against the raw table)."""

from __future__ import annotations

import csv
import io
from collections import Counter

import orjson
import pytest
from sqlalchemy import select

from tests.conftest import API
from tests.test_scope import WINDOW, raw_rows, tenants  # noqa: F401 - tenants is a fixture
from voip24h.db.schema import call_records

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
def acme(tenants, add_partner, engine):  # noqa: F811
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

"""Partners see only their tenants and extensions, in every request type (checked on raw rows)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from tests.builders import cdr_row, chan
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

"""The endpoint end to end, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.builders import cdr_row, chan
from tests.conftest import API
from tests.seed import (
    SEED_FIELDS,
    SEED_GET_DATE,
    SEED_GET_USER,
    SEED_GET_USER_DATE,
    SEED_RECORDS,
    SEED_SECRET,
)


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
    )


@pytest.mark.parametrize(
    "body",
    [SEED_GET_USER, SEED_GET_DATE, SEED_GET_USER_DATE],
    ids=["getUser", "getDate", "getUserDate"],
)
def test_seed_samples_byte_for_byte(body, seed_calls, add_partner, client):
    add_partner("seed", secret=SEED_SECRET)
    response = client.post(API, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    assert response.json() == {"respCode": 0, "respMsg": "Success", "data": SEED_RECORDS}
    assert list(response.json()["data"][0]) == SEED_FIELDS


def test_records_are_newest_first_then_callid_descending(load, add_partner, post):
    same = datetime(2018, 7, 1, 9, 0, 0)
    load(
        cdr_row(uniqueid="1530410400.5", calldate=same),
        cdr_row(uniqueid="1530410400.7", calldate=same),
        cdr_row(uniqueid="1530500000.1", calldate=datetime(2018, 7, 2, 10, 0, 0)),
    )
    secret = add_partner()
    data = post("getUser", secret, {"user": "137"}).json()["data"]
    assert [r["callId"] for r in data] == ["1530500000.1", "1530410400.7", "1530410400.5"]


def test_user_may_be_a_json_number(seed_calls, add_partner, post):
    secret = add_partner()
    assert len(post("getUser", secret, {"user": 137}).json()["data"]) == 2


def test_date_window_is_whole_local_days_inclusive(load, add_partner, post):
    load(
        cdr_row(uniqueid="a.1", calldate=datetime(2018, 7, 1, 0, 0, 0)),
        cdr_row(uniqueid="a.2", calldate=datetime(2018, 7, 3, 23, 59, 59)),
        cdr_row(uniqueid="a.3", calldate=datetime(2018, 6, 30, 23, 59, 59)),
        cdr_row(uniqueid="a.4", calldate=datetime(2018, 7, 4, 0, 0, 0)),
    )
    secret = add_partner()
    for request_type, data in [("getDate", {}), ("getUserDate", {"user": "137"})]:
        data.update(fromDate="01/07/2018", toDate="03/07/2018")
        got = post(request_type, secret, data).json()["data"]
        assert sorted(r["callId"] for r in got) == ["a.1", "a.2"]


def test_window_selects_by_earliest_start_of_the_group(load, add_partner, post):
    # Two rows of one call for 137, either side of midnight: the call belongs to the first day.
    load(
        cdr_row(uniqueid="g.1", calldate=datetime(2018, 7, 1, 23, 59, 58), disposition="NO ANSWER"),
        cdr_row(uniqueid="g.1", calldate=datetime(2018, 7, 2, 0, 0, 5), disposition="ANSWERED"),
    )
    secret = add_partner()
    day1 = post("getDate", secret, {"fromDate": "01/07/2018", "toDate": "01/07/2018"}).json()
    day2 = post("getDate", secret, {"fromDate": "02/07/2018", "toDate": "02/07/2018"}).json()
    assert [(r["callStatus"], r["callDate"]) for r in day1["data"]] == [
        ("ANSWERED", "2018-07-01 23:59:58")
    ]
    assert day2["data"] == []


def test_internal_call_visible_to_both_users(load, add_partner, post):
    load(cdr_row(uniqueid="i.1", src="101", dst="102", channel=chan("101"), dstchannel=chan("102")))
    secret = add_partner()
    for me, other in [("101", "102"), ("102", "101")]:
        data = post("getUser", secret, {"user": me}).json()["data"]
        assert [(r["user"], r["phoneNumber"], r["callType"]) for r in data] == [
            (me, other, "INTERNAL")
        ]


def test_importing_the_same_rows_twice_changes_nothing(load, add_partner, post):
    rows = [cdr_row(uniqueid=f"d.{n}", sequence=n) for n in range(5)]
    first = load(*rows)
    second = load(*rows)
    assert (first.inserted, second.inserted, second.duplicates) == (5, 0, 5)
    secret = add_partner()
    assert len(post("getUser", secret, {"user": "137"}).json()["data"]) == 5


def test_result_over_the_maximum_is_refused_not_cut(load, add_partner, make_client):
    load(*[cdr_row(uniqueid=f"m.{n}") for n in range(4)])
    secret = add_partner()
    client = make_client(max_records=3)
    response = client.post(
        API, json={"requestType": "getUser", "partnerSecret": secret, "data": {"user": "137"}}
    )
    assert response.status_code == 400
    assert response.json()["errorCode"] == "result_too_large"


def _statements_executed(engine) -> int:
    with engine.connect() as conn:
        row = conn.exec_driver_sql("SHOW GLOBAL STATUS LIKE 'Com_stmt_execute'").fetchone()
    return int(row[1])


@pytest.mark.parametrize("backend", ["mysql"], indirect=True)
def test_mariadb_reads_run_as_prepared_statements(seed_calls, add_partner, client, engine):
    """The binary protocol: a request costs the server no SQL parsing, the client no escaping."""
    add_partner("seed", secret=SEED_SECRET)
    before = _statements_executed(engine)
    for body in (SEED_GET_USER, SEED_GET_DATE, SEED_GET_USER_DATE) * 3:
        answer = client.post(API, content=body, headers={"Content-Type": "application/json"})
        assert answer.json()["data"] == SEED_RECORDS
    assert _statements_executed(engine) - before >= 9

"""getStats on all three databases: counts by status and talk time, per user and day or hour."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from tests.builders import calls, cdr_row, chan
from tests.support import unlimited


@pytest.fixture
def client(make_client: Any, settings: Any) -> Any:
    """The app without per-partner rate limits: these tests send many requests quickly."""
    return make_client(**unlimited(settings))


def stats(post, secret, **data):
    response = post("getStats", secret, {"fromDate": "28/07/2018", "toDate": "29/07/2018", **data})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["respCode"], body["respMsg"]) == (0, "Success")
    return body["data"]


def test_stats_per_user_and_day(load, add_partner, post):
    load(*calls())
    got = stats(post, add_partner())
    by_key = {(e["user"], e["period"]): e for e in got}
    assert [(e["user"], e["period"]) for e in got] == sorted(by_key)
    assert by_key[("137", "2018-07-29")] == {
        "user": "137",
        "period": "2018-07-29",
        "total": 3,
        "byStatus": {"ANSWERED": 2, "NO ANSWER": 1},
        "answered": 2,
        "talkTime": 60,
        "avgTalkTime": 30.0,
        "maxTalkTime": 30,
    }
    assert by_key[("101", "2018-07-28")]["byStatus"] == {"ANSWERED": 1, "BUSY": 1}
    assert by_key[("101", "2018-07-28")]["talkTime"] == 60
    assert by_key[("201", "2018-07-29")]["maxTalkTime"] == 95


def test_talk_time_counts_answered_calls_only(load, add_partner, post):
    day = datetime(2018, 7, 28, 10, 0, 0)
    load(
        cdr_row(uniqueid="t.1", calldate=day, billsec=10),
        cdr_row(uniqueid="t.2", calldate=day, billsec=25),
        # billsec > 0 on a non-answered row does not make talk time (contract, section 3).
        cdr_row(uniqueid="t.3", calldate=day, billsec=99, disposition="FAILED"),
        cdr_row(uniqueid="t.4", calldate=day, billsec=0, disposition="NO ANSWER"),
    )
    (entry,) = stats(post, add_partner())
    assert (entry["total"], entry["answered"], entry["talkTime"]) == (4, 2, 35)
    assert (entry["avgTalkTime"], entry["maxTalkTime"]) == (17.5, 25)


def test_stats_per_hour_in_the_pbx_time_zone(load, add_partner, post):
    load(
        cdr_row(uniqueid="h.1", calldate=datetime(2018, 7, 28, 0, 5, 0)),
        cdr_row(uniqueid="h.2", calldate=datetime(2018, 7, 28, 0, 55, 0), disposition="BUSY"),
        cdr_row(uniqueid="h.3", calldate=datetime(2018, 7, 28, 23, 59, 59)),
    )
    got = stats(post, add_partner(), groupBy="hour")
    assert [(e["period"], e["total"]) for e in got] == [("2018-07-28 00", 2), ("2018-07-28 23", 1)]


def test_stats_with_no_answered_call_has_zero_averages(load, add_partner, post):
    load(cdr_row(uniqueid="n.1", calldate=datetime(2018, 7, 28, 9, 0), disposition="BUSY"))
    (entry,) = stats(post, add_partner())
    assert (entry["answered"], entry["talkTime"], entry["avgTalkTime"], entry["maxTalkTime"]) == (
        0,
        0,
        0.0,
        0,
    )


def test_stats_for_one_user_and_with_filters(load, add_partner, post):
    load(*calls())
    secret = add_partner()
    assert {e["user"] for e in stats(post, secret, user="101")} == {"101"}
    outbound = stats(post, secret, direction="OUTBOUND", callStatus=["ANSWERED"])
    assert [(e["user"], e["period"], e["total"]) for e in outbound] == [("137", "2018-07-29", 2)]
    prefixed = stats(post, secret, phoneNumber="+84*")
    assert [(e["user"], e["byStatus"]) for e in prefixed] == [("101", {"BUSY": 1})]


def test_stats_stay_in_scope(load, add_partner, post):
    load(*calls())
    globex = add_partner("globex", accountcodes=("globex",))
    got = stats(post, globex)
    assert [(e["user"], e["total"]) for e in got] == [("137", 1)]
    ext = add_partner("ext", extensions=("101",))
    assert {e["user"] for e in stats(post, ext)} == {"101"}
    refused = post(
        "getStats", ext, {"fromDate": "28/07/2018", "toDate": "29/07/2018", "user": "137"}
    )
    assert refused.status_code == 403
    assert refused.json()["errorCode"] == "user_not_permitted"


def test_stats_need_a_valid_window(load, add_partner, post):
    load(cdr_row(uniqueid="w.1", dstchannel=chan("trunk")))
    secret = add_partner()
    for data, code in [
        ({}, "missing_field"),
        ({"fromDate": "30/07/2018", "toDate": "01/07/2018"}, "date_range_reversed"),
        ({"fromDate": "01/01/2017", "toDate": "30/07/2018"}, "date_range_too_large"),
        ({"fromDate": "28/07/2018", "toDate": "29/07/2018", "groupBy": "week"}, "invalid_field"),
    ]:
        response = post("getStats", secret, data)
        assert response.status_code == 400, data
        assert response.json()["errorCode"] == code


def test_too_many_groups_is_refused_not_cut(load, add_partner, make_client):
    load(*[cdr_row(uniqueid=f"g.{n}", calldate=datetime(2018, 7, 28, n, 0)) for n in range(5)])
    client = make_client(max_records=3)
    body = {
        "requestType": "getStats",
        "partnerSecret": add_partner(),
        "data": {"fromDate": "28/07/2018", "toDate": "28/07/2018", "groupBy": "hour"},
    }
    response = client.post("/api/v1/partner/voip24h", json=body)
    assert response.status_code == 400
    assert response.json()["errorCode"] == "result_too_large"

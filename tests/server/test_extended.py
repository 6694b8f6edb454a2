"""The opt-in additions (getCallData, extended fields, filters) on all three databases,
and the promise behind them: a request shaped like the seed's gets the seed's bytes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import pytest

from tests.builders import REC, calls, cdr_row
from tests.conftest import API
from tests.seed import SEED_GET_DATE, SEED_GET_USER, SEED_GET_USER_DATE, SEED_RECORDS
from tests.support import unlimited

SEED = "rdn7mllWMqND7S5DnVz8"


@pytest.fixture
def client(make_client: Any, settings: Any) -> Any:
    """The app without per-partner rate limits: these tests send many requests quickly."""
    return make_client(**unlimited(settings))


@pytest.fixture
def pbx(load):
    load(*calls())


def ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["callId"] for r in response.json()["data"]]


# --- seed compatibility -------------------------------------------------------------


@pytest.mark.parametrize(
    "body", [SEED_GET_USER, SEED_GET_DATE, SEED_GET_USER_DATE], ids=["getUser", "getDate", "ud"]
)
def test_seed_samples_get_the_seed_bytes(body, load, add_partner, client):
    load(
        cdr_row(
            uniqueid="1532857052.131132", disposition="NO ANSWER", billsec=0, recordingfile=REC
        ),
        cdr_row(
            uniqueid="1532834934.130789",
            calldate=datetime(2018, 7, 29, 10, 28, 54),
            dst="0971828252",
            disposition="NO ANSWER",
            billsec=0,
            did="02873001234",
        ),
    )
    add_partner("seed", secret=SEED)
    response = client.post(API, content=body, headers={"Content-Type": "application/json"})
    expected = {"respCode": 0, "respMsg": "Success", "data": SEED_RECORDS}
    assert response.content == orjson.dumps(expected)
    assert response.headers["content-type"] == "application/json"


def test_no_opt_in_field_leaks_into_a_seed_answer(pbx, add_partner, post):
    secret = add_partner()
    for request_type, data in [
        ("getUser", {"user": "137"}),
        ("getDate", {"fromDate": "28/07/2018", "toDate": "29/07/2018"}),
        ("getUserDate", {"user": "101", "fromDate": "28/07/2018", "toDate": "29/07/2018"}),
    ]:
        body = post(request_type, secret, data).json()
        assert set(body) == {"respCode", "respMsg", "data"}
        assert body["data"]
        assert all(list(r) == list(SEED_RECORDS[0]) for r in body["data"])


def test_opt_in_fields_left_at_their_defaults_change_nothing(pbx, add_partner, post):
    secret = add_partner()
    seed = post("getUser", secret, {"user": "137"}).content
    for extra in [{"extended": False}, {"fields": []}, {"cursor": None, "limit": None}]:
        assert post("getUser", secret, {"user": "137", **extra}).content == seed


# --- getCallData -------------------------------------------------------------------


def test_get_call_data_returns_the_call_and_its_linked_legs(pbx, add_partner, post):
    secret = add_partner()
    got = post("getCallData", secret, {"callId": "1532840000.1"}).json()["data"]
    # One conversation (its linkedid), both agents rung on it.
    assert [(r["callId"], r["user"], r["callStatus"]) for r in got] == [
        ("1532840000.1", "201", "ANSWERED"),
        ("1532840000.1", "200", "NO ANSWER"),
    ]
    # Asking by the uniqueid of the second leg's row finds the same conversation.
    again = post("getCallData", secret, {"callId": "1532840001.2"}).json()["data"]
    assert again == got


def test_get_call_data_of_an_internal_call_has_both_users(pbx, add_partner, post):
    secret = add_partner()
    got = post("getCallData", secret, {"callId": "1532743200.5", "extended": True}).json()
    assert [(r["user"], r["phoneNumber"], r["direction"]) for r in got["data"]] == [
        ("102", "101", "INTERNAL"),
        ("101", "102", "INTERNAL"),
    ]
    queue = post("getCallData", secret, {"callId": "1532840001.2", "fields": ["linkedid"]})
    assert {(r["callId"], r["user"], r["linkedid"]) for r in queue.json()["data"]} == {
        ("1532840000.1", "200", "1532840000.1"),
        ("1532840000.1", "201", "1532840000.1"),
    }


def test_get_call_data_stays_in_scope(pbx, add_partner, post):
    acme_200 = add_partner("acme200", accountcodes=("acme",), extensions=("200",))
    got = post("getCallData", acme_200, {"callId": "1532840000.1"}).json()["data"]
    assert [(r["callId"], r["user"]) for r in got] == [("1532840000.1", "200")]
    # Asked by the uniqueid of 201's leg, the conversation still shows only 200's
    # record: 201's is not in scope.
    by_leg = post("getCallData", acme_200, {"callId": "1532840001.2"}).json()["data"]
    assert [(r["callId"], r["user"]) for r in by_leg] == [("1532840000.1", "200")]
    # Another tenant's call is indistinguishable from no call.
    other = post("getCallData", acme_200, {"callId": "1532850000.7"})
    missing = post("getCallData", acme_200, {"callId": "9999999999.1"})
    for response in (other, missing):
        assert response.status_code == 404
        assert response.json() == {
            "respCode": -1,
            "respMsg": "No call with this callId is visible to this partner.",
            "errorCode": "call_not_found",
        }


def test_get_call_data_requires_a_call_id(pbx, add_partner, post):
    secret = add_partner()
    response = post("getCallData", secret, {})
    assert response.status_code == 400
    assert response.json()["errorCode"] == "missing_field"
    assert "callId" in response.json()["respMsg"]


# --- extended fields ---------------------------------------------------------------


def test_extended_true_adds_every_field_in_documented_order(pbx, add_partner, post):
    secret = add_partner()
    got = post("getUser", secret, {"user": "137", "extended": True}).json()["data"]
    by_id = {r["callId"]: r for r in got}
    assert list(by_id["1532857052.131132"]) == [
        "callId",
        "user",
        "phoneNumber",
        "callType",
        "callStatus",
        "callDate",
        "duration",
        "billsec",
        "direction",
        "disposition",
        "accountcode",
        "did",
        "linkedid",
        "hasRecording",
    ]
    outbound = by_id["1532857052.131132"]
    assert (outbound["duration"], outbound["billsec"]) == (40, 30)
    assert outbound["direction"] == "OUTBOUND"
    assert (outbound["accountcode"], outbound["hasRecording"]) == ("acme", True)
    inbound = by_id["1532834934.130789"]
    assert (inbound["direction"], inbound["did"], inbound["hasRecording"]) == (
        "INBOUND",
        "02873001234",
        False,
    )
    assert (inbound["disposition"], inbound["billsec"]) == ("NO ANSWER", 0)


def test_fields_picks_some_extended_fields(pbx, add_partner, post):
    secret = add_partner()
    data = {"user": "137", "fromDate": "29/07/2018", "toDate": "29/07/2018"}
    data["fields"] = ["hasRecording", "billsec"]
    got = post("getUserDate", secret, data).json()["data"]
    assert [list(r)[6:] for r in got] == [["billsec", "hasRecording"]] * 3


def test_unknown_extended_field_is_refused(pbx, add_partner, post):
    secret = add_partner()
    response = post("getUser", secret, {"user": "137", "fields": ["secretNotes"]})
    assert response.status_code == 400
    assert response.json()["errorCode"] == "invalid_field"
    assert "data.fields[0]" in response.json()["respMsg"]


def test_extended_and_fields_together_are_refused(pbx, add_partner, post):
    secret = add_partner()
    response = post("getUser", secret, {"user": "137", "extended": True, "fields": ["did"]})
    assert response.status_code == 400
    assert response.json()["errorCode"] == "invalid_field"


# --- filters -----------------------------------------------------------------------


def test_call_status_filter_takes_a_list(pbx, add_partner, post):
    secret = add_partner()
    data = {"fromDate": "28/07/2018", "toDate": "29/07/2018", "callStatus": ["BUSY", "NO ANSWER"]}
    got = post("getDate", secret, data).json()["data"]
    assert sorted((r["callId"], r["callStatus"]) for r in got) == [
        ("1532754000.9", "BUSY"),
        ("1532834934.130789", "NO ANSWER"),
        ("1532840000.1", "NO ANSWER"),
    ]


def test_call_type_and_direction_filters(pbx, add_partner, post):
    secret = add_partner()
    window = {"fromDate": "28/07/2018", "toDate": "29/07/2018"}
    internal = post("getDate", secret, {**window, "callType": "INTERNAL"})
    assert sorted(r["user"] for r in internal.json()["data"]) == ["101", "102"]
    inbound = post("getDate", secret, {**window, "direction": "INBOUND"})
    assert sorted(ids(inbound)) == ["1532834934.130789", "1532840000.1", "1532840000.1"]
    outbound_137 = post("getUser", secret, {"user": "137", "direction": "OUTBOUND"})
    assert sorted(ids(outbound_137)) == ["1532850000.7", "1532857052.131132"]


def test_phone_number_exact_star_prefix_and_explicit_prefix(pbx, add_partner, post):
    secret = add_partner()
    window = {"fromDate": "28/07/2018", "toDate": "29/07/2018"}
    exact = post("getDate", secret, {**window, "phoneNumber": "0971828252"})
    assert ids(exact) == ["1532834934.130789"]
    assert post("getDate", secret, {**window, "phoneNumber": "097"}).json()["data"] == []
    star = post("getDate", secret, {**window, "phoneNumber": "098*"})
    assert sorted(ids(star)) == ["1532850000.7", "1532857052.131132"]
    explicit = post("getDate", secret, {**window, "phonePrefix": "+84"})
    assert ids(explicit) == ["1532754000.9"]


def test_prefix_wildcards_are_literal(load, add_partner, post):
    load(
        cdr_row(uniqueid="w.1", dst="09_1"),
        cdr_row(uniqueid="w.2", dst="0981"),
        cdr_row(uniqueid="w.3", dst="09%5"),
    )
    secret = add_partner()
    assert ids(post("getUser", secret, {"user": "137", "phonePrefix": "09_"})) == ["w.1"]
    assert ids(post("getUser", secret, {"user": "137", "phoneNumber": "09%*"})) == ["w.3"]


def test_filters_combine_with_each_other_and_with_get_call_data(pbx, add_partner, post):
    secret = add_partner()
    data = {"user": "137", "callStatus": ["ANSWERED"], "direction": "OUTBOUND"}
    data["phoneNumber"] = "098*"
    assert sorted(ids(post("getUser", secret, data))) == ["1532850000.7", "1532857052.131132"]
    narrowed = post("getCallData", secret, {"callId": "1532840000.1", "callStatus": ["ANSWERED"]})
    assert [(r["callId"], r["user"]) for r in narrowed.json()["data"]] == [("1532840000.1", "201")]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({"callType": "LOCAL"}, "invalid_field"),
        ({"direction": "inbound"}, "invalid_field"),
        ({"callStatus": []}, "invalid_field"),
        ({"callStatus": "ANSWERED"}, "invalid_field"),
        ({"phoneNumber": "*"}, "invalid_field"),
        ({"phoneNumber": "098", "phonePrefix": "098"}, "invalid_field"),
        ({"callstatus": ["ANSWERED"]}, "unknown_field"),
    ],
)
def test_bad_filters_are_refused_clearly(data, code, pbx, add_partner, post):
    secret = add_partner()
    response = post("getUser", secret, {"user": "137", **data})
    assert response.status_code == 400
    body = response.json()
    assert (body["respCode"], body["errorCode"]) == (-1, code)
    assert body["respMsg"].startswith("data.") or "Send data." in body["respMsg"]


def test_filtered_result_over_the_maximum_is_refused(load, add_partner, make_client, settings):
    load(*[cdr_row(uniqueid=f"m.{n}") for n in range(4)])
    secret = add_partner()
    client = make_client(max_records=3, **unlimited(settings))
    body = {"requestType": "getUser", "partnerSecret": secret}
    response = client.post(API, json={**body, "data": {"user": "137", "extended": True}})
    assert response.status_code == 400
    assert response.json()["errorCode"] == "result_too_large"
    assert "limit" in response.json()["respMsg"]

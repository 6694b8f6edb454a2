"""Every bad input named in the contract: -1 envelope, stable errorCode, right status, no change."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import select

from tests.builders import cdr_row
from tests.conftest import API
from voip24h.db.schema import call_records, cdr, partner_secrets, partners

GOOD = {"user": "137", "fromDate": "01/07/2018", "toDate": "31/07/2018"}


def snapshot(engine) -> str:
    """A digest of every stored row: equal before and after means nothing changed."""
    digest = hashlib.sha256()
    with engine.connect() as conn:
        for table in (cdr, call_records, partners, partner_secrets):
            for row in conn.execute(select(table).order_by(*table.primary_key.columns)):
                digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()


@pytest.fixture
def world(load, add_partner, engine):
    load(cdr_row(), cdr_row(uniqueid="1532857000.1", accountcode="globex"))
    return {
        "secret": add_partner("all"),
        "scoped": add_partner("acme-crm", accountcodes=("acme",), extensions=("100-199",)),
        "before": snapshot(engine),
    }


def check(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"respCode", "respMsg", "errorCode"}
    assert body["respCode"] == -1 and body["errorCode"] == code
    assert isinstance(body["respMsg"], str) and body["respMsg"].endswith(".")
    assert "Traceback" not in body["respMsg"]


def raw(client, content: bytes, content_type: str = "application/json"):
    return client.post(API, content=content, headers={"Content-Type": content_type})


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b'{"requestType": "getUser", ', "invalid_json"),
        (b"", "invalid_json"),
        (b"\xff\xfe{}", "invalid_json"),
        (b'[{"requestType": "getUser"}]', "invalid_request"),
        (b'"getUser"', "invalid_request"),
        (b"42", "invalid_request"),
        (b"null", "invalid_request"),
        (b'{"partnerSecret": "x", "data": {}}', "missing_request_type"),
        (b'{"requestType": 5, "partnerSecret": "x"}', "invalid_request_type"),
        (b'{"requestType": ["getUser"], "partnerSecret": "x"}', "invalid_request_type"),
        (b'{"requestType": "getEverything", "partnerSecret": "x"}', "unknown_request_type"),
        (b'{"requestType": "getuser", "partnerSecret": "x"}', "unknown_request_type"),
    ],
)
def test_malformed_bodies(world, client, engine, content, code):
    check(raw(client, content), 400, code)
    assert snapshot(engine) == world["before"]


@pytest.mark.parametrize(
    ("secret", "code"),
    [
        (None, "missing_secret"),
        ("", "missing_secret"),
        ("wrong-secret-123456789", "invalid_secret"),
        (12345, "invalid_secret"),
        ("' OR '1'='1", "invalid_secret"),
    ],
)
def test_bad_secrets_are_401(world, post, secret, code):
    check(post("getUser", secret, {"user": "137"}), 401, code)


def test_revoked_and_rotated_out_secrets_are_401_like_wrong_ones(world, engine, post):
    from datetime import timedelta

    from voip24h.service import partner_admin

    old = world["secret"]
    new = partner_admin.rotate(engine, "all", timedelta(0)).secret
    wrong = post("getUser", "not-the-secret-at-all-xx", {"user": "137"})
    rotated = post("getUser", old, {"user": "137"})
    assert rotated.json() == wrong.json() and rotated.status_code == 401
    assert post("getUser", new, {"user": "137"}).status_code == 200
    partner_admin.revoke(engine, "all")
    revoked = post("getUser", new, {"user": "137"})
    assert revoked.json() == wrong.json() and revoked.status_code == 401


@pytest.mark.parametrize(
    ("request_type", "data", "code"),
    [
        ("getUser", None, "missing_data"),
        ("getUser", [], "invalid_data"),
        ("getUser", "137", "invalid_data"),
        ("getUser", {}, "missing_field"),
        ("getUserDate", {"fromDate": "01/07/2018", "toDate": "31/07/2018"}, "missing_field"),
        ("getDate", {"toDate": "31/07/2018"}, "missing_field"),
        ("getUser", {"user": ["137"]}, "invalid_field"),
        ("getUser", {"user": True}, "invalid_field"),
        ("getUser", {"user": 1.5}, "invalid_field"),
        ("getUser", {"user": None}, "invalid_field"),
        ("getUser", {"user": {"$ne": 1}}, "invalid_field"),
        ("getUser", {"user": "137", "extra": 1}, "unknown_field"),
        ("getUser", {"user": "137' OR '1'='1"}, "invalid_user"),
        ("getUser", {"user": "137; DROP TABLE cdr;--"}, "invalid_user"),
        ("getUser", {"user": "\uff11\uff13\uff17"}, "invalid_user"),
        ("getUser", {"user": ""}, "invalid_user"),
        ("getUser", {"user": -137}, "invalid_user"),
        ("getDate", {"fromDate": "2018-07-01", "toDate": "31/07/2018"}, "invalid_date"),
        ("getDate", {"fromDate": "07/01/2018 00:00", "toDate": "31/07/2018"}, "invalid_date"),
        ("getDate", {"fromDate": "01/07/2018", "toDate": 20180731}, "invalid_field"),
        ("getDate", {"fromDate": "31/02/2018", "toDate": "31/07/2018"}, "invalid_date"),
        ("getDate", {"fromDate": "01/13/2018", "toDate": "31/07/2018"}, "invalid_date"),
        ("getDate", {"fromDate": "\uff10\uff11/07/2018", "toDate": "31/07/2018"}, "invalid_date"),
        ("getDate", {"fromDate": "01/07/2018'--", "toDate": "31/07/2018"}, "invalid_date"),
        ("getDate", {"fromDate": "31/07/2018", "toDate": "01/07/2018"}, "date_range_reversed"),
        ("getUserDate", {**GOOD, "fromDate": "01/01/2017"}, "date_range_too_large"),
    ],
)
def test_bad_data_is_400(world, post, engine, request_type, data, code):
    check(post(request_type, world["secret"], data), 400, code)
    assert snapshot(engine) == world["before"]


def test_a_calendar_year_fits_the_default_range(world, post):
    data = {"fromDate": "01/01/2020", "toDate": "31/12/2020"}  # 366 days, a leap year
    assert post("getDate", world["secret"], data).json()["respCode"] == 0


def test_unauthenticated_requests_learn_nothing_about_data_validation(world, post):
    check(post("getUser", "wrong-secret-123456789", {"user": ["x"]}), 401, "invalid_secret")


def test_user_outside_scope_is_403_without_data(world, post):
    for request_type, data in [
        ("getUser", {"user": "201"}),
        ("getUserDate", {**GOOD, "user": "201"}),
    ]:
        check(post(request_type, world["scoped"], data), 403, "user_not_permitted")


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_wrong_method_is_405(world, client, method):
    check(client.request(method, API), 405, "method_not_allowed")


@pytest.mark.parametrize("path", ["/", "/api/v1/partner", "/api/v1/partner/voip24h/x", "/admin"])
def test_wrong_path_is_404(world, client, path):
    check(client.post(path, json={}), 404, "not_found")


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""],
)
def test_non_json_content_type_is_415(world, client, content_type):
    body = b'{"requestType": "getUser", "partnerSecret": "x", "data": {"user": "137"}}'
    check(raw(client, body, content_type), 415, "unsupported_media_type")


def test_json_with_charset_is_accepted(world, client):
    body = b'{"requestType": "getUser", "partnerSecret": "%s", "data": {"user": "137"}}' % (
        world["secret"].encode()
    )
    assert raw(client, body, "application/json; charset=utf-8").json()["respCode"] == 0


def test_body_over_the_limit_is_413(world, client, engine):
    body = json.dumps(
        {
            "requestType": "getUser",
            "partnerSecret": world["secret"],
            "data": {"user": "137"},
            "pad": "x" * 70_000,
        }
    ).encode()
    check(raw(client, body), 413, "payload_too_large")
    assert snapshot(engine) == world["before"]


def test_chunked_body_over_the_limit_is_413(world, client):
    def chunks():
        for _ in range(100):
            yield b"x" * 1024

    response = client.post(API, content=chunks(), headers={"Content-Type": "application/json"})
    check(response, 413, "payload_too_large")


@pytest.mark.parametrize(
    "value",
    [
        "'; DROP TABLE cdr; --",
        '" OR 1=1 --',
        "%",
        "_",
        "\\",
        "\u0000",
        "tiếng Việt",
        "\U0001f4de",
        "\uff11\uff10\uff11",
    ],
)
def test_hostile_strings_in_every_field_never_500(world, client, engine, value):
    for body in [
        {"requestType": value, "partnerSecret": world["secret"], "data": {"user": "137"}},
        {"requestType": "getUser", "partnerSecret": value, "data": {"user": "137"}},
        {"requestType": "getUser", "partnerSecret": world["secret"], "data": {"user": value}},
        {
            "requestType": "getDate",
            "partnerSecret": world["secret"],
            "data": {"fromDate": value, "toDate": "31/07/2018"},
        },
        {
            "requestType": "getUserDate",
            "partnerSecret": world["secret"],
            "data": {**GOOD, "toDate": value},
        },
        {
            "requestType": "getDate",
            "partnerSecret": world["secret"],
            "data": {"fromDate": "01/07/2018", "toDate": "31/07/2018", "user": value},
        },
    ]:
        response = client.post(API, json=body)
        assert response.status_code < 500
        if response.status_code != 200:
            check(response, response.status_code, response.json()["errorCode"])
    assert snapshot(engine) == world["before"]

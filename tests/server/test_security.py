"""Brute-force resistance, Bearer secrets, request hygiene, and secrets kept out of
logs, error messages and the audit trail."""

from __future__ import annotations

import logging
import statistics
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from starlette.testclient import TestClient

from tests.builders import cdr_row
from tests.conftest import API, access_lines
from voip24h.db.schema import audit_log, partner_secrets
from voip24h.server.app import create_app
from voip24h.server.audit import audit_engine
from voip24h.service import partner_admin
from voip24h.service.answers import utcnow


def body(secret, request_type="getUser", **data):
    return {"requestType": request_type, "partnerSecret": secret, "data": data or {"user": "137"}}


def peer_client(settings, peer: str, **overrides) -> TestClient:
    """A client whose TCP peer address is ``peer`` (e.g. a reverse proxy)."""
    client = TestClient(
        create_app(settings.replace(**overrides)),
        raise_server_exceptions=False,
        client=(peer, 40000),
    )
    client.__enter__()
    return client


def test_failed_secrets_are_throttled_per_client_address(add_partner, make_client):
    secret = add_partner()
    client = make_client(auth_failures_per_minute=3)
    codes = [client.post(API, json=body("wrong-secret-" + str(n))).status_code for n in range(3)]
    assert codes == [401, 401, 401]
    blocked = client.post(API, json=body(secret))  # even the right secret: no oracle
    assert blocked.status_code == 429
    assert blocked.json()["errorCode"] == "rate_limited"
    assert "failed secret checks" in blocked.json()["respMsg"]
    assert 1 <= int(blocked.headers["Retry-After"]) <= 60


def test_x_forwarded_for_only_from_trusted_proxies(add_partner, settings):
    secret = add_partner()
    proxy = peer_client(
        settings, "10.0.0.5", auth_failures_per_minute=2, trusted_proxies="10.0.0.0/24"
    )
    direct = peer_client(settings, "198.51.100.9", auth_failures_per_minute=2)
    try:
        attacker = {"X-Forwarded-For": "203.0.113.66"}
        for _ in range(2):
            assert proxy.post(API, json=body("bad-guess"), headers=attacker).status_code == 401
        assert proxy.post(API, json=body(secret), headers=attacker).status_code == 429
        # Another client behind the same proxy is not affected.
        other = {"X-Forwarded-For": "203.0.113.7"}
        assert proxy.post(API, json=body(secret), headers=other).status_code == 200
        # A client-written entry left of the proxy-appended one is not believed.
        spoof = {"X-Forwarded-For": "203.0.113.7, 203.0.113.66"}
        assert proxy.post(API, json=body(secret), headers=spoof).status_code == 429
        # An untrusted peer's X-Forwarded-For is ignored: its own address is throttled.
        for n in range(2):
            fake = {"X-Forwarded-For": f"192.0.2.{n}"}
            assert direct.post(API, json=body("bad-guess"), headers=fake).status_code == 401
        fresh = {"X-Forwarded-For": "192.0.2.200"}
        assert direct.post(API, json=body(secret), headers=fresh).status_code == 429
    finally:
        proxy.__exit__(None, None, None)
        direct.__exit__(None, None, None)


def test_unknown_wrong_revoked_expired_look_the_same(engine, add_partner, make_client):
    add_partner("live", secret="live-secret-0123456789")
    revoked = add_partner("gone", secret="revoked-secret-0123456789")
    partner_admin.revoke(engine, "gone")
    expired = add_partner("old", secret="expired-secret-0123456789")
    with engine.begin() as conn:
        conn.execute(update(partner_secrets).values(expires_at=utcnow() - timedelta(seconds=1)))
    client = make_client(auth_failures_per_minute=0)
    cases = {
        "unknown": "unknown-secret-0123456789",
        "wrong": "live-secret-0123456780",
        "revoked": revoked,
        "expired": expired,
    }
    answers = {name: client.post(API, json=body(s)) for name, s in cases.items()}
    assert {(r.status_code, r.content) for r in answers.values()} == {
        (
            401,
            b'{"respCode":-1,"respMsg":"partnerSecret is not valid.","errorCode":"invalid_secret"}',
        )
    }
    timings: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(40):
        for name, secret in cases.items():
            started = time.perf_counter()
            client.post(API, json=body(secret))
            timings[name].append(time.perf_counter() - started)
    medians = {name: statistics.median(values) for name, values in timings.items()}
    spread = max(medians.values()) - min(medians.values())
    assert spread < max(0.003, 0.5 * min(medians.values())), medians


def test_secret_accepted_as_bearer_token(seed_rows, add_partner, client):
    secret = add_partner()
    request = {"requestType": "getUser", "data": {"user": "137"}}
    ok = client.post(API, json=request, headers={"Authorization": f"Bearer {secret}"})
    assert ok.status_code == 200 and len(ok.json()["data"]) == 1
    wrong = client.post(API, json=request, headers={"Authorization": "Bearer nope-nope-nope"})
    assert wrong.status_code == 401 and wrong.json()["errorCode"] == "invalid_secret"
    basic = client.post(API, json=request, headers={"Authorization": f"Basic {secret}"})
    assert basic.status_code == 401 and basic.json()["errorCode"] == "missing_secret"
    # The body field keeps working for seed clients.
    assert client.post(API, json=body(secret)).status_code == 200


@pytest.fixture
def seed_rows(load):
    load(cdr_row(uniqueid="1532857052.131132"))


def test_json_depth_and_string_length_are_bounded(add_partner, client):
    secret = add_partner()
    deep: object = "x"
    for _ in range(20):
        deep = [deep]
    too_deep = client.post(API, json=body(secret, user="137", extra=deep))
    assert too_deep.status_code == 400
    assert too_deep.json()["errorCode"] == "request_too_complex"
    too_long = client.post(API, json=body(secret, user="1" * 300))
    assert too_long.status_code == 400
    assert too_long.json()["errorCode"] == "value_too_long"
    long_key = client.post(API, json=body(secret, user="137", **{"k" * 300: 1}))
    assert long_key.json()["errorCode"] == "value_too_long"
    # Nesting beyond the JSON parser's own limit is plain invalid JSON, never a 500.
    bomb = b'{"requestType":"getUser","data":' + b"[" * 5000 + b"]" * 5000 + b"}"
    answer = client.post(API, content=bomb, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400 and answer.json()["respCode"] == -1


def test_unknown_fields_in_data_are_rejected_by_name(add_partner, client):
    secret = add_partner()
    for request_type, data in [
        ("getUser", {"user": "137", "userId": "137"}),
        ("getDate", {"fromDate": "01/07/2018", "toDate": "02/07/2018", "form": 1}),
        ("getUserDate", {"user": "137", "fromDate": "01/07/2018", "toDate": "02/07/2018", "x": 1}),
    ]:
        answer = client.post(
            API, json={"requestType": request_type, "partnerSecret": secret, "data": data}
        )
        assert answer.status_code == 400, request_type
        assert answer.json()["errorCode"] == "unknown_field"
        extra = (set(data) - {"user", "fromDate", "toDate"}).pop()
        assert extra in answer.json()["respMsg"]


def test_unknown_top_level_fields_are_rejected_by_name_like_data_fields(add_partner, client):
    secret = add_partner()
    for extra in ("partnerSecert", "user"):
        doc = {"requestType": "getUser", "partnerSecret": secret, "data": {"user": "137"}}
        answer = client.post(API, json={**doc, extra: "137"})
        assert answer.status_code == 400
        assert answer.json() == {
            "respCode": -1,
            "respMsg": f"'{extra}' is not a field of the request; "
            "expected only requestType, partnerSecret, data.",
            "errorCode": "unknown_field",
        }
    ok = client.post(
        API, json={"requestType": "getUser", "partnerSecret": secret, "data": {"user": "137"}}
    )
    assert ok.json()["respCode"] == 0


def test_date_range_and_row_count_are_bounded(load, add_partner, make_client):
    load(*[cdr_row(uniqueid=f"b.{n}") for n in range(3)])
    secret = add_partner()
    client = make_client(max_range_days=31, max_records=2)
    wide = client.post(
        API, json=body(secret, "getDate", fromDate="01/01/2018", toDate="01/03/2018")
    )
    assert wide.status_code == 400 and wide.json()["errorCode"] == "date_range_too_large"
    many = client.post(API, json=body(secret))
    assert many.status_code == 400 and many.json()["errorCode"] == "result_too_large"


def test_secrets_never_reach_logs_errors_or_audit(settings, load, add_partner, make_client, caplog):
    load(cdr_row(uniqueid="l.1"))
    secret = add_partner("acme-crm", secret="S3cr3t-Never-Logged-0123456789")
    wrong = "Wr0ng-Never-Logged-0123456789"
    client = make_client(auth_failures_per_minute=0)
    caplog.set_level(logging.DEBUG)
    responses = [
        client.post(API, json=body(secret)),
        client.post(API, json=body(wrong)),
        client.post(
            API,
            json={"requestType": "getUser", "data": {"user": "137"}},
            headers={"Authorization": f"Bearer {secret}"},
        ),
        client.post(API, json={"requestType": "getUser", "partnerSecret": secret, "data": "x"}),
        client.post(API, json={"requestType": "nope", "partnerSecret": secret}),
        client.post(API, json=body(secret, user="137", partnerSecret=secret)),
        client.post(API, json={"requestType": "getUser", "partnerSecret": [secret]}),
    ]
    app_state = client.app.state.voip24h
    client.portal.call(app_state.audit.flush)
    trail = audit_engine(settings)  # for SQLite a file beside the database
    with trail.connect() as conn:
        audit_rows = [dict(r) for r in conn.execute(select(audit_log)).mappings()]
    trail.dispose()
    assert len(audit_rows) == len(responses)
    assert {r["partner"] for r in audit_rows} >= {"acme-crm"}
    for secret_text in (secret, wrong):
        assert secret_text not in caplog.text
        assert all(secret_text not in r.text for r in responses)
        assert all(secret_text not in str(row) for row in audit_rows)
    client.portal.call(client.app.state.voip24h.access.flush)
    assert len(access_lines(caplog.records)) == len(responses)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"trusted_proxies": "10.0.0.0/8, proxy.example"}, "trusted_proxies: 'proxy.example'"),
        ({"ops_port": 9024, "workers": 2}, "ops_port: needs workers=1"),
        ({"redis_url": "http://127.0.0.1:6379"}, "redis_url: must start with redis://"),
        ({"max_json_depth": 0}, "max_json_depth: must be at least 1"),
        ({"rate_limit_per_second": -1}, "rate_limit_per_second: must not be negative"),
    ],
)
def test_security_settings_are_validated(overrides, message):
    from voip24h.config import SettingsError, load_settings

    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        load_settings(overrides, environ={})

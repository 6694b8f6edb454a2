"""Request ids, JSON access logs, /healthz, /readyz, /metrics, and how ops endpoints
are protected or moved to their own listener."""

from __future__ import annotations

import logging
import socket
import time

import httpx
import pytest
from starlette.testclient import TestClient

from tests.builders import cdr_row
from tests.conftest import API, access_lines
from voip24h.server.app import create_app
from voip24h.server.observability import AccessLog, Metrics, RequestInfo


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_user(secret: str) -> dict:
    return {"requestType": "getUser", "partnerSecret": secret, "data": {"user": "137"}}


def test_request_id_is_returned_and_logged_as_json(load, add_partner, client, caplog):
    load(cdr_row(uniqueid="o.1"))
    secret = add_partner("crm")
    caplog.set_level(logging.INFO, logger="voip24h.access")
    given = client.post(API, json=get_user(secret), headers={"X-Request-ID": "abc-123"})
    fresh = client.post(API, json=get_user(secret))
    hostile = client.post(API, json=get_user(secret), headers={"X-Request-ID": 'a b;<>"' * 20})
    missing = client.get("/nowhere")
    assert given.headers["X-Request-ID"] == "abc-123"
    assert len(fresh.headers["X-Request-ID"]) == 32
    assert len(hostile.headers["X-Request-ID"]) == 32  # replaced, not echoed
    assert len(missing.headers["X-Request-ID"]) == 32
    client.portal.call(client.app.state.voip24h.access.flush)
    lines = access_lines(caplog.records)
    assert [line["request_id"] for line in lines] == [
        "abc-123",
        fresh.headers["X-Request-ID"],
        hostile.headers["X-Request-ID"],
        missing.headers["X-Request-ID"],
    ]
    first = lines[0]
    assert first["status"] == 200 and first["partner"] == "crm" and first["rows"] == 1
    assert first["request_type"] == "getUser" and first["path"] == API
    assert first["latency_ms"] > 0 and first["error_code"] is None
    assert lines[-1]["status"] == 404 and lines[-1]["error_code"] == "not_found"


def test_healthz_readyz_and_metrics(load, add_partner, client):
    load(cdr_row(uniqueid="o.2"))
    secret = add_partner()
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    client.post(API, json=get_user(secret))
    client.post(API, json=get_user("not-a-secret-at-all"))
    client.post(API, json={"requestType": "<script>", "partnerSecret": secret})
    text = client.get("/metrics").text
    assert 'voip24h_requests_total{request_type="getUser",status="200"} 1.0' in text
    assert 'voip24h_requests_total{request_type="getUser",status="401"} 1.0' in text
    # Attacker-chosen request types never become label values.
    assert 'voip24h_requests_total{request_type="none",status="400"} 1.0' in text
    assert "<script>" not in text
    assert 'voip24h_rows_returned_total{request_type="getUser"} 1.0' in text
    assert 'voip24h_request_duration_seconds_count{request_type="getUser"} 2.0' in text
    assert "voip24h_auth_failures_total 1.0" in text
    assert "voip24h_db_errors_total" in text and "voip24h_rate_limited_total" in text
    assert "voip24h_in_flight_requests 1.0" in text  # the /metrics request itself


def test_ops_token_protects_metrics_and_readyz(make_client):
    client = make_client(ops_token="ops-token-0123456789")
    assert client.get("/healthz").status_code == 200
    for path in ("/metrics", "/readyz"):
        refused = client.get(path)
        assert refused.status_code == 401
        assert refused.json()["errorCode"] == "ops_unauthorized"
        assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
        allowed = client.get(path, headers={"Authorization": "Bearer ops-token-0123456789"})
        assert allowed.status_code == 200


def test_ops_endpoints_on_their_own_listener(settings):
    port = free_port()
    app = create_app(settings.replace(ops_port=port))
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/metrics").status_code == 404  # not on the partner port
        assert client.get("/healthz").status_code == 404
        ops = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert ops.status_code == 200 and "voip24h_requests_total" in ops.text
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)


def test_readyz_reports_an_unreachable_database(settings):
    down = settings.replace(
        database_url=f"postgresql://nobody@127.0.0.1:{free_port()}/none", db_timeout_seconds=1.0
    )
    with TestClient(create_app(down), raise_server_exceptions=False) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json() == {"status": "unavailable", "errorCode": "database_unavailable"}
        assert ready.headers["retry-after"] == "2"
        api = client.post(API, json=get_user("whatever-secret-123"))
        assert api.status_code == 503 and api.json()["respCode"] == -1
        assert api.headers["retry-after"] == "2"  # a client knows when to come back
        assert (
            'voip24h_db_errors_total{error_code="database_unavailable"} 1.0'
            in client.get("/metrics").text
        )


def test_access_lines_go_out_in_whole_line_records_small_enough_for_one_pipe_write(caplog):
    """Workers share stderr (a pipe under systemd or docker): a write of up to 4096
    bytes is never interleaved with another's, so each record stays under that."""
    caplog.set_level(logging.INFO, logger="voip24h.access")
    access = AccessLog()
    for n in range(300):
        access.add(RequestInfo(f"req-{n}", "192.0.2.7", "POST", API + "x" * n, 0.0, status=200))
    assert caplog.records == []  # queued, not yet written
    access.flush()
    assert len(caplog.records) > 10
    assert all(len(r.getMessage().encode()) + 1 <= 4096 for r in caplog.records)
    lines = access_lines(caplog.records)
    assert [line["request_id"] for line in lines] == [f"req-{n}" for n in range(300)]
    assert max(len(line["path"]) for line in lines) == 256  # a hostile path is cut short


def test_access_lines_appear_without_waiting_for_more_traffic(load, add_partner, client, caplog):
    load(cdr_row(uniqueid="o.9"))
    secret = add_partner("crm")
    caplog.set_level(logging.INFO, logger="voip24h.access")
    client.post(API, json=get_user(secret), headers={"X-Request-ID": "lone-request"})
    deadline = time.monotonic() + 3
    while not access_lines(caplog.records) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [line["request_id"] for line in access_lines(caplog.records)] == ["lone-request"]


def test_request_metrics_count_each_latency_in_its_cumulative_bucket():
    from prometheus_client import generate_latest

    metrics = Metrics(("getUser",))
    for seconds, status, rows in ((0.001, 200, 3), (0.003, 200, 0), (30.0, 503, 0)):
        info = RequestInfo("r", "192.0.2.1", "POST", API, 0.0, request_type="getUser")
        info.status, info.latency_ms, info.rows = status, seconds * 1000, rows
        metrics.observe(info)
    text = generate_latest(metrics.registry).decode()
    bucket = 'voip24h_request_duration_seconds_bucket{le="%s",request_type="getUser"} %s'
    assert bucket % ("0.001", "1.0") in text  # "le": a latency equal to a bound counts
    assert bucket % ("0.0025", "1.0") in text
    assert bucket % ("0.005", "2.0") in text
    assert bucket % ("10.0", "2.0") in text
    assert bucket % ("+Inf", "3.0") in text
    assert 'voip24h_request_duration_seconds_count{request_type="getUser"} 3.0' in text
    assert 'voip24h_request_duration_seconds_sum{request_type="getUser"} 30.004' in text
    assert 'voip24h_requests_total{request_type="getUser",status="503"} 1.0' in text
    assert 'voip24h_rows_returned_total{request_type="getUser"} 3.0' in text

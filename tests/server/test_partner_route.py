"""The partner endpoint served ahead of Starlette's stack: same answers, same ops facts."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.builders import cdr_row
from tests.conftest import API
from tests.support import audit_rows, flush
from voip24h.server.app import create_app, route_path
from voip24h.server.audit import audit_engine


@pytest.fixture
def audit_db(settings):
    engine = audit_engine(settings)
    yield engine
    engine.dispose()


def test_a_client_gone_before_its_body_ends_is_audited_499_and_logs_no_error(
    audit_db, add_partner, client, caplog
):
    """The body never completes (the client hung up): nothing is answered, no error is
    logged, and the audit trail says what happened."""
    add_partner("acme-crm")
    sent: list[dict[str, Any]] = []
    messages = iter(
        [
            {"type": "http.request", "body": b'{"requestType": "get', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": API, "raw_path": API.encode(), "root_path": "",
        "query_string": b"", "client": ("203.0.113.9", 5555), "server": ("testserver", 80),
        "headers": [(b"content-type", b"application/json"), (b"host", b"testserver")],
    }  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="voip24h"):
        client.portal.call(client.app, scope, receive, send)
    assert sent == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    flush(client)
    (row,) = audit_rows(audit_db)
    assert (row["status"], row["error_code"], row["client"]) == (
        499,
        "client_disconnected",
        "203.0.113.9",
    )


def test_the_partner_api_answers_under_a_root_path(settings, load, add_partner):
    """Behind a proxy that mounts the server under /pbx, the endpoint is /pbx/api/...;
    a path that only starts with the same letters is not it."""
    load(cdr_row(uniqueid="r.1"))
    secret = add_partner("acme-crm")
    body = {"requestType": "getUser", "partnerSecret": secret, "data": {"user": "137"}}
    with TestClient(create_app(settings), root_path="/pbx") as client:
        answer = client.post("/pbx" + API, json=body)
        assert answer.status_code == 200
        assert answer.headers["x-request-id"]
        assert [r["callId"] for r in answer.json()["data"]] == ["r.1"]
        assert client.post("/pbxx" + API, json=body).status_code == 404


@pytest.mark.parametrize(
    ("path", "root", "routed"),
    [
        (API, "", API),
        ("/pbx" + API, "/pbx", API),
        ("/pbxx" + API, "/pbx", "/pbxx" + API),
        ("/pbx", "/pbx", ""),
        (API, "/elsewhere", API),
    ],
)
def test_route_path_strips_the_root_path_as_starlettes_router_does(path, root, routed):
    from starlette._utils import get_route_path

    scope = {"path": path, "root_path": root}
    assert route_path(scope) == routed
    assert route_path(scope) == get_route_path(scope)

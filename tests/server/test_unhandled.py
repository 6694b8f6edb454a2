"""An unexpected exception is answered with the internal_error envelope (nothing of
the exception in it) and logged as one JSON line with the traceback in a field."""

from __future__ import annotations

import logging

import orjson

from tests.conftest import API
from voip24h.server.observability import JsonLogFormatter


def test_a_crash_is_one_json_line_with_its_traceback_and_nothing_for_the_client(
    make_client, add_partner, caplog
):
    secret = add_partner("crm")
    client = make_client()

    async def crash(*_args: object) -> None:
        raise RuntimeError("secret detail: /etc/voip24h/voip24h.toml")

    client.app.state.voip24h.answers.answer = crash
    caplog.set_level(logging.INFO, logger="voip24h")
    body = {"requestType": "getUser", "partnerSecret": secret, "data": {"user": "137"}}
    response = client.post(API, json=body)
    assert response.status_code == 500
    assert response.json() == {
        "respCode": -1,
        "respMsg": "Internal error; it has been logged.",
        "errorCode": "internal_error",
    }
    assert "secret detail" not in response.text and "Traceback" not in response.text
    crashes = [r for r in caplog.records if r.exc_info]
    assert len(crashes) == 1
    line = JsonLogFormatter().format(crashes[0])
    assert "\n" not in line  # one line, whatever the traceback's length
    logged = orjson.loads(line)
    assert logged["level"] == "error" and logged["message"] == "unexpected error"
    assert logged["exception"].startswith("Traceback (most recent call last):")
    assert logged["exception"].endswith("RuntimeError: secret detail: /etc/voip24h/voip24h.toml")
    assert "in crash" in logged["exception"]

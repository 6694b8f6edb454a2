"""Large seed answers are read in chunks and spooled, with the same bytes and limits."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.builders import cdr_row
from tests.conftest import API
from voip24h.wire import spool

CALLS = 23


@pytest.fixture
def many_calls(load: Callable[..., Any]) -> None:
    """23 calls of extension 137 on 29/07/2018, one a minute, with awkward text."""
    start = datetime(2018, 7, 29, 9, 0, 0)
    load(
        *(
            cdr_row(
                calldate=start + timedelta(minutes=n),
                uniqueid=f"1532829600.{n}",
                linkedid=f"1532829600.{n}",
                dst=f'09{n:08d}"\\é',
                disposition="ANSWERED" if n % 3 else "NO ANSWER",
            )
            for n in range(CALLS)
        )
    )


def _body(client: Any, secret: str, data: dict[str, Any]) -> Any:
    return client.post(API, json={"requestType": "getDate", "partnerSecret": secret, "data": data})


WINDOW = {"fromDate": "29/07/2018", "toDate": "29/07/2018"}


def test_spooled_answer_has_the_same_bytes(
    many_calls: None,
    add_partner: Callable[..., str],
    make_client: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = add_partner()
    whole = _body(make_client(), secret, WINDOW)
    assert whole.status_code == 200 and len(whole.json()["data"]) == CALLS
    monkeypatch.setattr(spool, "SPOOL_AFTER", 5)
    monkeypatch.setattr(spool, "CHUNK_ROWS", 4)
    monkeypatch.setattr(spool, "SEND_BYTES", 100)
    spooled = _body(make_client(), secret, WINDOW)
    assert spooled.status_code == 200
    assert spooled.headers["content-type"] == "application/json"
    assert spooled.content == whole.content


def test_spooled_answer_over_the_maximum_is_refused(
    many_calls: None,
    add_partner: Callable[..., str],
    make_client: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(spool, "SPOOL_AFTER", 5)
    monkeypatch.setattr(spool, "CHUNK_ROWS", 4)
    secret = add_partner()
    refused = _body(make_client(max_records=20), secret, WINDOW)
    assert refused.json()["errorCode"] == "result_too_large"
    assert refused.json()["respCode"] == -1
    fits = _body(make_client(max_records=CALLS), secret, WINDOW)
    assert fits.status_code == 200 and len(fits.json()["data"]) == CALLS


def test_answer_at_the_spool_threshold_is_not_spooled(
    many_calls: None,
    add_partner: Callable[..., str],
    make_client: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(spool, "SPOOL_AFTER", CALLS)
    secret = add_partner()
    answer = _body(make_client(), secret, WINDOW)
    assert "content-length" in answer.headers  # built in memory, not streamed
    assert len(answer.json()["data"]) == CALLS

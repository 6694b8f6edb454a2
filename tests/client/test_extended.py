"""voip24h.client on the extended API: call data, fields, filters, stats, recordings,
export streams and Bearer secrets, against the real server in-process."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import datetime

import httpx
import pytest

from tests.builders import cdr_row, chan
from voip24h.client import AsyncClient, CallRecord, Client, StatsEntry
from voip24h.server.app import create_app

RECORDING = "out-137-0982056720-20180729-163732-1532857052.131132.wav"


class Recorder(httpx.BaseTransport):
    """Wraps a transport and keeps the requests sent through it."""

    def __init__(self, inner: httpx.BaseTransport):
        self.inner = inner
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.inner.handle_request(request)


@pytest.fixture
def calls(load):
    load(
        cdr_row(
            uniqueid="1532857052.131132",
            disposition="NO ANSWER",
            billsec=0,
            duration=30,
            recordingfile=RECORDING,
        ),
        cdr_row(
            uniqueid="1532834934.130789",
            linkedid="1532834934.130789",
            calldate=datetime(2018, 7, 29, 10, 28, 54),
            dst="0971828252",
            billsec=65,
            duration=80,
        ),
        cdr_row(
            uniqueid="1532665800.127004",
            linkedid="1532665800.127004",
            calldate=datetime(2018, 7, 27, 11, 30, 0),
            src="101",
            dst="137",
            channel=chan("101"),
            dstchannel=chan("137"),
            billsec=45,
        ),
    )


@pytest.fixture
def api(calls, add_partner, make_client, tmp_path):
    recordings = tmp_path / "monitor"
    (recordings / "2018" / "07" / "29").mkdir(parents=True)
    (recordings / "2018" / "07" / "29" / RECORDING).write_bytes(b"RIFF-fake-wave")
    test_client = make_client(recordings_dir=str(recordings))
    transport = Recorder(test_client._transport)
    with Client("http://testserver", add_partner(), transport=transport) as client:
        client.transport = transport  # type: ignore[attr-defined]
        client.test_client = test_client  # type: ignore[attr-defined]
        yield client


def test_get_call_data(api):
    records = api.get_call_data("1532665800.127004")
    assert sorted((r.user, r.phone_number, r.call_type) for r in records) == [
        ("101", "137", "INTERNAL"),
        ("137", "101", "INTERNAL"),
    ]


def test_extended_fields_are_typed(api):
    record = api.get_user("137", fields=["duration", "billsec", "direction", "hasRecording"])[0]
    assert (record.call_id, record.duration, record.billsec) == ("1532857052.131132", 30, 0)
    assert (record.direction, record.has_recording) == ("OUTBOUND", True)
    assert record.to_wire()["duration"] == 30
    plain = api.get_user("137")[0]
    assert plain.duration is None and set(plain.to_wire()) == {
        "callId",
        "user",
        "phoneNumber",
        "callType",
        "callStatus",
        "callDate",
    }


def test_filters_pass_through(api):
    answered = api.get_user_date("137", "01/07/2018", "30/07/2018", callStatus=["ANSWERED"])
    assert {r.call_status for r in answered} == {"ANSWERED"}
    assert len(answered) == 2


def test_stats(api):
    stats = api.get_stats("27/07/2018", "29/07/2018", user="137")
    assert all(isinstance(entry, StatsEntry) for entry in stats)
    by_day = {entry.period: entry for entry in stats}
    assert by_day["2018-07-29"].total == 2 and by_day["2018-07-29"].answered == 1
    assert by_day["2018-07-29"].talk_time == 65
    assert by_day["2018-07-27"].by_status == {"ANSWERED": 1}


def test_recording_links_play_the_file(api):
    link = api.recording_listen("1532857052.131132")
    download = api.recording_download("1532857052.131132")
    assert link != download
    path = httpx.URL(link).path if link.startswith("http") else link
    assert api.test_client.get(path).content == b"RIFF-fake-wave"


def test_export_records_streams_what_get_user_returns(api):
    exported = list(api.export_records("getUser", {"user": "137"}))
    assert exported == api.get_user("137")
    assert all(isinstance(r, CallRecord) for r in exported)


def test_export_to_writes_csv(api):
    target = io.BytesIO()
    written = api.export_to(target, "getUser", {"user": "137"}, format="csv")
    lines = target.getvalue().decode().splitlines()
    assert written == len(target.getvalue())
    assert lines[0] == "callId,user,phoneNumber,callType,callStatus,callDate"
    assert lines[1] == "1532857052.131132,137,0982056720,EXTERNAL,NO ANSWER,2018-07-29 16:37:32"
    assert len(lines) == 4


def test_bearer_keeps_the_secret_out_of_the_body(api, add_partner):
    secret = add_partner("bearer-partner")
    with Client("http://testserver", secret, auth="bearer", transport=api.transport) as bearer:
        assert len(bearer.get_user("137")) == 3
    sent = api.transport.requests[-1]
    assert "partnerSecret" not in json.loads(sent.content)
    assert sent.headers["authorization"] == f"Bearer {secret}"


def test_async_extended(calls, add_partner, settings):
    secret = add_partner()
    app = create_app(settings)

    async def run():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with AsyncClient("http://testserver", secret, transport=transport) as api:
                exported = [r async for r in api.export_records("getUser", {"user": "137"})]
                return (
                    exported,
                    await api.get_user("137"),
                    await api.get_call_data("1532665800.127004"),
                    await api.get_stats("29/07/2018", "29/07/2018"),
                )

    exported, listed, call, stats = asyncio.run(run())
    assert exported == listed and len(call) == 2
    assert sum(entry.total for entry in stats) == 2

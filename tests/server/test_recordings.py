"""recordingListen / recordingDownload: signed, expiring links served from the recordings
directory, on all three databases."""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.builders import cdr_row
from tests.conftest import API
from tests.support import AUDIO, KEY, NAME, unlimited
from voip24h.service.recordings import LinkSigner


@pytest.fixture
def client(make_client: Any, settings: Any) -> Any:
    """The app without per-partner rate limits: these tests send many requests quickly."""
    return make_client(**unlimited(settings))


@pytest.fixture
def monitor(tmp_path: Path) -> Path:
    """A FreePBX monitor directory with one recording in its YYYY/MM/DD folder."""
    root = tmp_path / "monitor"
    day = root / "2018" / "07" / "29"
    day.mkdir(parents=True)
    (day / NAME).write_bytes(AUDIO)
    return root


@pytest.fixture
def rec_client(make_client: Any, monitor: Path, settings: Any) -> Any:
    return make_client(recordings_dir=str(monitor), recording_link_key=KEY, **unlimited(settings))


def ask(client: Any, secret: str, request_type: str, call_id: str, **data: Any) -> Any:
    body = {
        "requestType": request_type,
        "partnerSecret": secret,
        "data": {"callId": call_id, **data},
    }
    return client.post(API, json=body)


def link_of(response: Any) -> str:
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ["respCode", "respMsg", "data"] and list(body["data"]) == ["link"]
    return str(body["data"]["link"])


def path_of(link: str) -> str:
    return urlsplit(link).path


@pytest.fixture
def recorded(load: Any) -> None:
    load(
        cdr_row(uniqueid="1532857052.131132", recordingfile=NAME),
        cdr_row(uniqueid="1532857100.2", calldate=datetime(2018, 7, 29, 16, 38, 20)),
        cdr_row(uniqueid="1532857200.3", recordingfile="gone.wav"),
        cdr_row(uniqueid="1532857300.4", recordingfile="../../../etc/passwd"),
        cdr_row(uniqueid="1532857400.5", recordingfile="/etc/passwd"),
        cdr_row(uniqueid="1532857500.6", recordingfile="escape.wav"),
        cdr_row(uniqueid="1532857600.7", recordingfile=NAME, accountcode="globex"),
    )


def test_listen_link_streams_inline_with_range_support(recorded, add_partner, rec_client):
    secret = add_partner()
    link = link_of(ask(rec_client, secret, "recordingListen", "1532857052.131132"))
    assert link.startswith("http://testserver/api/v1/partner/voip24h/recordings/")
    whole = rec_client.get(path_of(link))
    assert whole.status_code == 200
    assert whole.content == AUDIO
    assert whole.headers["content-type"] == "audio/wav"
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["content-disposition"].startswith("inline;")
    part = rec_client.get(path_of(link), headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == AUDIO[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(AUDIO)}"
    tail = rec_client.get(path_of(link), headers={"Range": "bytes=-10"})
    assert (tail.status_code, tail.content) == (206, AUDIO[-10:])


def test_download_link_is_an_attachment(recorded, add_partner, rec_client):
    secret = add_partner()
    link = link_of(ask(rec_client, secret, "recordingDownload", "1532857052.131132"))
    response = rec_client.get(path_of(link))
    assert response.status_code == 200 and response.content == AUDIO
    assert response.headers["content-disposition"] == f'attachment; filename="{NAME}"'


def test_links_use_the_public_url_when_set(recorded, add_partner, make_client, monitor, settings):
    client = make_client(
        recordings_dir=str(monitor),
        recording_link_key=KEY,
        public_url="https://pbx.example.com/",
        **unlimited(settings),
    )
    link = link_of(ask(client, add_partner(), "recordingListen", "1532857052.131132"))
    assert link.startswith("https://pbx.example.com/api/v1/partner/voip24h/recordings/")


def test_expired_link_is_refused(recorded, add_partner, rec_client, monitor):
    signer = LinkSigner(KEY.encode())
    token = signer.sign(f"2018/07/29/{NAME}", False, expires=1_000_000_000)
    response = rec_client.get(f"{API}/recordings/{token}")
    assert response.status_code == 410
    assert response.json() == {
        "respCode": -1,
        "respMsg": "This recording link has expired; ask for a new one.",
        "errorCode": "link_expired",
    }


def test_link_ttl_is_the_setting(recorded, add_partner, make_client, monitor, settings):
    client = make_client(
        recordings_dir=str(monitor),
        recording_link_key=KEY,
        recording_link_ttl_seconds=1,
        **unlimited(settings),
    )
    secret = add_partner()
    asked = time.time()  # the link is checked against the clock it was made by, not a race
    link = link_of(ask(client, secret, "recordingListen", "1532857052.131132"))
    token = path_of(link).rsplit("/", 1)[1]

    path, download = LinkSigner(KEY.encode()).verify(token, asked)
    assert (path, download) == (f"2018/07/29/{NAME}", False)
    with pytest.raises(Exception, match="expired"):
        LinkSigner(KEY.encode()).verify(token, time.time() + 2)


def test_tampered_or_foreign_links_are_refused(recorded, add_partner, rec_client):
    secret = add_partner()
    link = link_of(ask(rec_client, secret, "recordingDownload", "1532857052.131132"))
    token = path_of(link).rsplit("/", 1)[1]
    payload, mac = token.split(".")
    forged = LinkSigner(b"another key of enough length.....").sign(
        "2018/07/29/" + NAME, True, expires=4_000_000_000
    )
    flipped = payload[:-1] + ("A" if payload[-1] != "A" else "B")
    for bad in [f"{flipped}.{mac}", f"{payload}.{mac[:-2]}", forged, "garbage", f"{payload}."]:
        response = rec_client.get(f"{API}/recordings/{bad}")
        assert response.status_code == 403, bad
        assert response.json()["errorCode"] == "link_invalid"


def test_signed_path_outside_the_directory_is_refused(recorded, rec_client):
    signer = LinkSigner(KEY.encode())
    for path in ["../secret.wav", "/etc/passwd", "2018/../../x.wav"]:
        token = signer.sign(path, False, expires=4_000_000_000)
        response = rec_client.get(f"{API}/recordings/{token}")
        assert response.status_code == 403
        assert response.json()["errorCode"] == "recording_path_refused"


def test_traversal_and_absolute_recordingfile_are_refused(recorded, add_partner, rec_client):
    secret = add_partner()
    for call_id in ["1532857300.4", "1532857400.5"]:
        response = ask(rec_client, secret, "recordingListen", call_id)
        assert response.status_code == 403
        assert response.json()["errorCode"] == "recording_path_refused"


def test_symlink_out_of_the_directory_is_refused(
    recorded, add_partner, rec_client, monitor, tmp_path
):
    outside = tmp_path / "private.wav"
    outside.write_bytes(b"not yours")
    os.symlink(outside, monitor / "2018" / "07" / "29" / "escape.wav")
    response = ask(rec_client, add_partner(), "recordingListen", "1532857500.6")
    assert response.status_code == 403
    assert response.json()["errorCode"] == "recording_path_refused"


def test_absolute_path_inside_the_directory_is_served(load, add_partner, rec_client, monitor):
    load(cdr_row(uniqueid="1532857052.9", recordingfile=str(monitor / "2018/07/29" / NAME)))
    link = link_of(ask(rec_client, add_partner(), "recordingListen", "1532857052.9"))
    assert rec_client.get(path_of(link)).content == AUDIO


def test_missing_file_and_call_without_recording(recorded, add_partner, rec_client, monitor):
    secret = add_partner()
    no_recording = ask(rec_client, secret, "recordingListen", "1532857100.2")
    assert no_recording.status_code == 404
    assert no_recording.json()["errorCode"] == "recording_not_found"
    missing = ask(rec_client, secret, "recordingListen", "1532857200.3")
    assert missing.status_code == 404
    assert missing.json()["errorCode"] == "recording_not_found"
    # A file deleted after the link was issued.
    link = link_of(ask(rec_client, secret, "recordingListen", "1532857052.131132"))
    (monitor / "2018" / "07" / "29" / NAME).unlink()
    gone = rec_client.get(path_of(link))
    assert gone.status_code == 404
    assert gone.json()["errorCode"] == "recording_not_found"


def test_recordings_respect_scope_and_filters(recorded, add_partner, rec_client):
    globex = add_partner("globex", accountcodes=("globex",))
    response = ask(rec_client, globex, "recordingListen", "1532857052.131132")
    assert response.status_code == 404
    assert response.json()["errorCode"] == "call_not_found"
    assert link_of(ask(rec_client, globex, "recordingListen", "1532857600.7"))
    acme = add_partner("acme", accountcodes=("acme",))
    filtered = ask(rec_client, acme, "recordingListen", "1532857052.131132", callStatus=["BUSY"])
    assert filtered.json()["errorCode"] == "call_not_found"


def test_generated_key_is_kept_in_the_database_and_shared(
    recorded, add_partner, make_client, monitor, settings
):
    first = make_client(recordings_dir=str(monitor), **unlimited(settings))
    second = make_client(recordings_dir=str(monitor), **unlimited(settings))
    secret = add_partner()
    link = link_of(ask(first, secret, "recordingDownload", "1532857052.131132"))
    # Another worker (another app on the same database) accepts the link.
    assert second.get(path_of(link)).content == AUDIO
    again = link_of(ask(second, secret, "recordingDownload", "1532857052.131132"))
    assert first.get(path_of(again)).status_code == 200


def test_missing_call_id_is_refused(recorded, add_partner, rec_client):
    body = {"requestType": "recordingListen", "partnerSecret": add_partner(), "data": {}}
    response = rec_client.post(API, json=body)
    assert response.status_code == 400
    assert response.json()["errorCode"] == "missing_field"


# --- Range edge cases and HEAD (Starlette's FileResponse, verified) ---


def _link(rec_client, add_partner):
    return path_of(link_of(ask(rec_client, add_partner(), "recordingListen", "1532857052.131132")))


def test_range_beyond_the_end_is_416(recorded, add_partner, rec_client):
    link = _link(rec_client, add_partner)
    beyond = rec_client.get(link, headers={"Range": f"bytes={len(AUDIO) + 10}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(AUDIO)}"


def test_head_tells_size_and_type_without_a_body(recorded, add_partner, rec_client):
    head = rec_client.head(_link(rec_client, add_partner))
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(AUDIO))
    assert head.headers["content-type"] == "audio/wav"
    assert head.headers["accept-ranges"] == "bytes"


def test_several_ranges_come_as_multipart(recorded, add_partner, rec_client):
    multi = rec_client.get(_link(rec_client, add_partner), headers={"Range": "bytes=0-1,5-6"})
    assert multi.status_code == 206
    assert multi.headers["content-type"].startswith("multipart/byteranges; boundary=")
    assert AUDIO[0:2] in multi.content and AUDIO[5:7] in multi.content

"""Recording links: signed, expiring URLs to files of the PBX recordings directory.

A link is ``/api/v1/partner/voip24h/recordings/<token>``; the token is
``base64url([1, mode, expires, path]) "." base64url(HMAC-SHA256(key, payload))``,
where ``path`` is the file relative to ``recordings_dir`` found when the link was
issued (FreePBX writes ``recordingfile`` as a bare name kept in
``monitor/YYYY/MM/DD/``; older setups store a full path). The partner's scope is
checked when the link is issued; serving it needs no secret, only a valid,
unexpired signature, and every served path is checked again to be a regular file
inside the directory (symlinks resolved).

The key is the ``recording_link_key`` setting, or else a random key generated on
first use and stored in ``voip24h_meta`` so that every worker and restart share it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import time
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

import orjson
from sqlalchemy.exc import IntegrityError
from starlette.responses import FileResponse

from voip24h import errors
from voip24h.config import Settings
from voip24h.db.drivers import Reader
from voip24h.db.engine import make_engine
from voip24h.db.queries import call_records as record_queries
from voip24h.db.queries import meta as meta_queries
from voip24h.service.results import Link
from voip24h.service.shapes import shape_of
from voip24h.wire.protocol import RECORDINGS_PREFIX

KEY_NAME = "recording_link_key"
_VERSION = 1
_DAY_IN_NAME = re.compile(r"(?:^|[-_])(20[0-9]{2})([01][0-9])([0-3][0-9])[-_]")
MEDIA_TYPES = {
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
    ".gsm": "audio/x-gsm",
    ".wav49": "audio/wav",
}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class LinkSigner:
    """Signs and checks link tokens with one key."""

    def __init__(self, key: bytes):
        self._key = key

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest())

    def sign(self, path: str, download: bool, expires: int) -> str:
        payload = _b64(orjson.dumps([_VERSION, "d" if download else "l", expires, path]))
        return f"{payload}.{self._mac(payload)}"

    def verify(self, token: str, now: float) -> tuple[str, bool]:
        """(path, download) of a valid token; LinkInvalid or LinkExpired otherwise."""
        payload, _, mac = token.partition(".")
        if not payload or not mac or not hmac.compare_digest(self._mac(payload), mac):
            raise errors.LinkInvalid()
        try:
            version, mode, expires, path = orjson.loads(_unb64(payload))
        except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError):
            raise errors.LinkInvalid() from None
        if version != _VERSION or mode not in ("l", "d") or not isinstance(path, str):
            raise errors.LinkInvalid()
        if not isinstance(expires, int) or expires <= now:
            raise errors.LinkExpired()
        return path, mode == "d"


def inside(root: str, candidate: str) -> str:
    """The real path of ``candidate`` if it lies inside ``root``; RecordingPathRefused if not."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(candidate)
    if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
        raise errors.RecordingPathRefused()
    return real


def locate(root: str, recordingfile: str, call_ts: int, callid: str, zone: Any) -> str:
    """The file of ``recordingfile`` relative to ``root``.

    Bare names are looked for in the monitor layout ``YYYY/MM/DD/`` (the day of the
    call, of the date in the file name, and of the uniqueid's epoch), then in the
    root itself. Names with ``..`` parts, NUL bytes, or resolving outside the root
    (absolute paths, symlinks) are refused; a name that is nowhere is not found.
    """
    name = recordingfile.strip()
    if "\x00" in name or ".." in PurePosixPath(name).parts or ".." in name.split("\\"):
        raise errors.RecordingPathRefused()
    if os.path.isabs(name):
        candidates = [name]
    else:
        days = [datetime.fromtimestamp(call_ts, zone).strftime("%Y/%m/%d")]
        if match := _DAY_IN_NAME.search(os.path.basename(name)):
            days.append("/".join(match.groups()))
        epoch = callid.split(".", 1)[0]
        if epoch.isdigit() and len(epoch) <= 11:
            days.append(datetime.fromtimestamp(int(epoch), zone).strftime("%Y/%m/%d"))
        candidates = [os.path.join(root, day, name) for day in dict.fromkeys(days)]
        candidates.append(os.path.join(root, name))
    for candidate in candidates:
        real = inside(root, candidate)
        if os.path.isfile(real):
            return os.path.relpath(real, os.path.realpath(root))
    raise errors.RecordingNotFound(
        "The recording file of this call is not in the recordings directory."
    )


class RecordingService:
    """Issues links for a partner's calls and opens the files they point to."""

    def __init__(self, reader: Reader, settings: Settings):
        self._reader = reader
        self._settings = settings
        self._signer: LinkSigner | None = None
        if settings.recording_link_key:
            self._signer = LinkSigner(settings.recording_link_key.encode("utf-8"))

    async def signer(self) -> LinkSigner:
        """The signer, reading (or creating once) the stored key when no key is set."""
        if self._signer is None:
            statement = self._reader.prepare(
                ("meta", KEY_NAME), lambda: meta_queries.select_value(KEY_NAME)
            )
            rows = await self._reader.fetch(statement, {})
            if rows:
                value = str(rows[0][0])
            else:
                value = await asyncio.to_thread(_create_key, self._settings.database_url)
            self._signer = LinkSigner(value.encode("ascii"))
        return self._signer

    async def link(self, partner: Any, query: Any) -> Link:
        """A link to the recording of ``query.call`` among the partner's records."""
        shape, params = shape_of(query)
        statement = self._reader.prepare(
            ("recording", partner.scope, shape),
            lambda: record_queries.select_recordings(partner.scope, shape),
        )
        rows = await self._reader.fetch(statement, {**params, "call": query.call, "limit": 50})
        if not rows:
            raise errors.CallNotFound()
        with_file = [row for row in rows if row[2]]
        if not with_file:
            raise errors.RecordingNotFound()
        callid, _user, recordingfile, call_ts = with_file[0]
        path = locate(
            self._settings.recordings_dir,
            str(recordingfile),
            int(call_ts),
            str(callid),
            self._settings.zone,
        )
        expires = int(time.time()) + self._settings.recording_link_ttl_seconds
        token = (await self.signer()).sign(path, query.download, expires)
        return Link(RECORDINGS_PREFIX + token, expires)

    async def open(self, token: str) -> FileResponse:
        """The file a link points to: inline for listen, attachment for download."""
        if len(token) > 2048:
            raise errors.LinkInvalid()
        path, download = (await self.signer()).verify(token, time.time())
        root = self._settings.recordings_dir
        if os.path.isabs(path) or ".." in PurePosixPath(path).parts:
            raise errors.RecordingPathRefused()
        real = inside(root, os.path.join(root, path))
        if not os.path.isfile(real):
            raise errors.RecordingNotFound("The recording file is no longer on the server.")
        name = os.path.basename(real)
        media = MEDIA_TYPES.get(os.path.splitext(name)[1].lower(), "application/octet-stream")
        return FileResponse(
            real,
            media_type=media,
            filename=name,
            content_disposition_type="attachment" if download else "inline",
            headers={"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"},
        )


def _create_key(database_url: str) -> str:
    """Store a new random key unless another process stored one first; return the key."""
    engine = make_engine(database_url)
    try:
        try:
            with engine.begin() as conn:
                if meta_queries.get(conn, KEY_NAME) is None:
                    meta_queries.add(conn, KEY_NAME, secrets.token_urlsafe(32))
        except IntegrityError:
            pass
        with engine.connect() as conn:
            value = meta_queries.get(conn, KEY_NAME)
        assert value is not None
        return value
    finally:
        engine.dispose()

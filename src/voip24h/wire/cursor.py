"""Keyset cursors: the position after the last record of a page, as an opaque string.

A cursor is base64url of ``[1, call_ts, callId, user]`` (the sort key of the last
row sent). It carries no scope and grants nothing: the next page is read with the
partner's own scope, so an altered cursor can only move within what the partner
may see anyway; a malformed one is refused with ``invalid_cursor``.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import orjson

from voip24h.errors import InvalidCursor

VERSION = 1


@dataclass(frozen=True)
class Cursor:
    """Sort key of the last record a page carried: (call_ts, callId, user), newest first."""

    call_ts: int
    callid: str
    user: str

    def encode(self) -> str:
        raw = orjson.dumps([VERSION, self.call_ts, self.callid, self.user])
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode(text: str) -> Cursor:
    """The Cursor in ``text``; InvalidCursor for anything this server did not produce."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        version, call_ts, callid, user = orjson.loads(raw)
    except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError):
        raise InvalidCursor() from None
    if (
        version != VERSION
        or type(call_ts) is not int
        or not isinstance(callid, str)
        or not isinstance(user, str)
        or not 0 <= call_ts < 2**62
    ):
        raise InvalidCursor()
    return Cursor(call_ts, callid, user)

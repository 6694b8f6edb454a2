"""The wire protocol: request shapes, their validation, and record rendering.

The msgspec structs below are both the validators and the source of the
OpenAPI document (openapi.py), so the two cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson

from voip24h import errors
from voip24h.config import Settings
from voip24h.dates import Window, day_window
from voip24h.records import ExtensionMatcher

PATH = "/api/v1/partner/voip24h"
RECORD_FIELDS = ("callId", "user", "phoneNumber", "callType", "callStatus", "callDate")


class Record(msgspec.Struct):
    """A call record as partners receive it: six strings, nothing more by default."""

    callId: str
    user: str
    phoneNumber: str
    callType: str
    callStatus: str
    callDate: str


class _Data(msgspec.Struct, forbid_unknown_fields=True):
    pass


class GetUserData(_Data):
    """``getUser``: every call of one extension."""

    user: str | int


class GetDateData(_Data):
    """``getDate``: every call in a window of whole local days (user accepted, ignored)."""

    fromDate: str
    toDate: str
    user: str | int | None = None


class GetUserDateData(_Data):
    """``getUserDate``: one extension's calls in a window of whole local days."""

    user: str | int
    fromDate: str
    toDate: str


DATA_TYPES: dict[str, type[_Data]] = {
    "getUser": GetUserData,
    "getDate": GetDateData,
    "getUserDate": GetUserDateData,
}


@dataclass(frozen=True)
class Envelope:
    """The outer request: which request type, the secret, and the raw data object."""

    request_type: str
    secret: str | None
    data: Any


@dataclass(frozen=True)
class RecordQuery:
    """What to read: one user or all (within scope), over all time or a window."""

    user: str | None
    window: Window | None


def parse_envelope(body: bytes) -> Envelope:
    """Parse the JSON body and its outer fields; raise the matching ApiError."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise errors.InvalidJson() from None
    if not isinstance(doc, dict):
        raise errors.InvalidRequest(
            f"The request body must be a JSON object, not {_json_kind(doc)}."
        )
    if "requestType" not in doc or doc["requestType"] in (None, ""):
        raise errors.MissingRequestType()
    request_type = doc["requestType"]
    if not isinstance(request_type, str):
        raise errors.InvalidRequestType()
    if request_type not in DATA_TYPES:
        known = ", ".join(DATA_TYPES)
        raise errors.UnknownRequestType(
            f"Unknown requestType {_short(request_type)}; expected one of: {known}."
        )
    secret = doc.get("partnerSecret")
    if secret is not None and not isinstance(secret, str):
        raise errors.InvalidSecret()
    return Envelope(request_type, secret or None, doc.get("data"))


def parse_data(envelope: Envelope) -> _Data:
    """Validate ``data`` against the request type's struct."""
    data = envelope.data
    if data is None:
        raise errors.MissingData()
    if not isinstance(data, dict):
        raise errors.InvalidData(f"data must be a JSON object, not {_json_kind(data)}.")
    try:
        return msgspec.convert(data, DATA_TYPES[envelope.request_type], strict=True)
    except msgspec.ValidationError as exc:
        raise _validation_error(str(exc)) from None


_MISSING = re.compile(r"Object missing required field `([^`]+)`")
_UNKNOWN = re.compile(r"Object contains unknown field `([^`]+)`")
_AT = re.compile(r"Expected `([^`]+)`, got `([^`]+)` - at `\$\.([^`\[]+)")


def _validation_error(message: str) -> errors.ApiError:
    if match := _MISSING.match(message):
        return errors.MissingField(f"data.{match.group(1)} is required.")
    if match := _UNKNOWN.match(message):
        return errors.UnknownField(
            f"data.{_short(match.group(1))} is not a field of this request type."
        )
    if match := _AT.match(message):
        expected, got, field = match.groups()
        wanted = {
            "str | int": "a string or a number",
            "str": "a string",
            "int | str": "a string or a number",
            "str | int | null": "a string or a number",
        }
        return errors.InvalidField(
            f"data.{field} must be {wanted.get(expected, expected)}, not {got}."
        )
    return errors.InvalidField(f"data is not valid: {message}.")


def to_query(data: _Data, settings: Settings, matcher: ExtensionMatcher) -> RecordQuery:
    """The RecordQuery a validated request asks for (getDate ignores its user field)."""
    user = None
    if isinstance(data, GetUserData | GetUserDateData):
        user = _user(data.user, matcher)
    window = None
    if isinstance(data, GetDateData | GetUserDateData):
        window = day_window(
            data.fromDate,
            data.toDate,
            settings.zone,
            settings.max_range_days,
        )
    return RecordQuery(user, window)


def _user(value: str | int, matcher: ExtensionMatcher) -> str:
    user = str(value)
    if not matcher.is_extension(user):
        raise errors.InvalidUser(f"user {_short(user)} is not an extension number of this PBX.")
    return user


_RESPONSE_HEAD = b'{"respCode":0,"respMsg":"Success","data":'


def render_records(rows: Iterable[Sequence[Any]]) -> bytes:
    """The success envelope for rows of the six seed fields, in wire order."""
    keys = RECORD_FIELDS
    records = [dict(zip(keys, row, strict=True)) for row in rows]
    return _RESPONSE_HEAD + orjson.dumps(records) + b"}"


def _json_kind(value: Any) -> str:
    return {
        list: "an array",
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "a boolean",
        type(None): "null",
    }.get(type(value), "a value")


def _short(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "…")

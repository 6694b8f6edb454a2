"""The wire protocol: request shapes, their validation, and record rendering.

The msgspec structs below are both the validators and the source of the
OpenAPI document (openapi.py), so the two cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

import msgspec
import orjson

from voip24h import errors
from voip24h.wire.push import PUSH_DATA_TYPES, PushData

PATH = "/api/v1/partner/voip24h"
RECORDINGS_PREFIX = PATH + "/recordings/"  # signed recording links live under the endpoint
RECORD_FIELDS = ("callId", "user", "phoneNumber", "callType", "callStatus", "callDate")


class Record(msgspec.Struct):
    """A call record as partners receive it: six strings, nothing more by default."""

    callId: str
    user: str
    phoneNumber: str
    callType: str
    callStatus: str
    callDate: str


class RequestData(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The data of any request type; a field it does not declare is refused."""


# --- Opt-in parts, shared by the request types (absent: the seed's behaviour) ---
ExtendedField = Literal[
    "duration",
    "billsec",
    "direction",
    "disposition",
    "accountcode",
    "did",
    "linkedid",
    "hasRecording",
]
EXTENDED_FIELDS: tuple[str, ...] = get_args(ExtendedField)
CallType = Literal["INTERNAL", "EXTERNAL"]
Direction = Literal["INBOUND", "OUTBOUND", "INTERNAL"]
Format = Literal["json", "csv", "ndjson"]
Short = Annotated[str, msgspec.Meta(min_length=1, max_length=80)]


def _doc(text: str) -> msgspec.Meta:
    return msgspec.Meta(description=text)


class FilteredData(RequestData, kw_only=True):
    """Filters, combinable with every request type that reads records."""

    callStatus: Annotated[
        Annotated[list[Short], msgspec.Meta(min_length=1, max_length=10)] | None,
        _doc('Only records with one of these callStatus values, e.g. ["ANSWERED", "BUSY"].'),
    ] = None
    callType: Annotated[CallType | None, _doc("Only INTERNAL or only EXTERNAL calls.")] = None
    direction: Annotated[
        Direction | None,
        _doc("INBOUND (outside to extension), OUTBOUND (extension to outside) or INTERNAL."),
    ] = None
    phoneNumber: Annotated[
        Short | None,
        _doc(
            "The other party's number, exactly as stored; a trailing * makes it a prefix "
            "(098* = numbers starting with 098). No other wildcard: % and _ match themselves."
        ),
    ] = None
    phonePrefix: Annotated[
        Short | None, _doc("Numbers starting with this text (like phoneNumber ending in *).")
    ] = None


class RecordsData(FilteredData, kw_only=True):
    """Filters plus the opt-in extended fields and streamed export formats."""

    fields: Annotated[
        Annotated[list[ExtendedField], msgspec.Meta(max_length=8)] | None,
        _doc("Extended fields to add to each record; they come in the documented order."),
    ] = None
    extended: Annotated[bool | None, _doc("true adds every extended field.")] = None
    format: Annotated[
        Format | None,
        _doc(
            "json (default): the envelope. csv or ndjson: every matching record streamed as a "
            "file, never result_too_large, without limit/cursor. CSV has a header row and "
            "RFC 4180 quoting; text starting with = + - @ tab or CR gets a leading apostrophe."
        ),
    ] = None


class ListingData(RecordsData, kw_only=True):
    """Records plus keyset paging."""

    limit: Annotated[
        Annotated[int, msgspec.Meta(ge=1)] | None,
        _doc("Page size (at most the server's max_page_size, 1000 by default); adds nextCursor."),
    ] = None
    cursor: Annotated[
        Annotated[str, msgspec.Meta(min_length=1, max_length=256)] | None,
        _doc(
            "nextCursor of the previous page, with the same request otherwise. Pages never "
            "skip or repeat a record, even while new calls arrive."
        ),
    ] = None


class GetUserData(ListingData, kw_only=True):
    """``getUser``: every call of one extension."""

    user: str | int


class GetDateData(ListingData, kw_only=True):
    """``getDate``: every call in a window of whole local days (user accepted, ignored)."""

    fromDate: str
    toDate: str
    user: str | int | None = None


class GetUserDateData(ListingData, kw_only=True):
    """``getUserDate``: one extension's calls in a window of whole local days."""

    user: str | int
    fromDate: str
    toDate: str


class GetCallDataData(RecordsData, kw_only=True):
    """``getCallData``: the records of one call (its uniqueid, and legs sharing its linkedid)."""

    callId: Short


class RecordingData(FilteredData, kw_only=True):
    """A signed, expiring link to a call's recording."""

    callId: Short


class RecordingListenData(RecordingData, kw_only=True):
    """``recordingListen``: a link that plays the recording in the browser (Range supported)."""


class RecordingDownloadData(RecordingData, kw_only=True):
    """``recordingDownload``: a link that downloads the recording as a file."""


class GetStatsData(FilteredData, kw_only=True):
    """``getStats``: per user and per day (or hour) counts by status and talk time."""

    fromDate: str
    toDate: str
    user: Annotated[str | int | None, _doc("One extension only (else every user).")] = None
    groupBy: Annotated[
        Literal["day", "hour"], _doc("Periods of local days (YYYY-MM-DD) or hours (YYYY-MM-DD HH).")
    ] = "day"


class MakeDialData(RequestData, kw_only=True):
    """``makeDial``: ring the user's own phone, then dial phoneNumber (click-to-call)."""

    user: Annotated[str | int, _doc("The extension whose phone rings first.")]
    phoneNumber: Annotated[
        str,
        _doc(
            "The number to dial once the user answers: 1 to 20 characters, digits and a "
            "leading + only (anything else is refused with invalid_phone_number)."
        ),
    ]
    idempotencyKey: Annotated[
        Annotated[str, msgspec.Meta(min_length=1, max_length=128)] | None,
        _doc("The same key within 60 s gets the first answer, without a second call."),
    ] = None


DATA_TYPES: dict[str, type[RequestData] | type[PushData]] = {
    "getUser": GetUserData,
    "getDate": GetDateData,
    "getUserDate": GetUserDateData,
    "getCallData": GetCallDataData,
    "recordingListen": RecordingListenData,
    "recordingDownload": RecordingDownloadData,
    "getStats": GetStatsData,
    **PUSH_DATA_TYPES,  # webhooks and the event feed (wire/push.py)
    "makeDial": MakeDialData,
}


# One rule at both levels: a field the protocol does not define is refused by name
# (400 unknown_field), so a misspelt "partnerSecert" or "formDate" never passes silently.
ENVELOPE_FIELDS = ("requestType", "partnerSecret", "data")


@dataclass(frozen=True)
class Envelope:
    """The outer request: which request type, the secret, and the raw data object."""

    request_type: str
    secret: str | None
    data: Any


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
    unknown = [key for key in doc if key not in ENVELOPE_FIELDS]
    if unknown:
        raise errors.UnknownField(
            f"{_short(unknown[0])} is not a field of the request; "
            f"expected only {', '.join(ENVELOPE_FIELDS)}."
        )
    secret = doc.get("partnerSecret")
    if secret is not None and not isinstance(secret, str):
        raise errors.InvalidSecret()
    return Envelope(request_type, secret or None, doc.get("data"))


def parse_data(envelope: Envelope) -> RequestData | PushData:
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
_ENUM = re.compile(r"Invalid enum value (.+) - at `\$\.([^`]+)`")
_CONSTRAINT = re.compile(r"(Expected .+) - at `\$\.([^`]+)`")
_AT = re.compile(r"Expected `([^`]+)`, got `([^`]+)` - at `\$\.([^`\[]+)")


def _validation_error(message: str) -> errors.ApiError:
    if match := _MISSING.match(message):
        return errors.MissingField(f"data.{match.group(1)} is required.")
    if match := _UNKNOWN.match(message):
        return errors.UnknownField(
            f"data.{match.group(1)[:40]} is not a field of this request type."
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
    if match := _ENUM.match(message):
        value, field = match.groups()
        return errors.InvalidField(
            f"data.{field}: {value[:40]} is not one of the allowed values (see /openapi.json)."
        )
    if match := _CONSTRAINT.match(message):
        rule, field = match.groups()
        return errors.InvalidField(f"data.{field}: {rule.replace('`', '')}.")
    return errors.InvalidField(f"data is not valid: {message}.")


_RESPONSE_HEAD = b'{"respCode":0,"respMsg":"Success","data":'


_ENCODER = msgspec.json.Encoder()


def render_records(rows: Iterable[Sequence[Any]]) -> bytes:
    """The success envelope for rows of the six seed fields, in wire order.

    Each row becomes a ``Record`` struct (positional: no per-row dict), which msgspec
    encodes to exactly the bytes orjson gives for the same dicts, ~3x faster.
    """
    return render_array(_ENCODER.encode([Record(*row) for row in rows]))


RESPONSE_HEAD = _RESPONSE_HEAD


def render_array(records_json: bytes) -> bytes:
    """The success envelope around records already rendered as a JSON array."""
    return _RESPONSE_HEAD + records_json + b"}"


def render_record_items(rows: Iterable[Sequence[Any]]) -> bytes:
    """The records of ``rows`` as comma-separated JSON objects, without the brackets:
    chunks of a large answer joined with b"," give render_records' array exactly."""
    return _ENCODER.encode([Record(*row) for row in rows])[1:-1]


_INT_FIELDS = frozenset(("duration", "billsec"))


def record_dict(row: Sequence[Any], fields: Sequence[str] = ()) -> dict[str, Any]:
    """One record: the six seed fields, then the requested extended fields in order."""
    record: dict[str, Any] = dict(zip(RECORD_FIELDS, row[:6], strict=True))
    for name, value in zip(fields, row[6 : 6 + len(fields)], strict=True):
        if name == "hasRecording":
            record[name] = bool(value)
        elif name in _INT_FIELDS:
            record[name] = int(value)
        else:
            record[name] = value
    return record


def render_page(rows: Iterable[Sequence[Any]], fields: Sequence[str], cursor: Any) -> bytes:
    """The success envelope for records with extended fields; ``cursor`` (a string or
    None) adds ``nextCursor`` unless it is the ``...`` marker of an unpaged answer."""
    doc: dict[str, Any] = {
        "respCode": 0,
        "respMsg": "Success",
        "data": [record_dict(row, fields) for row in rows],
    }
    if cursor is not ...:
        doc["nextCursor"] = cursor
    return orjson.dumps(doc)


def render_data(data: Any) -> bytes:
    """The success envelope around any ``data`` value."""
    return _RESPONSE_HEAD + orjson.dumps(data) + b"}"


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

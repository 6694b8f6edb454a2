"""The OpenAPI 3.1 document, generated from the msgspec structs that validate requests.

Every request type is a tagged struct (``requestType`` is the tag) wrapping the
same ``data`` struct protocol.py validates with, so the document cannot drift
from the server. The request body is a ``oneOf`` with a discriminator on
``requestType``; every answer is described: records (seed and extended), pages,
links, statistics, CSV/NDJSON exports and the -1 error envelope with every
``errorCode``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

import msgspec

from voip24h import __version__, errors
from voip24h.wire import protocol
from voip24h.wire.protocol import RECORDINGS_PREFIX
from voip24h.wire.push import EventsResponse, WebhookResponse

_Int = Annotated[int, msgspec.Meta(ge=0)]
EVENTS_STREAM_PATH = "/api/v1/partner/events/stream"  # served by server/stream.py


class ExtendedRecord(msgspec.Struct, kw_only=True):
    """A call record: the six seed fields always; the others only when asked for with
    ``fields`` or ``extended`` (seed clients never receive them)."""

    callId: str
    user: str
    phoneNumber: str
    callType: str
    callStatus: str
    callDate: Annotated[str, msgspec.Meta(description="YYYY-MM-DD HH:MM:SS, PBX time zone")]
    duration: _Int | None = None
    billsec: _Int | None = None
    direction: Literal["INBOUND", "OUTBOUND", "INTERNAL"] | None = None
    disposition: str | None = None
    accountcode: str | None = None
    did: str | None = None
    linkedid: str | None = None
    hasRecording: bool | None = None


class RecordsResponse(msgspec.Struct, kw_only=True):
    """Records, newest first. ``nextCursor`` is present only when the request sent
    ``limit`` or ``cursor``: send it back as ``cursor`` for the next page; null on the
    last page."""

    respCode: Literal[0]
    respMsg: Literal["Success"]
    data: list[ExtendedRecord]
    nextCursor: str | None = None


class Link(msgspec.Struct):
    """A signed link, valid for the configured time, that needs no secret."""

    link: str


class LinkResponse(msgspec.Struct):
    """Answer of recordingListen and recordingDownload."""

    respCode: Literal[0]
    respMsg: Literal["Success"]
    data: Link


class StatsEntry(msgspec.Struct):
    """One user's calls in one local day (YYYY-MM-DD) or hour (YYYY-MM-DD HH)."""

    user: str
    period: str
    total: _Int
    byStatus: dict[str, int]
    answered: _Int
    talkTime: Annotated[int, msgspec.Meta(ge=0, description="Seconds, ANSWERED calls only")]
    avgTalkTime: Annotated[float, msgspec.Meta(ge=0)]
    maxTalkTime: _Int


class StatsResponse(msgspec.Struct):
    """Answer of getStats, ordered by user then period."""

    respCode: Literal[0]
    respMsg: Literal["Success"]
    data: list[StatsEntry]


class DialResult(msgspec.Struct):
    """How a makeDial ended, once the PBX knows: the user's phone rang for up to the
    configured time. ``callId`` is the call's id, the one its records and live events
    carry; ``reason`` is Asterisk's OriginateResponse Reason code."""

    result: Literal["answered", "busy", "no_answer", "congested", "no_such_extension", "failed"]
    callId: str
    user: str
    phoneNumber: str
    reason: str


class DialResponse(msgspec.Struct):
    """Answer of makeDial."""

    respCode: Literal[0]
    respMsg: Literal["Success"]
    data: DialResult


def _error_codes() -> list[str]:
    codes: set[str] = set()
    pending = [errors.ApiError]
    while pending:
        cls = pending.pop()
        codes.add(cls.error_code)
        pending.extend(cls.__subclasses__())
    return sorted(codes)


def request_structs() -> list[type]:
    """One tagged struct per request type: ``{requestType, partnerSecret, data}``."""
    structs = []
    for name, data_type in protocol.DATA_TYPES.items():
        title = name[0].upper() + name[1:] + "Request"
        structs.append(
            msgspec.defstruct(
                title,
                # Optional: the secret may come as "Authorization: Bearer" instead.
                # null too: the server treats it as absent (then the header must carry it).
                [
                    ("data", data_type),
                    ("partnerSecret", str | None | msgspec.UnsetType, msgspec.UNSET),
                ],
                tag_field="requestType",
                tag=name,
                kw_only=True,
                forbid_unknown_fields=True,
            )
        )
    return structs


# Fields a request may give one of, not both.
EXCLUSIVE = (("phoneNumber", "phonePrefix"), ("extended", "fields"))


def _schemas() -> tuple[dict[str, Any], dict[str, Any]]:
    error_response = msgspec.defstruct(
        "ErrorResponse",
        [
            ("respCode", Literal[-1]),
            ("respMsg", str),
            ("errorCode", Literal[tuple(_error_codes())]),
        ],
    )
    request: Any = Union[tuple(request_structs())]  # noqa: UP007
    (request_schema, *_), components = msgspec.json.schema_components(
        [
            request,
            RecordsResponse,
            LinkResponse,
            StatsResponse,
            EventsResponse,
            WebhookResponse,
            DialResponse,
            error_response,
        ],
        ref_template="#/components/schemas/{name}",
    )
    request_schema["oneOf"] = request_schema.pop("anyOf")
    for schema in components.values():
        exclusive = [pair for pair in EXCLUSIVE if set(pair) <= set(schema.get("properties", ()))]
        if exclusive:  # the server refuses these together (service/translate.py)
            schema["allOf"] = [{"not": {"required": list(pair)}} for pair in exclusive]
    return request_schema, components


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": _ref("ErrorResponse")}},
    }


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of this server."""
    request_schema, components = _schemas()
    # anyOf: an empty data list is both a records and a stats answer.
    answers = {
        "anyOf": [
            _ref(name)
            for name in (
                "RecordsResponse",
                "LinkResponse",
                "StatsResponse",
                "EventsResponse",
                "WebhookResponse",
                "DialResponse",
            )
        ]
    }
    stream = {"schema": {"type": "string"}}
    partner_api = {
        "post": {
            "operationId": "partnerApi",
            "summary": "Every request type: records, call data, recording links, statistics",
            "description": (
                "A request shaped like the seed's (getUser, getDate, getUserDate without "
                "the opt-in fields) gets exactly the seed's answer. `format` csv/ndjson "
                "streams every match instead of the JSON envelope."
            ),
            "security": [{"bearerAuth": []}, {}],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": request_schema}},
            },
            "responses": {
                "200": {
                    "description": "Success (respCode 0)",
                    "content": {
                        "application/json": {"schema": answers},
                        "text/csv": stream,
                        "application/x-ndjson": stream,
                    },
                },
                "400": _error("The request is not valid (respCode -1, errorCode says why)"),
                "401": _error("partnerSecret missing, wrong, expired or revoked"),
                "403": _error("The user or call is outside the partner's scope"),
                "404": _error("No such call, recording or endpoint"),
                "405": _error("Wrong method"),
                "413": _error("Request body too large"),
                "415": _error("Body is not JSON"),
                "429": _error("Rate limited; see Retry-After"),
                "500": _error("Internal error (logged)"),
                "503": _error("Database unavailable or too slow; for makeDial: no PBX link"),
            },
        }
    }
    recording = {
        "get": {
            "operationId": "recordingFile",
            "summary": "The recording a signed link points to",
            "description": (
                "Links come from recordingListen (inline, supports Range for seeking) and "
                "recordingDownload (Content-Disposition: attachment)."
            ),
            "parameters": [
                {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "responses": {
                "200": {
                    "description": "The recording",
                    "content": {"audio/*": {"schema": {"type": "string", "format": "binary"}}},
                },
                "206": {
                    "description": "The requested byte range",
                    "content": {"audio/*": {"schema": {"type": "string", "format": "binary"}}},
                },
                "403": _error("Link altered, or file outside the recordings directory"),
                "404": _error("The file is no longer there"),
                "410": _error("The link has expired"),
                "416": {"description": "Range not satisfiable"},
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "voip24h partner API",
            "version": __version__,
            "description": "Call records of an Asterisk/FreePBX PBX for partner CRMs.",
        },
        "paths": {
            protocol.PATH: partner_api,
            RECORDINGS_PREFIX + "{token}": recording,
            EVENTS_STREAM_PATH: _events_stream(),
        },
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The partner secret; seed clients send it as partnerSecret.",
                }
            },
        },
    }


def _events_stream() -> dict[str, Any]:
    """The live events stream (Server-Sent Events); it never ends by itself."""
    return {
        "get": {
            "operationId": "eventsStream",
            "summary": "The partner's events (records and live calls) as Server-Sent Events",
            "description": (
                "An endless text/event-stream: each event's `id` is its outbox sequence, "
                "`event` its type and `data` the JSON getEvents gives. Reconnect with "
                "`Last-Event-ID` (or `?after=`) to get every event after it, none lost; "
                "a comment line every 15 s keeps a quiet stream open."
            ),
            "security": [{"bearerAuth": []}],
            "parameters": [
                {
                    "name": "Last-Event-ID",
                    "in": "header",
                    "required": False,
                    "description": "Resume after this event id (the last one received).",
                    "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
                },
                {
                    "name": "after",
                    "in": "query",
                    "required": False,
                    "description": "The same as Last-Event-ID, for clients that cannot set it.",
                    "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
                },
            ],
            "responses": {
                "200": {
                    "description": "The event stream (never ends by itself)",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}},
                },
                "400": _error("Last-Event-ID is not an event id (errorCode invalid_cursor)"),
                "401": _error("Bearer secret missing, wrong, expired or revoked"),
                "405": _error("Wrong method"),
                "429": _error("Too many streams open for this partner; see Retry-After"),
                "500": _error("Internal error (logged)"),
                "503": _error("Database unavailable or too slow"),
            },
        }
    }

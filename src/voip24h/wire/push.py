"""The push request types: webhook endpoints and the event feed (issue 20).

Like protocol.py's structs, these are both the validators and the OpenAPI source.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

# A record stored or changed (ingestion), and a call's live states (the PBX link).
EventType = Literal[
    "record.created", "record.updated", "call.ringing", "call.answered", "call.ended"
]
EndpointId = Annotated[str, msgspec.Meta(min_length=1, max_length=40)]


def _doc(text: str) -> msgspec.Meta:
    return msgspec.Meta(description=text)


class PushData(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The data of a push request type."""


class WebhookAddData(PushData, kw_only=True):
    """``webhookAdd``: a new endpoint; its signing secret is in the answer, once."""

    url: Annotated[
        str,
        msgspec.Meta(min_length=8, max_length=256),
        _doc("https:// (or http://) URL that receives the events, POSTed as JSON."),
    ]
    eventTypes: Annotated[
        Annotated[list[EventType], msgspec.Meta(min_length=1, max_length=2)] | None,
        _doc("Only these event types (default: all)."),
    ] = None
    users: Annotated[
        Annotated[list[str | int], msgspec.Meta(min_length=1, max_length=200)] | None,
        _doc("Only events of these extensions (default: every user in scope)."),
    ] = None


class WebhookListData(PushData, kw_only=True):
    """``webhookList``: the partner's endpoints (without their secrets)."""


class WebhookRemoveData(PushData, kw_only=True):
    """``webhookRemove``: delete an endpoint; nothing more is sent to it."""

    endpointId: EndpointId


class WebhookTestData(PushData, kw_only=True):
    """``webhookTest``: send a signed ``webhook.test`` event now; the answer says how it went."""

    endpointId: EndpointId


class WebhookRotateData(PushData, kw_only=True):
    """``webhookRotate``: a new signing secret; the old one also signs for ``overlapHours``."""

    endpointId: EndpointId
    overlapHours: Annotated[int, msgspec.Meta(ge=0, le=168)] = 24


class GetEventsData(PushData, kw_only=True):
    """``getEvents``: the partner's events after ``cursor``, oldest first."""

    cursor: Annotated[
        int, msgspec.Meta(ge=0), _doc("nextCursor of the previous answer (0: from the oldest).")
    ] = 0
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100


class WebhookRedeliverData(PushData, kw_only=True):
    """``webhookRedeliver``: send past events to an endpoint again (same ids)."""

    endpointId: EndpointId
    eventId: Annotated[str | None, _doc("One event, by id.")] = None
    since: Annotated[
        int | str | None,
        _doc("Every event after this sequence number, or since this time (2026-12-01T00:00:00Z)."),
    ] = None


PUSH_DATA_TYPES: dict[str, type[PushData]] = {
    "webhookAdd": WebhookAddData,
    "webhookList": WebhookListData,
    "webhookRemove": WebhookRemoveData,
    "webhookTest": WebhookTestData,
    "webhookRotate": WebhookRotateData,
    "getEvents": GetEventsData,
    "webhookRedeliver": WebhookRedeliverData,
}


# --- answers (for the OpenAPI document) ---


class EventRecord(msgspec.Struct, kw_only=True):
    """The record an event carries: the seed's six fields and the push fields."""

    callId: str
    user: str
    phoneNumber: str
    callType: str
    callStatus: str
    callDate: str
    duration: int
    billsec: int
    direction: str
    did: str
    linkedid: str
    hasRecording: bool


class Event(msgspec.Struct, kw_only=True):
    """One event, as getEvents answers it and a webhook delivery carries it."""

    id: Annotated[str, _doc("Stable: the same on every delivery (webhook-id).")]
    type: EventType
    occurredAt: Annotated[str, _doc("UTC, ISO 8601 (2026-12-07T10:00:00Z).")]
    sequence: Annotated[int, _doc("Rises with every event; send the last one as cursor.")]
    data: EventRecord


class EventsResponse(msgspec.Struct, kw_only=True):
    """Answer of getEvents: the events after the cursor, oldest first."""

    respCode: Literal[0]
    respMsg: Literal["Success"]
    data: list[Event]
    nextCursor: Annotated[int, _doc("The cursor for the next getEvents.")]


class WebhookResponse(msgspec.Struct, kw_only=True):
    """Answer of webhookAdd/List/Remove/Test/Rotate/Redeliver (see docs/webhooks.md);
    webhookAdd and webhookRotate carry the endpoint's secret, only that once."""

    respCode: Literal[0]
    respMsg: Literal["Success"]
    data: dict[str, Any] | list[dict[str, Any]]

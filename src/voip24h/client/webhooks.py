"""Webhooks for partners: verify a delivery's Standard Webhooks signature, and the event
type that deliveries and getEvents carry.

    from voip24h.client import verify_webhook

    event = verify_webhook(secret, request_body, request_headers)  # WebhookSignatureError
    if event.type == "record.created":
        print(event.data["callId"], event.data["duration"])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

from voip24h.client.errors import ProtocolError, Voip24hError


class WebhookSignatureError(Voip24hError):
    """A delivery whose signature (or timestamp, five minutes either way) does not verify."""


@dataclass(frozen=True)
class Event:
    """One event: ``record.created`` or ``record.updated`` with the record in ``data``
    (the seed's six fields plus duration, billsec, direction, did, linkedid and
    hasRecording), or a live ``call.ringing``/``call.answered``/``call.ended``.
    ``sequence`` rises with each event; ``id`` is the same on every
    delivery of the event, so a receiver can drop repeats."""

    id: str
    type: str
    occurred_at: datetime
    sequence: int
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_wire(cls, item: Any) -> Event:
        """An event from its JSON object."""
        try:
            when = datetime.fromisoformat(str(item["occurredAt"]).replace("Z", "+00:00"))
            return cls(
                str(item["id"]),
                str(item["type"]),
                when,
                int(item.get("sequence", 0)),
                dict(item.get("data") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(
                f"an event is not in the documented shape: {exc}", status=200
            ) from None


@dataclass(frozen=True)
class EventPage:
    """One answer of getEvents: its events, and the cursor to ask for the next ones."""

    events: list[Event]
    next_cursor: int


def verify_webhook(secret: str, body: bytes | str, headers: Mapping[str, str]) -> Event:
    """Check a delivery's webhook-id, webhook-timestamp and webhook-signature headers
    against the endpoint's ``secret`` (``whsec_...``) and return its event. The body
    must be the request's bytes exactly as received."""
    lowered = {key.lower(): value for key, value in headers.items()}
    try:
        payload = Webhook(secret).verify(body, lowered)
    except WebhookVerificationError as exc:
        raise WebhookSignatureError(f"the webhook does not verify: {exc}") from None
    return Event.from_wire(payload)


def events_of(doc: Mapping[str, Any]) -> EventPage:
    """The EventPage of a getEvents answer."""
    data = doc.get("data")
    cursor = doc.get("nextCursor")
    if not isinstance(data, list) or not isinstance(cursor, int):
        raise ProtocolError("the answer is not a page of events", status=200)
    return EventPage([Event.from_wire(item) for item in data], cursor)

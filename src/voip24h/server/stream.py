"""``GET /api/v1/partner/events/stream``: the partner's events as Server-Sent Events.

The partner secret comes as ``Authorization: Bearer``. Each event is sent with its
outbox sequence as the SSE ``id``, so a client that reconnects with ``Last-Event-ID``
(browsers' EventSource do it by themselves) gets every event after it, none lost,
none twice. New events are polled for every ``POLL_SECONDS``; a comment line every
``HEARTBEAT_SECONDS`` keeps proxies from closing a quiet stream. A database outage
pauses the stream; it does not end it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator

import orjson
from sse_starlette.sse import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import Response

from voip24h import errors
from voip24h.server.guard import BEARER_NOT_VALID, bearer_secret, request_info
from voip24h.server.state import State
from voip24h.service.event_feed import EventFeed

log = logging.getLogger(__name__)
STREAM_PATH = "/api/v1/partner/events/stream"
POLL_SECONDS = 0.5
HEARTBEAT_SECONDS = 15.0
MAX_STREAMS_PER_PARTNER = 4
RETRY_MS = 2000  # what EventSource clients wait before reconnecting
_open: Counter[int] = Counter()


def last_event_id(request: Request) -> int:
    """Where to resume: the ``Last-Event-ID`` header (or ``?after=``), 0 for the start."""
    raw = request.headers.get("last-event-id") or request.query_params.get("after") or "0"
    raw = raw.strip()
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise errors.InvalidCursor(
            "Last-Event-ID must be the id of an event this stream sent (a number)."
        )
    return int(raw)


async def events_stream(request: Request) -> Response:
    """GET /api/v1/partner/events/stream."""
    state: State = request.app.state.voip24h
    secret = bearer_secret(request)
    if secret is None:
        raise errors.MissingSecret("Send the partner secret as Authorization: Bearer <secret>.")
    try:
        partner = await state.partners.authenticate(secret)
    except errors.InvalidSecret:
        state.metrics.auth_failures.inc()
        raise errors.InvalidSecret(BEARER_NOT_VALID) from None
    info = request_info(request)
    info.partner_id, info.partner, info.request_type = partner.id, partner.name, "eventStream"
    cursor = last_event_id(request)
    if _open[partner.id] >= MAX_STREAMS_PER_PARTNER:
        raise errors.RateLimited(
            f"This partner has {MAX_STREAMS_PER_PARTNER} event streams open already; close "
            "one first.",
            headers={"Retry-After": "5"},
        )
    feed = EventFeed(state.reader)

    async def events() -> AsyncIterator[ServerSentEvent]:
        nonlocal cursor
        _open[partner.id] += 1
        failing = False
        try:
            yield ServerSentEvent(retry=RETRY_MS, comment="voip24h events")
            while True:
                try:
                    batch = await feed.after(partner.scope, cursor)
                except errors.ApiError as exc:
                    if not failing:
                        log.warning("event stream for %s paused: %s", partner.name, exc.error_code)
                    failing = True
                    batch = []
                else:
                    failing = False
                for event in batch:
                    cursor = event["sequence"]
                    yield ServerSentEvent(
                        orjson.dumps(event).decode(), event=event["type"], id=str(cursor)
                    )
                if len(batch) < 1:
                    await asyncio.sleep(POLL_SECONDS)
        finally:
            _open[partner.id] -= 1
            if _open[partner.id] <= 0:
                del _open[partner.id]

    return EventSourceResponse(events(), ping=HEARTBEAT_SECONDS)

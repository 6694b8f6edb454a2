"""HTTP handlers: read and check the request, call the service, render. Nothing else."""

from __future__ import annotations

import asyncio

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from voip24h import errors
from voip24h.server import responses
from voip24h.server.guard import request_info
from voip24h.server.push import push_answer
from voip24h.server.state import State
from voip24h.service.results import Dialed, records_in
from voip24h.service.translate import to_query
from voip24h.wire import protocol
from voip24h.wire.push import PushData

JSON = "application/json"


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == JSON or (media.startswith("application/") and media.endswith("+json"))


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The request body, refusing anything over ``limit`` bytes before reading it all,
    and answering 408 when it does not arrive within ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            return await _read_body(request, limit)
    except TimeoutError:
        raise errors.RequestTimeout(
            f"The request body was not received within {timeout:g} seconds."
        ) from None


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            too_big = int(declared) > limit
        except ValueError:
            raise errors.InvalidRequest("Content-Length is not a number.") from None
        if too_big:
            raise errors.PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    # The ASGI messages themselves (Request.stream() is an async generator around them).
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise errors.PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def partner_api(request: Request) -> Response:
    """POST /api/v1/partner/voip24h."""
    state: State = request.app.state.voip24h
    if not _is_json(request.headers.get("content-type")):
        raise errors.UnsupportedMediaType()
    settings = state.settings
    body = await read_body(request, settings.max_body_bytes, settings.client_timeout_seconds)
    envelope = protocol.parse_envelope(body)
    partner = await state.guard.admit(request, envelope)  # secret, throttles, limits
    data = protocol.parse_data(envelope)
    if isinstance(data, PushData):  # webhooks and the event feed (issue 20)
        response = await push_answer(state.webhooks, partner, data)
        response.headers.update(await state.guard.charge(request, partner, 0))
        return response
    query = to_query(data, state.settings, state.matcher)
    result = await state.answers.answer(partner, query)  # every request type (issue 4)
    if isinstance(result, Dialed):  # the originate's audit entry says how it went
        request_info(request).params = {**envelope.data, **result.wire(),
                                         "replayed": result.replayed}
    headers = await state.guard.charge(request, partner, records_in(result))
    return await responses.render(result, request, state.settings.public_url, headers)


async def recording_file(request: Request) -> Response:
    """GET /api/v1/partner/voip24h/recordings/{token}: the file a signed link points to."""
    state: State = request.app.state.voip24h
    return await state.answers.recordings.open(request.path_params["token"])

"""Rendering a service result as the HTTP response partners receive."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from voip24h.service.results import Dialed, Export, Link, Page, RenderedRecords, Result, Stats
from voip24h.wire import export, protocol
from voip24h.wire.spool import SpooledRecords

JSON = "application/json"


async def render(
    result: Result, request: Request, public_url: str = "", headers: dict[str, str] | None = None
) -> Response:
    """The response for ``result``; a seed page is rendered exactly as the seed's."""
    response = await _render(result, request, public_url)
    if headers:
        response.headers.update(headers)
    return response


async def _render(result: Result, request: Request, public_url: str) -> Response:
    if isinstance(result, Page):
        if result.seed:
            if isinstance(result.rows, RenderedRecords):
                return Response(protocol.render_array(result.rows.json), media_type=JSON)
            if isinstance(result.rows, SpooledRecords):  # a large answer, already checked
                return StreamingResponse(result.rows.body(), media_type=JSON)
            return Response(protocol.render_records(result.rows), media_type=JSON)
        cursor = result.next_cursor if result.paged else ...
        return Response(protocol.render_page(result.rows, result.fields, cursor), media_type=JSON)
    if isinstance(result, Link):
        base = public_url.rstrip("/") or str(request.base_url).rstrip("/")
        return Response(protocol.render_data({"link": base + result.path}), media_type=JSON)
    if isinstance(result, Stats):
        return Response(protocol.render_data(result.rows), media_type=JSON)
    if isinstance(result, Dialed):
        return Response(protocol.render_data(result.wire()), media_type=JSON)
    return await _stream(result)


async def _stream(result: Export) -> Response:
    # Read the first chunk before answering, so that a database failure is still
    # a proper -1 envelope with its status rather than a broken stream.
    first = await anext(result.chunks, None)
    name = f"calls.{result.format}"
    return StreamingResponse(
        export.body(first, result.chunks, result.fields, result.format),
        media_type=export.MEDIA_TYPES[result.format],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )

"""create_app(settings): the ASGI application, its routes and its one error handler."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from voip24h import errors, ops
from voip24h.app_state import State
from voip24h.config import Settings, load_settings
from voip24h.db.reader import make_reader
from voip24h.http import partner_api
from voip24h.protocol import PATH
from voip24h.routes import extended_routes

log = logging.getLogger("voip24h")


def error_response(error: errors.ApiError) -> Response:
    return Response(
        errors.envelope_bytes(error.message, error.error_code),
        status_code=error.status,
        media_type="application/json",
        headers=error.headers,
    )


async def _api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.ApiError)
    if exc.status >= 500:
        log.warning("%s: %s", exc.error_code, exc.__cause__ or exc)
    return error_response(exc)


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    mapped: errors.ApiError
    if exc.status_code == 404:
        mapped = errors.NotFound()
    elif exc.status_code == 405:
        # Keep Starlette's Allow header (RFC 9110 requires it on a 405).
        headers = dict(exc.headers or {})
        allowed = headers.get("Allow") or headers.get("allow")
        message = f"Use {allowed} for this endpoint." if allowed else None
        mapped = errors.MethodNotAllowed(message, headers=headers)
    else:
        mapped = errors.InvalidRequest(str(exc.detail))
        mapped.status = exc.status_code  # type: ignore[misc]
    return error_response(mapped)


async def _unexpected(_request: Request, exc: Exception) -> Response:
    log.exception("unexpected error", exc_info=exc)
    return error_response(errors.InternalError())


def create_app(settings: Settings) -> Starlette:
    """The server for ``settings``; connections open when the app starts."""
    reader = make_reader(settings.database_url, settings.db_timeout_seconds, settings.db_pool_size)
    state = State.build(settings, reader)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await reader.start()
        try:
            async with ops.serving(state):  # audit writer, ops listener, drain (issue 5)
                yield
        finally:
            await reader.close()

    app = Starlette(
        routes=[
            Route(PATH, partner_api, methods=["POST"]),
            *extended_routes(),  # recordings, /openapi.json, /docs (issue 4)
            *ops.main_routes(settings),
        ],
        middleware=ops.ops_middleware(state, PATH),
        exception_handlers={
            errors.ApiError: _api_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
        lifespan=lifespan,
    )
    app.state.voip24h = state
    return app


def app_from_env() -> Starlette:
    """Factory for uvicorn workers: settings come from VOIP24H_* variables."""
    settings = load_settings()
    ops.configure_logging(settings.log_level)
    return create_app(settings)

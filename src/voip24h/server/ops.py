"""Ops endpoints: GET /healthz (process up), /readyz (database answers), /metrics.

Their routes are declared in server/routes.py:ops_routes; this module holds the
handlers, the ops middleware and ``serving``, which runs the app's companions (the
access log, the audit writer, the ops listener) and drains on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

from voip24h import errors
from voip24h.domain.netaddr import parse_networks
from voip24h.server.middleware import OpsMiddleware
from voip24h.server.observability import configure_logging
from voip24h.server.state import State

log = logging.getLogger("voip24h")
__all__ = [
    "configure_logging", "healthz", "metrics", "ops_middleware", "readyz", "serving", "with_ops",
]  # fmt: skip


def _state(request: Request) -> State:
    state: State = request.app.state.voip24h
    return state


def _require_token(request: Request) -> None:
    token = _state(request).settings.ops_token
    if not token:
        return
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), token):
        raise errors.OpsUnauthorized()


async def healthz(_request: Request) -> Response:
    """The process is up and serving."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """The database answers a trivial query within the request time limit."""
    _require_token(request)
    try:
        await _state(request).reader.ping()
    except errors.ApiError as exc:
        body = {"status": "unavailable", "errorCode": exc.error_code}
        return JSONResponse(body, 503, headers=exc.headers)
    return JSONResponse({"status": "ready"})


async def metrics(request: Request) -> Response:
    """Prometheus text exposition of this process's metrics."""
    _require_token(request)
    return Response(
        generate_latest(_state(request).metrics.registry), media_type=CONTENT_TYPE_LATEST
    )


def _ops_options(state: State, api_path: str) -> dict[str, Any]:
    return {
        "api_path": api_path,
        "proxies": parse_networks(state.settings.trusted_proxies),
        "metrics": state.metrics,
        "audit": state.audit,
        "access": state.access,
        "drain": state.drain,
    }


def ops_middleware(state: State, api_path: str) -> list[Middleware]:
    """The ops middleware (request id, access log, metrics, audit) for the main app."""
    return [Middleware(OpsMiddleware, **_ops_options(state, api_path))]


def with_ops(app: ASGIApp, state: State, api_path: str) -> OpsMiddleware:
    """``app`` wrapped in the same ops middleware, for an app served outside Starlette's stack."""
    return OpsMiddleware(app, **_ops_options(state, api_path))


class _OpsServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the main server."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serving(state: State, ops_app: ASGIApp | None) -> AsyncIterator[None]:
    """Run the app's companions: access log, audit writer, the ops listener (``ops_app``
    on ops_host:ops_port, when there is one); drain on the way out."""
    settings = state.settings
    await state.access.start()
    if state.audit is not None:
        await state.audit.start()
    ops_server: _OpsServer | None = None
    ops_task: asyncio.Task[None] | None = None
    if ops_app is not None:
        ops_server = _OpsServer(
            uvicorn.Config(
                ops_app,
                host=settings.ops_host,
                port=settings.ops_port,
                lifespan="off",
                log_level="warning",
                access_log=False,
            )
        )
        ops_task = asyncio.create_task(ops_server.serve(), name="voip24h-ops")
    try:
        yield
    finally:
        if not await state.drain.wait(settings.shutdown_grace_seconds):
            log.warning("shutdown: %d requests still running", state.drain.in_flight)
        if ops_server is not None and ops_task is not None:
            ops_server.should_exit = True
            with contextlib.suppress(Exception):
                await ops_task
        if state.audit is not None:
            await state.audit.close()
        await state.access.close()
        await state.guard.close()

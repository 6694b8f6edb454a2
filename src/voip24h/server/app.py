"""create_app(settings): the composition root of the ASGI application.

Every route is declared in server/routes.py; this module wires the parts together and
serves the partner endpoint's fast path.

The partner endpoint's POSTs skip Starlette's middleware stack and router: those layers
cost about 25 µs a request in-process, and under load about 2% of the CPU of a typical
answer of a hundred records. They get the same ops middleware, error handling and
responses; every other request (other methods on the partner path too: 405 with Allow)
goes through Starlette.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive, Scope, Send

from voip24h import errors
from voip24h.config import Settings, load_settings
from voip24h.db.drivers import make_reader
from voip24h.domain.mapping import ExtensionMatcher
from voip24h.pbx.dialer import PbxDialer
from voip24h.pbx.runner import runner_for, running
from voip24h.server import errors as server_errors
from voip24h.server import ops
from voip24h.server.audit import AuditWriter
from voip24h.server.dbgate import GatedReader, Outage
from voip24h.server.delivery import delivering
from voip24h.server.guard import Guard, request_info
from voip24h.server.handlers import partner_api
from voip24h.server.middleware import Drain
from voip24h.server.observability import AccessLog, Metrics
from voip24h.server.ratelimit import make_buckets
from voip24h.server.routes import ops_routes, partner_routes
from voip24h.server.state import State
from voip24h.service.answers import AnswerService, PartnerDirectory
from voip24h.service.dial import DialService
from voip24h.service.webhooks.endpoints import Webhooks
from voip24h.service.webhooks.metrics import DeliveryMetrics
from voip24h.wire.protocol import DATA_TYPES, PATH

CLIENT_CLOSED = 499  # what the audit and metrics record for a client gone before its answer


def route_path(scope: Scope) -> str:
    """The path routes match, as Starlette's router sees it (without the root path)."""
    path: str = scope["path"]
    root = scope.get("root_path", "")
    if not root or not path.startswith(root):
        return path
    if path == root:
        return ""
    return path[len(root) :] if path[len(root)] == "/" else path


class PartnerServer(Starlette):
    """Starlette, with POSTs to the partner endpoint served directly (see the module doc)."""

    def __init__(self, *, state: State, **options: Any) -> None:
        super().__init__(**options)
        self._partner = ops.with_ops(self._serve_partner, state, PATH)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and route_path(scope) == PATH:
            scope["app"] = self
            await self._partner(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def _serve_partner(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            response = await partner_api(request)
        except ClientDisconnect:
            info = request_info(request)
            info.status, info.error_code = CLIENT_CLOSED, "client_disconnected"
            return
        except Exception as exc:
            response = await server_errors.handle(request, exc)
        await response(scope, receive, send)


def create_app(settings: Settings) -> Starlette:
    """The server for ``settings``: the one composition root, read top to bottom.

    settings -> engines -> drivers -> stores -> services -> routes; each step uses only
    what the steps above it made. Nothing connects here: connections open when the app
    starts (``lifespan``).
    """
    # Observability first: every part below reports into it.
    metrics = Metrics(tuple(DATA_TYPES))
    drain = Drain()
    metrics.in_flight.set_function(lambda: drain.in_flight)
    access = AccessLog()

    # Engines: none is opened here. The webhook store's SQLAlchemy engine opens on first
    # use (Webhooks.engine), the audit writer's with its first batch.

    # Drivers: the partner reader for the backend (db/drivers), behind the gate that
    # bounds its waiting line and answers fast during an outage.
    reader = GatedReader(
        make_reader(settings.database_url, settings.db_timeout_seconds, settings.db_pool_size),
        settings.db_pool_size + settings.db_max_waiting,
        Outage(),
        # SQLite reads on the event loop itself: no pool to wait for.
        slots=None if settings.database_url.startswith("sqlite") else settings.db_pool_size,
        wait_seconds=settings.db_wait_seconds,
    )
    metrics.watch_database(reader)

    # Stores: partners, webhook endpoints and events, throttle buckets, the audit log.
    partners = PartnerDirectory(reader, settings.partner_cache_seconds)
    webhooks = Webhooks(settings)
    buckets = make_buckets(
        settings.redis_url, settings.redis_key_prefix, metrics.limiter_errors.inc
    )
    audit = AuditWriter.for_settings(settings, metrics) if settings.audit_enabled else None

    # Services: admission, answers (every request type), makeDial over the PBX link.
    guard = Guard(settings, partners, buckets, metrics)
    matcher = ExtensionMatcher(settings.extension_pattern, settings.extensions)
    answers = AnswerService(reader, settings.max_records, settings)
    pbx = runner_for(settings)  # the AMI link, when ami_url is set (issue 21)
    dialer = PbxDialer(settings, pbx) if settings.ami_url else None
    answers.dials = DialService(matcher, dialer, guard.dial_budget)
    state = State(
        settings=settings, reader=reader, matcher=matcher, partners=partners,
        answers=answers, metrics=metrics, guard=guard, drain=drain, access=access,
        audit=audit, webhooks=webhooks, delivery=DeliveryMetrics(metrics.registry),
    )  # fmt: skip

    # Routes: the partner app, and the ops listener when ops_port is set (server/routes.py).
    ops_app: Starlette | None = None
    if settings.ops_port:
        ops_app = Starlette(routes=ops_routes())
        ops_app.state.voip24h = state

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await reader.start()
        try:
            # access log, audit writer, ops listener, drain; the webhook deliverer; the PBX
            async with ops.serving(state, ops_app), delivering(state), running(pbx):
                yield
        finally:
            await reader.close()
            webhooks.close()

    app = PartnerServer(
        state=state,
        routes=partner_routes(settings),
        middleware=ops.ops_middleware(state, PATH),
        exception_handlers={
            errors.ApiError: server_errors.handle,
            HTTPException: server_errors.handle,
            Exception: server_errors.handle,
        },
        lifespan=lifespan,
    )
    # "/path/" gets the 404 envelope like any unknown path, not a bare 307 redirect.
    app.router.redirect_slashes = False
    app.state.voip24h = state
    return app


def app_from_env() -> Starlette:
    """Factory for uvicorn workers: settings come from VOIP24H_* variables."""
    settings = load_settings()
    ops.configure_logging(settings.log_level)
    return create_app(settings)

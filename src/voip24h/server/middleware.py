"""The ops middleware: request id, client address, access log, metrics, audit, drain."""

from __future__ import annotations

import asyncio
import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voip24h.domain.netaddr import Network, client_address
from voip24h.server.audit import AuditWriter
from voip24h.server.observability import INFO_KEY, AccessLog, Metrics, RequestInfo, request_id

log = logging.getLogger("voip24h")


class Drain:
    """Counts requests in flight so shutdown can wait for them."""

    def __init__(self) -> None:
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def enter(self) -> None:
        self.in_flight += 1
        self._idle.clear()

    def exit(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle.set()

    async def wait(self, timeout: float) -> bool:
        """True when every request finished within ``timeout`` seconds."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class OpsMiddleware:
    """Wraps every HTTP request; partner API requests are also metered and audited."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        api_path: str,
        proxies: tuple[Network, ...],
        metrics: Metrics,
        audit: AuditWriter | None,
        access: AccessLog,
        drain: Drain,
    ):
        self.app = app
        self._api_path = api_path
        self._proxies = proxies
        self._metrics = metrics
        self._audit = audit
        self._access = access
        self._drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        peer = scope["client"][0] if scope.get("client") else None
        info = RequestInfo(
            request_id=request_id(_header(scope, b"x-request-id")),
            client=client_address(peer, _header(scope, b"x-forwarded-for"), self._proxies),
            method=scope["method"],
            path=scope["path"],
            started=time.perf_counter(),
        )
        scope.setdefault("state", {})[INFO_KEY] = info

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                info.status = message["status"]
                headers = [*message.get("headers", ()), (b"x-request-id", info.request_id.encode())]
                message = {**message, "headers": headers}
            await send(message)

        self._drain.enter()
        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException:
            if not info.status or info.status < 500:
                info.status = 500
            info.error_code = "internal_error"
            raise
        finally:
            self._drain.exit()
            self._finish(info)

    def _finish(self, info: RequestInfo) -> None:
        # info.error_code was set by server/errors.py:error_response, never read from the body.
        info.latency_ms = (time.perf_counter() - info.started) * 1000
        try:
            if info.path == self._api_path:
                self._metrics.observe(info)
                if self._audit is not None:
                    self._audit.record(info)
            self._access.add(info)
        except Exception:  # observability must never break a response
            log.exception("recording request %s failed", info.request_id)

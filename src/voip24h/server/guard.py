"""The gate in front of every partner request: hygiene, secret, throttles, rate limits.

``admit`` runs before the query: it bounds the shape of ``data``, takes the secret
from ``Authorization: Bearer`` or the body, refuses client addresses that failed
too many secret checks, authenticates, and spends one unit of the partner's
request budget. ``charge`` runs after: it books the rows returned against the
partner's rows-per-minute budget and gives the RateLimit headers of the answer.
"""

from __future__ import annotations

import math
import time
from typing import Any

from starlette.requests import Request

from voip24h import errors
from voip24h.config import Settings
from voip24h.db.drivers import REQUEST_DEADLINE
from voip24h.server.observability import INFO_KEY, Metrics, RequestInfo
from voip24h.server.ratelimit import Buckets, Verdict
from voip24h.service.answers import Partner, PartnerDirectory
from voip24h.wire.protocol import Envelope

_STATE_KEY = "voip24h_limits"


def request_info(request: Request) -> RequestInfo:
    """The RequestInfo the ops middleware attached (a detached one if there is none)."""
    info = request.scope.get("state", {}).get(INFO_KEY)
    if info is None:
        client = request.client.host if request.client else "unknown"
        info = RequestInfo("", client, request.method, request.url.path, 0.0)
        request.scope.setdefault("state", {})[INFO_KEY] = info
    return info


BEARER_NOT_VALID = "The Authorization: Bearer token is not valid."


def bearer_secret(request: Request) -> str | None:
    """The token of ``Authorization: Bearer <token>``, if that is what was sent."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


_FLAT = frozenset((str, int, float, bool, type(None)))


def _too_long(what: str, max_string: int) -> errors.ValueTooLong:
    return errors.ValueTooLong(f"A {what} in data is longer than {max_string} characters.")


def check_shape(data: Any, max_depth: int, max_string: int) -> None:
    """Refuse nesting deeper than ``max_depth`` or any string longer than ``max_string``."""
    if type(data) is dict and all(type(v) in _FLAT for v in data.values()):
        # The usual request: one object of plain values; only lengths to check.
        if any(len(k) > max_string for k in data):
            raise _too_long("field name", max_string)
        if any(type(v) is str and len(v) > max_string for v in data.values()):
            raise _too_long("string", max_string)
        return
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if len(value) > max_string:
                raise _too_long("string", max_string)
        elif isinstance(value, dict | list):
            if depth > max_depth:
                raise errors.RequestTooComplex(f"data is nested deeper than {max_depth} levels.")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str) and len(key) > max_string:
                    raise _too_long("field name", max_string)
                stack.append((item, depth + 1))


def _seconds(value: float) -> int:
    return max(1, math.ceil(value))


class Guard:
    """Admission control for the partner endpoint."""

    def __init__(
        self, settings: Settings, partners: PartnerDirectory, buckets: Buckets, metrics: Metrics
    ):
        self._settings = settings
        self._partners = partners
        self._buckets = buckets
        self._metrics = metrics

    async def admit(self, request: Request, envelope: Envelope) -> Partner:
        """The authenticated partner, within its limits; raises the matching ApiError."""
        s = self._settings
        # One database time budget for the whole request (auth lookup and query alike).
        REQUEST_DEADLINE.set(time.monotonic() + s.db_timeout_seconds)
        info = request_info(request)
        info.request_type = envelope.request_type
        info.params = envelope.data if isinstance(envelope.data, dict) else None
        check_shape(envelope.data, s.max_json_depth, s.max_string_length)
        bearer = bearer_secret(request)
        secret = bearer or envelope.secret
        await self._check_address(info.client)
        try:
            if secret is not None and len(secret) > s.max_string_length:
                raise errors.InvalidSecret()
            partner = await self._partners.authenticate(secret)
        except errors.InvalidSecret as exc:
            self._metrics.auth_failures.inc()
            if s.auth_failures_per_minute:
                per = s.auth_failures_per_minute
                await self._buckets.hit("af:" + info.client, 60 / per, per, 1, "force")
            if bearer is not None:  # the header wins over the body: say which one failed
                raise errors.InvalidSecret(BEARER_NOT_VALID) from exc
            raise
        info.partner_id, info.partner = partner.id, partner.name
        await self._check_partner(request, partner)
        return partner

    async def charge(self, request: Request, partner: Partner, rows: int) -> dict[str, str]:
        """Book ``rows`` against the partner's budget; the RateLimit headers to send."""
        request_info(request).rows = rows
        state = request.scope.setdefault("state", {})
        limits: dict[str, tuple[int, int, Verdict]] = state.get(_STATE_KEY, {})
        rpm = self._rows_per_minute(partner)
        if rpm:
            verdict = await self._buckets.hit(
                f"rows:{partner.id}", 60 / rpm, rpm, max(rows, 0), "force"
            )
            limits["rows"] = (rpm, 60, verdict)
        return self._headers(limits)

    async def dial_budget(self, partner_id: int) -> float | None:
        """Spend one of the partner's makeDial budget (dials_per_minute, a limit of its
        own); None when allowed, else the seconds to wait."""
        per = self._settings.dials_per_minute
        if not per:
            return None
        verdict = await self._buckets.hit(f"dial:{partner_id}", 60 / per, per)
        if verdict.allowed:
            return None
        self._metrics.rate_limited.labels("dials").inc()
        return verdict.retry_after

    async def close(self) -> None:
        await self._buckets.close()

    async def _check_address(self, client: str) -> None:
        per = self._settings.auth_failures_per_minute
        if not per:
            return
        verdict = await self._buckets.hit("af:" + client, 60 / per, per, 1, "peek")
        if not verdict.allowed:
            self._metrics.rate_limited.labels("auth_failures").inc()
            raise errors.RateLimited(
                "Too many failed secret checks from this address; retry after the time in "
                "Retry-After.",
                headers={"Retry-After": str(_seconds(verdict.retry_after))},
            )

    async def _check_partner(self, request: Request, partner: Partner) -> None:
        limits: dict[str, tuple[int, int, Verdict]] = {}
        rate = self._rate(partner)
        if rate:
            burst = max(1, math.ceil(rate))
            verdict = await self._buckets.hit(f"rq:{partner.id}", 1 / rate, burst)
            limits["requests"] = (burst, _seconds(burst / rate), verdict)
            if not verdict.allowed:
                self._refuse("requests", verdict, limits)
        rpm = self._rows_per_minute(partner)
        if rpm:
            verdict = await self._buckets.hit(f"rows:{partner.id}", 60 / rpm, rpm, 1, "peek")
            limits["rows"] = (rpm, 60, verdict)
            if not verdict.allowed:
                self._refuse("rows", verdict, limits)
        request.scope.setdefault("state", {})[_STATE_KEY] = limits

    def _refuse(self, which: str, verdict: Verdict, limits: dict[str, Any]) -> None:
        self._metrics.rate_limited.labels(which).inc()
        headers = self._headers(limits)
        headers["Retry-After"] = str(_seconds(verdict.retry_after))
        message = {
            "requests": "Too many requests for this partner; retry after the time in Retry-After.",
            "rows": "This partner received too many records this minute; retry after the "
            "time in Retry-After.",
        }[which]
        raise errors.RateLimited(message, headers=headers)

    def _rate(self, partner: Partner) -> float:
        if partner.rate_per_second is not None:
            return partner.rate_per_second
        return self._settings.rate_limit_per_second

    def _rows_per_minute(self, partner: Partner) -> int:
        if partner.rows_per_minute is not None:
            return partner.rows_per_minute
        return self._settings.rate_limit_rows_per_minute

    @staticmethod
    def _headers(limits: dict[str, tuple[int, int, Verdict]]) -> dict[str, str]:
        """RateLimit / RateLimit-Policy (draft-ietf-httpapi-ratelimit-headers)."""
        if not limits:
            return {}
        policy = ", ".join(f'"{name}";q={q};w={w}' for name, (q, w, _) in limits.items())
        state = ", ".join(
            f'"{name}";r={v.remaining};t={math.ceil(max(v.reset, 0))}'
            for name, (_, _, v) in limits.items()
        )
        return {"RateLimit-Policy": policy, "RateLimit": state}

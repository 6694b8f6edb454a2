"""What operators see: per-request facts, Prometheus metrics and JSON access logs."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

access_log = logging.getLogger("voip24h.access")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}", re.ASCII)
INFO_KEY = "voip24h_info"


def request_id(incoming: str | None) -> str:
    """The caller's X-Request-ID when it is a short plain token, else a fresh one."""
    if incoming and _REQUEST_ID.fullmatch(incoming):
        return incoming
    return os.urandom(16).hex()  # 128 random bits as 32 hex digits; a third of uuid4's cost


@dataclass(slots=True)
class RequestInfo:
    """Facts about one request, filled in as it goes; never holds a secret."""

    request_id: str
    client: str
    method: str
    path: str
    started: float
    partner_id: int | None = None
    partner: str | None = None
    request_type: str | None = None
    params: dict[str, Any] | None = None
    rows: int = 0
    status: int = 0
    error_code: str = ""
    latency_ms: float = 0.0
    at: datetime = field(default_factory=lambda: datetime.now(UTC).replace(tzinfo=None))

    def log_line(self) -> bytes:
        """The JSON access log line (no request body, no secret)."""
        return orjson.dumps(
            {
                "ts": self.at.isoformat(timespec="milliseconds") + "Z",
                "request_id": self.request_id,
                "client": self.client,
                "method": self.method,
                "path": self.path,
                "status": self.status,
                "latency_ms": round(self.latency_ms, 2),
                "partner": self.partner,
                "request_type": self.request_type,
                "rows": self.rows,
                "error_code": self.error_code or None,
            }
        )


class Metrics:
    """The Prometheus metrics of one app, in a registry of its own."""

    def __init__(self, request_types: tuple[str, ...]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._types = frozenset(request_types)
        r = self.registry
        self.requests = Counter(
            "voip24h_requests",
            "Partner API requests by request type and HTTP status.",
            ["request_type", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "voip24h_request_duration_seconds",
            "Partner API request latency.",
            ["request_type"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.rows = Counter(
            "voip24h_rows_returned", "Records returned to partners.", ["request_type"], registry=r
        )
        self.rate_limited = Counter(
            "voip24h_rate_limited",
            "Requests refused with 429, by the limit that refused them.",
            ["limit"],
            registry=r,
        )
        self.auth_failures = Counter(
            "voip24h_auth_failures", "Failed partner secret checks.", registry=r
        )
        self.db_errors = Counter(
            "voip24h_db_errors",
            "Database failures answered 503, by error code.",
            ["error_code"],
            registry=r,
        )
        self.limiter_errors = Counter(
            "voip24h_ratelimit_store_errors",
            "Rate limit store (Redis) failures; requests were allowed.",
            registry=r,
        )
        self.audit_dropped = Counter(
            "voip24h_audit_dropped",
            "Audit entries dropped (queue full or database down).",
            registry=r,
        )
        self.in_flight = Gauge("voip24h_in_flight_requests", "Requests being served.", registry=r)
        # Labelled children, found once: labels() takes a lock and builds keys each time.
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}
        self._rows: dict[str, Any] = {}

    def _for(self, kind: str, status: int) -> tuple[Any, Any]:
        children = self._children.get((kind, status))
        if children is None:
            if len(self._children) > 1000:  # statuses are few; stay bounded regardless
                self._children.clear()
            children = self._children[(kind, status)] = (
                self.requests.labels(kind, str(status)),
                self.latency.labels(kind),
            )
        return children

    def label(self, request_type: str | None) -> str:
        """A bounded label: a known request type, else 'none' (attackers pick the text)."""
        return request_type if request_type in self._types else "none"

    def observe(self, info: RequestInfo) -> None:
        kind = self.label(info.request_type)
        requests, latency = self._for(kind, info.status)
        requests.inc()
        latency.observe(info.latency_ms / 1000)
        if info.rows:
            rows = self._rows.get(kind)
            if rows is None:
                rows = self._rows[kind] = self.rows.labels(kind)
            rows.inc(info.rows)
        if info.error_code.startswith("database_"):
            self.db_errors.labels(info.error_code).inc()


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: access lines as they are, other records wrapped."""

    def format(self, record: logging.LogRecord) -> str:
        if record.name == access_log.name:
            return record.getMessage()
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()


def configure_logging(level: str) -> None:
    """JSON lines on stderr for the ``voip24h`` loggers (once per process)."""
    logger = logging.getLogger("voip24h")
    logger.setLevel(level.upper())
    if any(isinstance(h.formatter, JsonLogFormatter) for h in logger.handlers):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLogFormatter())
    logger.addHandler(handler)
    logger.propagate = False

"""What operators see: per-request facts, Prometheus metrics and JSON access logs."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

access_log = logging.getLogger("voip24h.access")
ACCESS_FLUSH_SECONDS = 0.2
# One access record is one write(); up to PIPE_BUF (4096) bytes a pipe shared by the
# workers (journald, docker) keeps it whole, so records are whole lines under that.
ACCESS_RECORD_BYTES = 4000
ACCESS_MAX_PENDING = 10_000
PATH_CHARS = 256
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
                "path": self.path[:PATH_CHARS],
                "status": self.status,
                "latency_ms": round(self.latency_ms, 2),
                "partner": self.partner,
                "request_type": self.request_type,
                "rows": self.rows,
                "error_code": self.error_code or None,
            }
        )


class AccessLog:
    """The JSON access lines, handed to the ``voip24h.access`` logger in batches.

    A log record per request costs a few percent of a busy worker's time (the record,
    the handler's lock, a write), so requests are queued and their lines emitted every
    ``ACCESS_FLUSH_SECONDS`` as records of several whole lines, each under
    ``ACCESS_RECORD_BYTES``. A line appears at most that much later; its ``ts`` is
    the request's own time.
    """

    def __init__(self) -> None:
        self._pending: list[RequestInfo] = []
        self._task: asyncio.Task[None] | None = None

    def add(self, info: RequestInfo) -> None:
        """Queue the line of one finished request (when the access log is enabled)."""
        if access_log.isEnabledFor(logging.INFO):
            self._pending.append(info)
            if len(self._pending) >= ACCESS_MAX_PENDING:
                self.flush()

    def flush(self) -> None:
        """Emit every queued line now."""
        pending, self._pending = self._pending, []
        chunk: list[bytes] = []
        size = 0
        for info in pending:
            line = info.log_line()
            if chunk and size + len(line) + 1 > ACCESS_RECORD_BYTES:
                access_log.info(b"\n".join(chunk).decode())
                chunk, size = [], 0
            chunk.append(line)
            size += len(line) + 1
        if chunk:
            access_log.info(b"\n".join(chunk).decode())

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="voip24h-access-log")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(ACCESS_FLUSH_SECONDS)
            self.flush()


LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class RequestStats:
    """Partner requests by type and status, their latency and the records returned.

    Tallied in plain dicts (the event loop is the only writer) and turned into metric
    families when /metrics is read: prometheus_client's own metrics take a lock and
    walk their buckets in Python on every update, a few percent of a busy worker.
    """

    def __init__(self, buckets: tuple[float, ...]):
        self._bounds = buckets
        self._requests: dict[tuple[str, int], int] = {}
        self._latency: dict[str, list[int]] = {}  # per bucket, the last one is +Inf
        self._latency_sum: dict[str, float] = {}
        self._rows: dict[str, int] = {}

    def observe(self, kind: str, status: int, seconds: float, rows: int) -> None:
        key = (kind, status)
        self._requests[key] = self._requests.get(key, 0) + 1
        counts = self._latency.get(kind)
        if counts is None:
            counts = self._latency[kind] = [0] * (len(self._bounds) + 1)
            self._latency_sum[kind] = 0.0
        counts[bisect.bisect_left(self._bounds, seconds)] += 1  # buckets are "<= bound"
        self._latency_sum[kind] += seconds
        if rows:
            self._rows[kind] = self._rows.get(kind, 0) + rows

    def collect(self) -> Iterator[Metric]:
        """The three metric families, as a prometheus_client collector."""
        requests = CounterMetricFamily(
            "voip24h_requests",
            "Partner API requests by request type and HTTP status.",
            labels=["request_type", "status"],
        )
        for (kind, status), count in self._requests.items():
            requests.add_metric([kind, str(status)], count)
        latency = HistogramMetricFamily(
            "voip24h_request_duration_seconds",
            "Partner API request latency.",
            labels=["request_type"],
        )
        edges = [floatToGoString(bound) for bound in self._bounds] + ["+Inf"]
        for kind, counts in self._latency.items():
            cumulative = list(zip(edges, itertools.accumulate(counts), strict=True))
            latency.add_metric([kind], cumulative, self._latency_sum[kind])
        rows = CounterMetricFamily(
            "voip24h_rows_returned", "Records returned to partners.", labels=["request_type"]
        )
        for kind, count in self._rows.items():
            rows.add_metric([kind], count)
        return iter((requests, latency, rows))


class Metrics:
    """The Prometheus metrics of one app, in a registry of its own."""

    def __init__(self, request_types: tuple[str, ...]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._types = frozenset(request_types)
        r = self.registry
        self.requests = RequestStats(LATENCY_BUCKETS)
        r.register(self.requests)
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
        self.db_down = Gauge(
            "voip24h_db_outage_seconds",
            "How long the database has been unreachable (0 when it answers).",
            registry=r,
        )
        self.db_outages = Gauge(
            "voip24h_db_outages", "Database outages since the process started.", registry=r
        )
        self.db_down_total = Gauge(
            "voip24h_db_outage_seconds_total",
            "Time spent in database outages since the process started, in seconds.",
            registry=r,
        )
        self.db_outage_failed = Gauge(
            "voip24h_db_outage_failed_requests",
            "Requests failed with database_unavailable since the process started.",
            registry=r,
        )
        self.db_active = Gauge(
            "voip24h_db_calls_active",
            "Database calls running or waiting for a connection.",
            registry=r,
        )

    def watch_database(self, gate: Any) -> None:
        """Read the outage and waiting-line figures of ``gate`` (a GatedReader) live."""
        self.db_down.set_function(gate.outage.seconds)
        self.db_outages.set_function(lambda: gate.outage.outages)
        self.db_down_total.set_function(gate.outage.total_seconds)
        self.db_outage_failed.set_function(lambda: gate.outage.failed_total)
        self.db_active.set_function(lambda: gate.active)

    def label(self, request_type: str | None) -> str:
        """A bounded label: a known request type, else 'none' (attackers pick the text)."""
        return request_type if request_type in self._types else "none"

    def observe(self, info: RequestInfo) -> None:
        kind = self.label(info.request_type)
        self.requests.observe(kind, info.status, info.latency_ms / 1000, info.rows)
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

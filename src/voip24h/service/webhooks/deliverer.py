"""The deliverer: takes the lease, queues each endpoint's new events, and delivers them.

- One process delivers at a time: the one holding the ``deliverer`` lease row
  (db/queries/leases.py), renewed on every round; if it dies, another takes over once
  the lease expires.
- Each endpoint gets its events in sequence order: the oldest pending deliveries, at
  most ``webhook_max_in_flight`` at once, and never past an earlier one still waiting
  for its retry.
- Every attempt is a row of ``webhook_attempts``; a delivery's state, attempt count and
  next attempt are in ``webhook_deliveries``, written with the attempt in one
  transaction. A delivery sent but not yet recorded when the process dies is sent
  again: delivery is at least once, with the same ``webhook-id``.
- 410 disables the endpoint; so does failing every delivery for
  ``webhook_disable_after_days``. Both leave an audit entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from sqlalchemy import Engine

from voip24h.config import Settings
from voip24h.db.engine import make_engine
from voip24h.db.queries import audit as audit_queries
from voip24h.db.queries import leases
from voip24h.db.queries import webhooks as q
from voip24h.db.queries.events import EVENT_FIELDS, event_document
from voip24h.domain.netaddr import parse_networks
from voip24h.service.webhooks import sender
from voip24h.service.webhooks.endpoints import endpoint_scope, signing_secrets, utcnow
from voip24h.service.webhooks.metrics import DeliveryMetrics
from voip24h.service.webhooks.schedule import next_delay
from voip24h.service.webhooks.signing import signature_headers
from voip24h.service.webhooks.targets import TargetRefused, resolve

log = logging.getLogger("voip24h.webhooks")
LEASE = "deliverer"
PRUNE_EVERY = 3600.0  # seconds between retention runs
MAX_ENDPOINTS_AT_ONCE = 64
WINDOWS_PER_ROUND = 50  # windows of one endpoint per round, between lease renewals


def _now() -> datetime:
    """Now in UTC, naive (as the tables store it), with microseconds: retry delays in
    tests are fractions of a second."""
    return datetime.now(UTC).replace(tzinfo=None)


class Deliverer:
    """Delivers webhook events while it holds the lease; ``run`` until stopped."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine | None = None,
        metrics: DeliveryMetrics | None = None,
        holder: str | None = None,
        rng: random.Random | None = None,
    ):
        self.settings = settings
        self._engine = engine
        self.metrics = metrics or DeliveryMetrics()
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"
        self.rng = rng or random.Random()
        self.allow = parse_networks(settings.webhook_allow_cidrs)
        self.delays = settings.retry_delays
        self.ttl = timedelta(seconds=settings.webhook_lease_seconds)
        self.leader = False
        self._last_prune = float("-inf")

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.settings.database_url, must_exist=True)
        return self._engine

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Deliver until ``stop`` is set; a failing round is logged and retried."""
        stop = stop or asyncio.Event()
        failing = False
        async with sender.new_client() as client:
            while not stop.is_set():
                try:
                    busy = await self.round(client)
                except Exception:
                    if not failing:  # once per outage, not once a poll
                        log.exception("webhook deliverer round failed; retrying")
                    failing, busy = True, False
                else:
                    if failing:
                        log.warning("webhook deliverer rounds succeed again")
                    failing = False
                if not busy:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.settings.webhook_poll_seconds)
        if self.leader:
            await asyncio.to_thread(leases.release, self.engine, LEASE, self.holder)
            self.leader = False
            self.metrics.leader.set(0)

    async def round(self, client: httpx.AsyncClient) -> bool:
        """One round: take or renew the lease, queue new events, make the attempts due.
        True when an attempt was made (another round may have more to do at once)."""
        now = _now()
        if time.monotonic() - self._last_prune >= PRUNE_EVERY:  # with or without the lease:
            self._last_prune = time.monotonic()  # getEvents' retention needs no endpoint
            await asyncio.to_thread(self._prune)
        if not await asyncio.to_thread(self._lead, now):
            return False
        endpoints = await asyncio.to_thread(self._queue, now)
        limit = asyncio.Semaphore(MAX_ENDPOINTS_AT_ONCE)

        async def one(endpoint: dict[str, Any]) -> bool:
            async with limit:
                return await self._deliver(client, endpoint)

        done = await asyncio.gather(*(one(endpoint) for endpoint in endpoints))
        if any(done):
            await asyncio.to_thread(self._measure)
        return any(done)

    def _lead(self, now: datetime) -> bool:
        with self.engine.connect() as conn:
            wanted = q.any_deliverable(conn)
        if not wanted and not self.leader:
            return False  # nothing to deliver: no lease writes at all
        self.leader = leases.acquire(self.engine, LEASE, self.holder, now, self.ttl)
        self.metrics.leader.set(1 if self.leader else 0)
        return self.leader

    def _queue(self, now: datetime) -> list[dict[str, Any]]:
        with self.engine.begin() as conn:
            endpoints = q.deliverable_endpoints(conn)
            for endpoint in endpoints:
                q.queue_events(conn, endpoint, endpoint_scope(endpoint), now)
            self.metrics.queue_depth.set(q.queue_depth(conn))
        return endpoints

    def _measure(self) -> None:
        with self.engine.connect() as conn:
            self.metrics.queue_depth.set(q.queue_depth(conn))

    def _prune(self) -> None:
        before = utcnow() - timedelta(days=self.settings.event_retention_days)
        with self.engine.begin() as conn:
            gone = q.prune_before(conn, before)
        if gone:
            log.info(
                "pruned %d events older than %d days", gone, self.settings.event_retention_days
            )

    def _due(self, endpoint: dict[str, Any]) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            head = q.pending_head(conn, endpoint["id"], self.settings.webhook_max_in_flight)
        now = _now()
        due = []
        for delivery in head:
            if delivery["next_attempt_at"] > now:
                break  # an earlier event waits for its retry: later ones wait behind it
            due.append(delivery)
        return due

    async def _deliver(self, client: httpx.AsyncClient, endpoint: dict[str, Any]) -> bool:
        """Deliver the endpoint's due events, a window at a time, for up to
        WINDOWS_PER_ROUND windows; stop at the first failure (retries wait)."""
        worked = False
        for _ in range(WINDOWS_PER_ROUND):
            due = await asyncio.to_thread(self._due, endpoint)
            if not due:
                break
            try:
                target = await resolve(endpoint["url"], self.allow)
            except TargetRefused as exc:
                refused = sender.Outcome(None, False, error=str(exc))
                results = [(delivery, refused, 0.0) for delivery in due]
            else:
                results = await asyncio.gather(
                    *(self._send(client, target, endpoint, delivery) for delivery in due)
                )
            await asyncio.to_thread(self._record, endpoint, results)
            worked = True
            if not all(outcome.delivered for _, outcome, _ in results):
                break
        return worked

    async def _send(
        self,
        client: httpx.AsyncClient,
        target: Any,
        endpoint: dict[str, Any],
        delivery: dict[str, Any],
    ) -> tuple[dict[str, Any], sender.Outcome, float]:
        body = orjson.dumps(event_document([delivery[name] for name in EVENT_FIELDS]))
        at = utcnow()
        headers = signature_headers(signing_secrets(endpoint, at), delivery["id"], body, at)
        started = time.monotonic()
        outcome = await sender.send(client, target, headers, body)
        latency = time.monotonic() - started
        self.metrics.latency.observe(latency)
        return delivery, outcome, latency

    def _record(
        self, endpoint: dict[str, Any], results: list[tuple[dict[str, Any], sender.Outcome, float]]
    ) -> None:
        now = _now()
        failed = gone = False
        with self.engine.begin() as conn:
            for delivery, outcome, latency in results:
                attempts = int(delivery["attempts"]) + 1
                state, next_at = q.DELIVERED, now
                if outcome.delivered:
                    self.metrics.delivered.inc()
                else:
                    failed = True
                    self.metrics.failures.labels(endpoint["id"]).inc()
                    delay = None
                    if outcome.gone:
                        gone = True
                    else:
                        delay = next_delay(attempts, outcome.retry_after, self.rng, self.delays)
                    if delay is None:
                        state = q.FAILED
                    else:
                        state, next_at = q.PENDING, now + timedelta(seconds=delay)
                q.record_attempt(
                    conn,
                    delivery,
                    endpoint["id"],
                    now=now,
                    status=outcome.status,
                    error=outcome.error,
                    latency_ms=latency * 1000,
                    state=state,
                    next_at=next_at,
                )
            if gone:
                self._disable(conn, endpoint, "the receiver answered 410 Gone", now, 410)
            elif failed:
                since = endpoint["failing_since"]
                if since is None:
                    q.update_endpoint(conn, endpoint["id"], failing_since=now)
                    endpoint["failing_since"] = now
                elif now - since >= timedelta(days=self.settings.webhook_disable_after_days):
                    days = self.settings.webhook_disable_after_days
                    self._disable(conn, endpoint, f"every delivery failed for {days} days", now, 0)
            elif endpoint["failing_since"] is not None:
                q.update_endpoint(conn, endpoint["id"], failing_since=None)
                endpoint["failing_since"] = None

    def _disable(
        self, conn: Any, endpoint: dict[str, Any], reason: str, now: datetime, status: int
    ) -> None:
        q.update_endpoint(conn, endpoint["id"], enabled=False, disabled_reason=reason)
        q.fail_pending(conn, endpoint["id"], f"endpoint disabled: {reason}", now)
        params = {"endpointId": endpoint["id"], "url": endpoint["url"], "reason": reason}
        audit_queries.insert_many(
            conn,
            [
                {
                    "at": now,
                    "request_id": "",
                    "partner_id": endpoint["partner_id"],
                    "partner": endpoint["partner"],
                    "request_type": "webhookDisabled",
                    "params": orjson.dumps(params).decode(),
                    "rows_returned": 0,
                    "status": status,
                    "error_code": "webhook_disabled",
                    "latency_ms": 0.0,
                    "client": "deliverer",
                }
            ],
        )
        log.warning("webhook endpoint %s disabled: %s", endpoint["id"], reason)

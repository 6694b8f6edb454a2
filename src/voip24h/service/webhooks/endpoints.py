"""What partners (through the API) and operators (``voip24h webhook``) do with webhook
endpoints and the event feed: add, list, remove, test, rotate, getEvents, redeliver.

Database work runs on a synchronous engine in a worker thread: these requests are few,
and the writes need a transaction, which the read-only async readers do not offer.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Engine

from voip24h import errors
from voip24h.config import Settings
from voip24h.db.engine import make_engine
from voip24h.db.queries import events as event_queries
from voip24h.db.queries import partners as partner_queries
from voip24h.db.queries import webhooks as q
from voip24h.domain.netaddr import parse_networks
from voip24h.domain.partners import Scope
from voip24h.service.answers import scope_from_row
from voip24h.service.webhooks import sender
from voip24h.service.webhooks.signing import generate_secret, signature_headers
from voip24h.service.webhooks.targets import TargetRefused, resolve

MAX_ENDPOINTS = 10  # per partner
REDELIVER_MAX = 10_000


def utcnow() -> datetime:
    """Now, in UTC, to the second."""
    return datetime.now(UTC).replace(microsecond=0)


def _iso(at: datetime | None) -> str | None:
    if at is None:
        return None
    return at.replace(tzinfo=UTC, microsecond=0).isoformat().replace("+00:00", "Z")


def endpoint_document(row: dict[str, Any]) -> dict[str, Any]:
    """An endpoint as partners see it: never its secrets."""
    rotating = row["previous_secret"] is not None and (
        row["previous_until"] is not None and row["previous_until"] > utcnow().replace(tzinfo=None)
    )
    return {
        "id": row["id"],
        "url": row["url"],
        "eventTypes": [t for t in row["event_types"].split(",") if t]
        or list(event_queries.EVENT_TYPES),
        "users": [u for u in row["users"].split(",") if u],
        "enabled": bool(row["enabled"]),
        "disabledReason": row["disabled_reason"],
        "failingSince": _iso(row["failing_since"]),
        "rotating": rotating,
        "createdAt": _iso(row["created_at"]),
    }


def endpoint_scope(row: dict[str, Any]) -> Scope:
    """The scope of the endpoint's partner."""
    return scope_from_row(row["accountcodes"], row["extensions"])


def signing_secrets(row: dict[str, Any], now: datetime) -> list[str]:
    """The secrets that sign a message now: the current one, and the previous one while
    its overlap lasts."""
    found = [row["secret"]]
    until = row["previous_until"]
    if row["previous_secret"] and until is not None and until > now.replace(tzinfo=None):
        found.append(row["previous_secret"])
    return found


def parse_since(value: int | str) -> tuple[int | None, datetime | None]:
    """``since`` of webhookRedeliver: a sequence number, or an ISO 8601 time."""
    if isinstance(value, int):
        return value, None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise errors.InvalidField(
            "data.since must be a sequence number or a time like 2026-12-01T00:00:00Z."
        ) from None
    if at.tzinfo is not None:
        at = at.astimezone(UTC)
    return None, at.replace(tzinfo=None)


class Webhooks:
    """The endpoint and event-feed use cases on one database."""

    def __init__(self, settings: Settings, engine: Engine | None = None):
        self.settings = settings
        self._engine = engine
        self.allow = parse_networks(settings.webhook_allow_cidrs)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.settings.database_url, must_exist=True)
        return self._engine

    def close(self) -> None:
        """Close the engine's connections."""
        if self._engine is not None:
            self._engine.dispose()

    async def check_url(self, url: str) -> None:
        """Refuse a URL the deliverer would refuse (after DNS, with the operator's CIDRs)."""
        try:
            await resolve(url, self.allow)
        except TargetRefused as exc:
            raise errors.WebhookUrlRefused(str(exc)) from None

    # --- endpoints ---

    async def add(
        self,
        partner_id: int,
        scope: Scope,
        url: str,
        event_types: Sequence[str] = (),
        users: Sequence[str] = (),
    ) -> dict[str, Any]:
        """A new endpoint; the answer carries its secret, the only time it is shown."""
        for user in users:
            if not scope.permits_user(user):
                raise errors.UserNotPermitted(f"user {user[:40]!r} is not in the partner's scope.")
        await self.check_url(url)
        values: dict[str, Any] = {
            "id": "ep_" + secrets.token_hex(8),
            "partner_id": partner_id,
            "url": url,
            "secret": generate_secret(),
            "event_types": ",".join(dict.fromkeys(event_types)),
            "users": ",".join(dict.fromkeys(users)),
            "enabled": True,
            "disabled_reason": "",
            "created_at": utcnow().replace(tzinfo=None),
        }

        def run() -> dict[str, Any]:
            with self.engine.begin() as conn:
                if q.count_endpoints(conn, partner_id) >= MAX_ENDPOINTS:
                    raise errors.TooManyWebhooks(
                        f"A partner may have at most {MAX_ENDPOINTS} webhook endpoints."
                    )
                q.add_endpoint(conn, values)
                row = q.get_endpoint(conn, values["id"])
            assert row is not None
            return {**endpoint_document(row), "secret": values["secret"]}

        return await asyncio.to_thread(run)

    async def endpoints(self, partner_id: int | None) -> list[dict[str, Any]]:
        """The partner's endpoints (every endpoint when None), without secrets."""

        def run() -> list[dict[str, Any]]:
            with self.engine.connect() as conn:
                return q.list_endpoints(conn, partner_id)

        return await asyncio.to_thread(run)

    async def get(self, endpoint_id: str, partner_id: int | None) -> dict[str, Any]:
        """One endpoint row; WebhookNotFound when it is not the partner's."""

        def run() -> dict[str, Any] | None:
            with self.engine.connect() as conn:
                return q.get_endpoint(conn, endpoint_id, partner_id)

        row = await asyncio.to_thread(run)
        if row is None:
            raise errors.WebhookNotFound()
        return row

    async def remove(self, endpoint_id: str, partner_id: int | None) -> dict[str, Any]:
        """Delete an endpoint with its queue."""

        def run() -> bool:
            with self.engine.begin() as conn:
                return q.remove_endpoint(conn, endpoint_id, partner_id)

        if not await asyncio.to_thread(run):
            raise errors.WebhookNotFound()
        return {"id": endpoint_id, "removed": True}

    async def rotate(
        self, endpoint_id: str, partner_id: int | None, overlap: timedelta
    ) -> dict[str, Any]:
        """A new secret (shown once); the old one keeps signing for ``overlap``."""
        row = await self.get(endpoint_id, partner_id)
        new, until = generate_secret(), utcnow() + overlap

        def run() -> None:
            with self.engine.begin() as conn:
                q.update_endpoint(
                    conn,
                    endpoint_id,
                    secret=new,
                    previous_secret=row["secret"],
                    previous_until=until.replace(tzinfo=None),
                )

        await asyncio.to_thread(run)
        return {"id": endpoint_id, "secret": new, "previousSecretValidUntil": _iso(until)}

    async def test(self, endpoint_id: str, partner_id: int | None) -> dict[str, Any]:
        """Send a signed ``webhook.test`` event now; how the receiver answered."""
        row = await self.get(endpoint_id, partner_id)
        now = utcnow()
        event_id = event_queries.new_event_id()
        body = orjson.dumps(
            {"id": event_id, "type": "webhook.test", "occurredAt": _iso(now), "data": {}}
        )
        try:
            target = await resolve(row["url"], self.allow)
        except TargetRefused as exc:
            return {"id": endpoint_id, "delivered": False, "status": None, "error": str(exc)}
        headers = signature_headers(signing_secrets(row, now), event_id, body, now)
        async with sender.new_client() as client:
            outcome = await sender.send(client, target, headers, body)
        return {
            "id": endpoint_id,
            "delivered": outcome.delivered,
            "status": outcome.status,
            "error": outcome.error,
        }

    async def partner(self, name: str) -> tuple[int, Scope]:
        """The id and scope of the partner named ``name`` (operators); WebhookNotFound
        says there is no such partner."""

        def run() -> dict[str, Any] | None:
            with self.engine.connect() as conn:
                return partner_queries.find(conn, name)

        row = await asyncio.to_thread(run)
        if row is None:
            raise errors.WebhookNotFound(f"There is no partner named {name!r}.")
        return int(row["id"]), scope_from_row(row["accountcodes"], row["extensions"])

    async def attempts(self, endpoint_id: str | None, limit: int) -> list[dict[str, Any]]:
        """The newest delivery attempts, of one endpoint or all."""

        def run() -> list[dict[str, Any]]:
            with self.engine.connect() as conn:
                return q.attempts(conn, endpoint_id, limit)

        return await asyncio.to_thread(run)

    # --- the event feed ---

    async def events(
        self, scope: Scope, cursor: int, limit: int
    ) -> tuple[list[dict[str, Any]], int]:
        """The partner's events after ``cursor`` and the cursor to continue from."""

        def run() -> list[dict[str, Any]]:
            with self.engine.connect() as conn:
                return event_queries.events_for_partner(conn, scope, cursor, limit)

        found = await asyncio.to_thread(run)
        return found, (found[-1]["sequence"] if found else cursor)

    async def redeliver(
        self,
        endpoint_id: str,
        partner_id: int | None,
        event_id: str | None,
        since: int | str | None,
    ) -> dict[str, Any]:
        """Queue past events for the endpoint again (enabling it again if it was
        disabled): one event by id, or every event after a sequence or since a time."""
        if (event_id is None) == (since is None):
            raise errors.InvalidField("Send data.eventId or data.since (one of them).")
        row = await self.get(endpoint_id, partner_id)
        scope = endpoint_scope(row)
        after, at = parse_since(since) if since is not None else (None, None)

        def run() -> int:
            with self.engine.begin() as conn:
                seqs = q.event_seqs(
                    conn, scope, event_id=event_id, after_seq=after, since=at, limit=REDELIVER_MAX
                )
                if event_id is not None and not seqs:
                    raise errors.EventNotFound()
                q.requeue(conn, endpoint_id, seqs, utcnow())
                q.update_endpoint(
                    conn, endpoint_id, enabled=True, disabled_reason="", failing_since=None
                )
                return len(seqs)

        return {"id": endpoint_id, "queued": await asyncio.to_thread(run)}

    def prune(self, now: datetime | None = None) -> int:
        """Retention: delete events older than event_retention_days; how many."""
        before = (now or utcnow()) - timedelta(days=self.settings.event_retention_days)
        with self.engine.begin() as conn:
            return q.prune_before(conn, before)

"""What a request does once parsed: who the partner is, and which records it gets."""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from voip24h import errors
from voip24h.db.queries import partners as partner_queries
from voip24h.db.queries import records as record_queries
from voip24h.db.reader import Reader
from voip24h.partners import Scope, hash_secret, parse_extensions
from voip24h.protocol import RecordQuery
from voip24h.records import as_datetime


@dataclass(frozen=True)
class Partner:
    id: int
    name: str
    scope: Scope
    # Per-partner rate limits; None means the server-wide default (issue 5).
    rate_per_second: float | None = None
    rows_per_minute: int | None = None


def scope_from_row(accountcodes: str, extensions: str) -> Scope:
    codes = frozenset(code for code in accountcodes.split(",") if code)
    return Scope(codes, parse_extensions(extensions) if extensions else parse_extensions())


class PartnerDirectory:
    """Checks secrets against stored hashes, with a short cache for the hot path."""

    def __init__(self, reader: Reader, cache_seconds: float):
        self._reader = reader
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Partner, float | None]] = {}

    async def authenticate(self, secret: str | None) -> Partner:
        """The partner holding ``secret``; InvalidSecret for unknown, wrong, revoked, expired."""
        if not secret:
            raise errors.MissingSecret()
        digest = hash_secret(secret)
        now = time.time()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            _, partner, expires = cached
            if expires is None or expires > now:
                return partner
        partner_or_none, expires = await self._lookup(digest, now)
        if partner_or_none is None:
            self._cache.pop(digest, None)
            raise errors.InvalidSecret()
        if self._cache_seconds > 0:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now + self._cache_seconds, partner_or_none, expires)
        return partner_or_none

    async def _lookup(self, digest: str, now: float) -> tuple[Partner | None, float | None]:
        statement = self._reader.prepare(("auth",), partner_queries.select_by_secret_hash)
        rows = await self._reader.fetch(statement, {"secret_hash": digest})
        if not rows:
            return None, None
        row = rows[0]
        (pid, name, accountcodes, extensions, revoked, expires_at, secret_revoked, stored) = row[:8]
        rate, rows_limit = row[8], row[9]
        # The row was found by its hash; compare again in constant time all the same.
        if not hmac.compare_digest(stored, digest) or revoked or secret_revoked:
            return None, None
        expires = _epoch(expires_at)
        if expires is not None and expires <= now:
            return None, None
        scope = scope_from_row(accountcodes, extensions)
        rate = None if rate is None else float(rate)
        rows_limit = None if rows_limit is None else int(rows_limit)
        return Partner(int(pid), name, scope, rate, rows_limit), expires


def _epoch(value: Any) -> float | None:
    """Stored UTC datetimes (naive) as epoch seconds."""
    if value is None:
        return None
    moment = as_datetime(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def utcnow() -> datetime:
    """Naive UTC now, the form every stored admin timestamp uses."""
    return datetime.now(UTC).replace(tzinfo=None)


class RecordService:
    """Reads records for a partner; its scope is part of the SQL itself."""

    def __init__(self, reader: Reader, max_records: int):
        self._reader = reader
        self._max = max_records

    async def find(self, partner: Partner, query: RecordQuery) -> list[Any]:
        if query.user is not None and not partner.scope.permits_user(query.user):
            raise errors.UserNotPermitted()
        by_user, by_window = query.user is not None, query.window is not None
        statement = self._reader.prepare(
            ("records", partner.scope, by_user, by_window),
            lambda: record_queries.select_records(
                partner.scope, by_user=by_user, by_window=by_window
            ),
        )
        params: dict[str, Any] = {"limit": self._max + 1}
        if by_user:
            params["user"] = query.user
        if query.window is not None:
            params["start"], params["end"] = query.window.start, query.window.end
        rows = await self._reader.fetch(statement, params)
        if len(rows) > self._max:
            raise errors.ResultTooLarge(
                f"More than {self._max} records match; narrow the date range or page "
                "through the results."
            )
        return rows

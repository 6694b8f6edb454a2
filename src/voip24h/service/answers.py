"""What a request does once parsed: who the partner is, and which records it gets."""

from __future__ import annotations

import hmac
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from voip24h import errors
from voip24h.config import Settings
from voip24h.db.drivers import Reader, Statement
from voip24h.db.queries import call_records as record_queries
from voip24h.db.queries import partners as partner_queries
from voip24h.domain.mapping import as_datetime
from voip24h.domain.partners import Scope, hash_secret, parse_extensions
from voip24h.domain.stats import fold_stats
from voip24h.service.dial import DialQuery, DialService
from voip24h.service.recordings import RecordingService
from voip24h.service.results import Export, Page, RenderedRecords, Result, Stats
from voip24h.service.shapes import columns_for, shape_of
from voip24h.service.translate import NO_FILTERS, Query, RecordingQuery, RecordQuery, StatsQuery
from voip24h.wire import spool
from voip24h.wire.cursor import Cursor
from voip24h.wire.protocol import RECORD_FIELDS


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


class AnswerService:
    """Reads records for a partner; its scope is part of the SQL itself.

    ``answer`` dispatches every request type; a seed-shaped request takes ``find``,
    the seed's own path, so its answer is unchanged byte for byte.
    """

    def __init__(self, reader: Reader, max_records: int, settings: Settings | None = None):
        self._reader = reader
        self._max = max_records
        self._settings = settings or Settings()
        self.recordings = RecordingService(reader, self._settings)
        self.dials: DialService | None = None  # makeDial; set by the server (issue 21)

    async def answer(self, partner: Partner, query: Query) -> Result:
        """The result of any request type, for ``partner``."""
        if isinstance(query, RecordingQuery):
            return await self.recordings.link(partner, query)
        if isinstance(query, DialQuery):
            if self.dials is None:
                raise errors.PbxUnavailable("makeDial needs the PBX link: ami_url is not set.")
            return await self.dials.dial(partner.id, partner.scope, query)
        if isinstance(query, StatsQuery):
            return await self._stats(partner, query)
        if query.format != "json":
            return self._export(partner, query)
        if is_seed_shaped(query):
            return Page(await self.find(partner, query), (), seed=True)
        return await self._page(partner, query)

    async def find(self, partner: Partner, query: RecordQuery) -> Sequence[Any]:
        """The seed's six fields of every matching record; ResultTooLarge over the maximum.

        Where the database renders JSON (SQLite), the records come back as the wire's
        JSON array already (RenderedRecords); otherwise as rows.
        """
        self._check_user(partner, query.user)
        scope, by_user, by_window = partner.scope, query.user is not None, query.window is not None
        # Up to SPOOL_AFTER records are read at once; a larger answer is read again in
        # chunks and rendered to a spooled file, so memory stays bounded (spool.py).
        small = min(self._max, spool.SPOOL_AFTER)
        params: dict[str, Any] = {"limit": small + 1}
        if by_user:
            params["user"] = query.user
        if query.window is not None:
            params["start"], params["end"] = query.window.start, query.window.end
        found = await self._read_at_once(scope, by_user, by_window, params, small)
        if found is not None:
            return found
        if small == self._max:
            raise errors.ResultTooLarge(
                f"More than {self._max} records match; narrow the date range or page "
                "through the results."
            )
        params["limit"] = self._max + 1
        statement = self._records(scope, by_user, by_window)
        chunks = self._reader.stream(statement, params, spool.CHUNK_ROWS)
        return await spool.spool(chunks, self._max)

    def _records(self, scope: Scope, by_user: bool, by_window: bool) -> Statement:
        return self._reader.prepare(
            ("records", scope, by_user, by_window),
            lambda: record_queries.select_records(scope, by_user=by_user, by_window=by_window),
        )

    async def _read_at_once(
        self, scope: Scope, by_user: bool, by_window: bool, params: dict[str, Any], most: int
    ) -> Sequence[Any] | None:
        """Every matching record if there are at most ``most`` of them, else None."""
        if not self._reader.renders_json:
            rows = await self._reader.fetch(self._records(scope, by_user, by_window), params)
            return rows if len(rows) <= most else None
        statement = self._reader.prepare(
            ("records-json", scope, by_user, by_window),
            lambda: record_queries.select_records_json(
                scope, by_user=by_user, by_window=by_window, names=RECORD_FIELDS
            ),
        )
        ((count, array),) = await self._reader.fetch(statement, params)
        return RenderedRecords(count, bytes(array)) if count <= most else None

    @staticmethod
    def _check_user(partner: Partner, user: str | None) -> None:
        if user is not None and not partner.scope.permits_user(user):
            raise errors.UserNotPermitted()

    async def _page(self, partner: Partner, query: RecordQuery) -> Page:
        self._check_user(partner, query.user)
        shape, params = shape_of(query)
        columns = columns_for(query.fields)
        statement = self._reader.prepare(
            ("page", partner.scope, shape, query.fields),
            lambda: record_queries.select_shaped(partner.scope, shape, columns),
        )
        limit = query.limit if query.limit is not None else self._max
        rows = await self._reader.fetch(statement, {**params, "limit": limit + 1})
        if query.call is not None and not rows:
            raise errors.CallNotFound()
        if len(rows) <= limit:
            return Page(rows, query.fields, paged=query.limit is not None)
        if query.limit is None:
            raise errors.ResultTooLarge(
                f"More than {self._max} records match; narrow the date range or page "
                "through the results with limit and cursor."
            )
        last = rows[limit - 1]
        after = Cursor(int(last[-3]), str(last[-2]), str(last[-1]))
        return Page(rows[:limit], query.fields, paged=True, next_cursor=after.encode())

    def _export(self, partner: Partner, query: RecordQuery) -> Export:
        self._check_user(partner, query.user)
        shape, params = shape_of(query)
        columns = columns_for(query.fields)[: -len(record_queries.KEY_COLUMNS)]
        statement = self._reader.prepare(
            ("export", partner.scope, shape, query.fields),
            lambda: record_queries.select_unlimited(partner.scope, shape, columns),
        )
        chunks = self._reader.stream(statement, params, self._settings.export_chunk_rows)
        return Export(chunks, query.fields, query.format)

    async def _stats(self, partner: Partner, query: StatsQuery) -> Stats:
        self._check_user(partner, query.user)
        shape, params = shape_of(query)
        statement = self._reader.prepare(
            ("stats", partner.scope, shape, query.hourly),
            lambda: record_queries.select_stats(partner.scope, shape, hourly=query.hourly),
        )
        rows = await self._reader.fetch(statement, {**params, "limit": self._max + 1})
        if len(rows) > self._max:
            raise errors.ResultTooLarge(
                "The statistics have too many groups; narrow the date range, group by day "
                "or ask for one user."
            )
        return Stats(fold_stats(rows))


def is_seed_shaped(query: RecordQuery) -> bool:
    """True for a request with none of the opt-in parts: the seed's own answer."""
    return (
        query.call is None
        and (query.filters is NO_FILTERS or query.filters == NO_FILTERS)
        and not query.fields
        and query.limit is None
        and query.format == "json"
    )

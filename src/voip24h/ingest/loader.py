"""Writing CDR rows: batches that insert new rows and rebuild their calls' records atomically."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from itertools import islice
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine

from voip24h.config import Settings
from voip24h.db import bulk, faults, indexes, migrate
from voip24h.db.queries import call_records as record_queries
from voip24h.db.queries import cdr as cdr_queries
from voip24h.db.queries import events as event_queries
from voip24h.db.queries import meta as meta_queries
from voip24h.db.queries.call_records import record_values
from voip24h.db.schema import cdr
from voip24h.domain import conversations
from voip24h.domain.conversations import Chain
from voip24h.domain.mapping import ExtensionMatcher, group_by_callid, records_for_call
from voip24h.ingest import outbox
from voip24h.ingest.linking import ChainLinker

INDEX_KEY = "records_built_with"
# Records built by an earlier version of the rules (docs/mapping.md) need a reindex.
# 3: callId is the conversation (linkedid, else uniqueid, else derived).
MAPPING_VERSION = 3


class SchemaOutOfDate(RuntimeError):
    """The database needs ``voip24h db upgrade`` first."""


class IndexOutOfDate(RuntimeError):
    """Records were built with other mapping settings; ``voip24h db reindex`` fixes it."""


@dataclass
class EncodedBatch:
    """A batch as the writer takes it: ``cdr`` insert values (``bulk.encode``) and the
    records of its calls (``record_values`` tuples, callId first, in callId order)."""

    rows: list[tuple[Any, ...]]
    records: list[tuple[Any, ...]]
    untenanted: int = 0
    chains: list[Chain] = field(default_factory=list)
    # Where each row came from, parallel to ``rows`` when known: (line, raw text), for
    # the reject of a row the database refuses (load_or_split).
    lines: list[tuple[int, bytes]] = field(default_factory=list)
    # The events' payloads of ``records``, in step (events on): JSON made by the worker.
    payloads: list[str] | None = None


@dataclass(frozen=True)
class Refusal:
    """A row the database refused for its values: its line, its raw text and why."""

    line: int
    raw: bytes
    reason: str


@dataclass
class LoadStats:
    """Rows inserted, duplicate rows skipped, call records the table gained, and rows
    whose callee side had no tenant (no ``peeraccount``, no ``accountcode``)."""

    inserted: int = 0
    duplicates: int = 0
    records: int = 0
    untenanted: int = 0
    events: int = 0

    def add(self, other: LoadStats) -> None:
        self.inserted += other.inserted
        self.duplicates += other.duplicates
        self.records += other.records
        self.untenanted += other.untenanted
        self.events += other.events


def mapping_fingerprint(settings: Settings) -> str:
    """What the derived records depend on besides the rows themselves."""
    return (
        f"timezone={settings.timezone};pattern={settings.extension_pattern};"
        f"extensions={settings.extensions};mapping={MAPPING_VERSION}"
    )


class Loader:
    """Loads normalized ``cdr`` rows and keeps ``call_records`` in step with them."""

    def __init__(self, engine: Engine, settings: Settings):
        self.engine = engine
        self.settings = settings
        self.zone: ZoneInfo = settings.zone
        self.matcher = ExtensionMatcher(settings.extension_pattern, settings.extensions)
        # Whether the unique row-key index is there (an initial load builds it at its
        # end, db/indexes.py); None: read with each batch, as another process may defer it.
        self.keys_indexed: bool | None = None
        self.linker = ChainLinker(self.zone)
        # Whether records created or changed append events (the outbox) in the same
        # transaction as the records themselves.
        self.events = settings.events_enabled

    def check_ready(self) -> None:
        """Refuse to write into an old schema or records built with other settings."""
        if not migrate.is_current(self.engine):
            raise SchemaOutOfDate(migrate.NOT_CURRENT)
        with self.engine.begin() as conn:
            built = meta_queries.get(conn, INDEX_KEY)
            wanted = mapping_fingerprint(self.settings)
            if built is None:
                meta_queries.put(conn, INDEX_KEY, wanted)
            elif built != wanted:
                raise IndexOutOfDate(
                    f"records were built with {built}, settings now say {wanted}: "
                    "run `voip24h db reindex`"
                )

    def load_batch(self, rows: list[dict[str, Any]]) -> LoadStats:
        """Insert one batch and rebuild the records of its calls, in one transaction."""
        return self.load_encoded(self.encode_batch(rows))

    def load_encoded(self, batch: EncodedBatch) -> LoadStats:
        """``load_batch`` of a batch ``encode_batch`` made (by the import's parsing worker)."""
        with self.engine.begin() as conn:
            return self.load_encoded_in(conn, batch)

    def encode_batch(
        self, rows: list[dict[str, Any]], lines: list[tuple[int, bytes]] | None = None
    ) -> EncodedBatch:
        """A batch ready to write: its rows as insert values, and its calls' records
        (``lines``: where each row came from, kept for the rejects).

        The records are those of each call from the batch's rows alone (duplicate row
        keys dropped, the first kept, in mapping order): exactly the records of a call
        none of whose rows were loaded before. Calls that continue earlier rows are
        rebuilt from the table when the batch is loaded.
        """
        unique: dict[str, dict[str, Any]] = {}
        for row in rows:
            unique.setdefault(row["row_key"], row)
        unnamed = []
        for row in rows:
            if "callid" not in row:  # rows built by hand; normalized rows have one
                row["callid"] = conversations.conversation_of(row)
            if not row["callid"]:  # no linkedid, no uniqueid in the source
                unnamed.append(row)
        chains = conversations.link(unnamed, self.zone)
        ordered: list[dict[str, Any]] = sorted(unique.values(), key=_mapping_order)
        records = [
            record_values(rec)
            for call in group_by_callid(ordered).values()
            for rec in records_for_call(call, self.matcher, self.zone)
        ]
        of_channel = self.matcher.of_channel
        untenanted = sum(
            1
            for row in ordered
            if not row.get("peeraccount")
            and not row["accountcode"]
            and of_channel(row["dstchannel"])
        )
        payloads = [event_queries.values_payload(v) for v in records] if self.events else None
        encoded = bulk.encode(self.engine.dialect, cdr, rows)
        return EncodedBatch(encoded, records, untenanted, chains, list(lines or ()), payloads)

    def load_or_split(
        self, batch: EncodedBatch, also: Callable[[Connection], None] | None = None
    ) -> tuple[LoadStats, list[Refusal]]:
        """Load a batch in one transaction (with ``also(conn)``, e.g. a checkpoint); if the
        database refuses it for its data (db/faults.py), split it until the refused rows
        are found: those are returned, every other row is loaded.

        The parts are loaded in transactions of their own, then ``also`` in a last one;
        a crash between them leaves rows whose re-reading is skipped by their row keys.
        A full disk or an outage is raised as it is, whatever the part.
        """
        try:
            with self.engine.begin() as conn:
                stats = self.load_encoded_in(conn, batch)
                if also is not None:
                    also(conn)
            return stats, []
        except Exception as exc:
            if faults.kind(exc) != "data" or not batch.rows:
                raise
        stats = LoadStats(untenanted=batch.untenanted)
        refused: list[tuple[int, str]] = []
        parts = [list(range(len(batch.rows)))]
        while parts:
            part = parts.pop()
            try:
                with self.engine.begin() as conn:
                    stats.add(self._load_part(conn, [batch.rows[i] for i in part]))
            except Exception as exc:
                if faults.kind(exc) != "data":
                    raise
                if len(part) == 1:
                    refused.append((part[0], faults.reason(exc)))
                else:  # the first half is tried first (popped last)
                    middle = len(part) // 2
                    parts += [part[middle:], part[:middle]]
        if also is not None:
            with self.engine.begin() as conn:
                also(conn)
        origins = batch.lines
        return stats, [
            Refusal(*(origins[i] if i < len(origins) else (0, b"")), why)
            for i, why in sorted(refused)
        ]

    def _load_part(self, conn: Connection, rows: list[tuple[Any, ...]]) -> LoadStats:
        """Insert some encoded rows; their calls' records are rebuilt from the table.

        (The callids derived from a channel are the batch's own here: a split batch is not
        joined to stored conversations of the same channel.)"""
        keys_indexed = self.keys_indexed
        if keys_indexed is None:
            keys_indexed = indexes.keys_indexed(conn)
        new = cdr_queries.insert_encoded(conn, rows, keys_indexed=keys_indexed)
        touched = list(dict.fromkeys(row[cdr_queries.CALLID_AT] for row in new))
        events: list[tuple[str, outbox.Record]] = []
        written = self.rebuild_calls(conn, touched, events) if touched else 0
        stats = LoadStats(inserted=len(new), duplicates=len(rows) - len(new), records=written)
        if self.events and events:
            stats.events = event_queries.append_events(conn, events)
        return stats

    def load_batch_in(self, conn: Connection, rows: list[dict[str, Any]]) -> LoadStats:
        """Insert one batch and rebuild its calls' records on ``conn`` (the caller commits)."""
        return self.load_encoded_in(conn, self.encode_batch(rows))

    def load_encoded_in(self, conn: Connection, batch: EncodedBatch) -> LoadStats:
        """``load_batch_in`` of an encoded batch."""
        at = cdr_queries.CALLID_AT
        keys_indexed = self.keys_indexed
        if keys_indexed is None:
            keys_indexed = indexes.keys_indexed(conn)
        # Conversations derived from a channel may continue stored ones (ingest/linking.py).
        rows, linked = self.linker.link(conn, batch.chains, batch.rows, indexed=keys_indexed)
        callids = list(dict.fromkeys(row[at] for row in rows))
        # Calls with rows from earlier batches are rebuilt from the table; the
        # others have all their rows in this batch, and their records ready.
        known = cdr_queries.known_callids(conn, callids)
        new = cdr_queries.insert_encoded(conn, rows, known, keys_indexed=keys_indexed)
        stats = LoadStats(
            inserted=len(new), duplicates=len(rows) - len(new), untenanted=batch.untenanted
        )
        values = batch.records
        payloads = batch.payloads
        events: list[tuple[str, outbox.Record]] = []
        keep: set[str] | None = None
        if known or linked:  # records of calls with no row in the table before this batch
            touched = list(dict.fromkeys(row[at] for row in new))
            stored = [u for u in touched if u in known or u in linked]
            stored += sorted(linked.difference(stored))
            if stored:
                stats.records += self.rebuild_calls(conn, stored, events)
            keep = set(touched).difference(stored)
        elif len(new) < len(batch.rows):  # duplicates within the batch: their calls only
            keep = {row[at] for row in new}
        if keep is not None:
            chosen = [n for n, v in enumerate(values) if v[0] in keep]
            values = [values[n] for n in chosen]
            payloads = None if payloads is None else [payloads[n] for n in chosen]
        stats.records += record_queries.insert_record_values(conn, values)
        if self.events:
            events.extend(outbox.created_from_values(values, payloads))
            stats.events = event_queries.append_events(conn, events)
        return stats

    def rebuild_calls(
        self,
        conn: Connection,
        callids: list[str],
        events: list[tuple[str, outbox.Record]] | None = None,
    ) -> int:
        """Replace the records of ``callids`` by those their rows in the table give;
        the events this makes (created, updated) are added to ``events`` when given."""
        rows = cdr_queries.rows_of_calls(conn, callids)
        records = [
            rec
            for rows in group_by_callid(rows).values()
            for rec in records_for_call(rows, self.matcher, self.zone)
        ]
        before = record_queries.records_of_calls(conn, callids) if self.events else []
        gained = record_queries.replace_records(conn, callids, records)
        if self.events and events is not None:
            after = record_queries.value_dicts([record_queries.record_values(r) for r in records])
            events.extend(outbox.changes(before, after))
        return gained

    def load(
        self,
        rows: Iterable[dict[str, Any]],
        batch_size: int = 5000,
        progress: Callable[[LoadStats], None] | None = None,
    ) -> LoadStats:
        """Load rows in atomic batches; ``progress`` is called after each batch."""
        total = LoadStats()
        for batch in batched(rows, batch_size):
            total.add(self.load_batch(batch))
            if progress:
                progress(total)
        return total

    def reindex(
        self, progress: Callable[[int, int], None] | None = None, batch_size: int = 5000
    ) -> int:
        """Rebuild every record from the ``cdr`` table in one transaction.

        Readers keep seeing the old records until the new ones are committed.
        ``progress(rows_done, records_written)`` is called after each batch.
        """
        written = done = 0
        with self.engine.begin() as conn:
            record_queries.delete_all(conn)
            pending: list[Any] = []
            current: list[dict[str, Any]] = []
            current_id: str | None = None
            # MySQL drivers cannot write on a connection that is streaming a result.
            separate = conn.dialect.name == "mysql"
            with self.engine.connect() if separate else nullcontext(conn) as reader:
                for row in cdr_queries.iter_all_rows(reader, batch_size):
                    done += 1
                    if row["callid"] != current_id and current:
                        pending.extend(records_for_call(current, self.matcher, self.zone))
                        current = []
                    current_id = row["callid"]
                    current.append(row)
                    if len(pending) >= batch_size:
                        written += record_queries.insert_records(conn, pending)
                        pending = []
                        if progress:
                            progress(done, written)
            if current:
                pending.extend(records_for_call(current, self.matcher, self.zone))
            written += record_queries.insert_records(conn, pending)
            meta_queries.put(conn, INDEX_KEY, mapping_fingerprint(self.settings))
        if progress:
            progress(done, written)
        return written


def _mapping_order(row: dict[str, Any]) -> tuple[Any, ...]:
    """The order rows_of_calls reads rows in: callid, calldate, sequence (NULL first)."""
    sequence = row.get("sequence")
    return (row["callid"], row["calldate"], sequence is not None, sequence or 0)


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch

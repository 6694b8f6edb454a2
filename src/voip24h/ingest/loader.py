"""Writing CDR rows: batches that insert new rows and rebuild their calls' records atomically."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from itertools import islice
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine

from voip24h.config import Settings
from voip24h.db import bulk, indexes, migrate
from voip24h.db.queries import call_records as record_queries
from voip24h.db.queries import cdr as cdr_queries
from voip24h.db.queries import events as event_queries
from voip24h.db.queries import meta as meta_queries
from voip24h.db.queries.call_records import record_values
from voip24h.db.schema import cdr
from voip24h.domain.mapping import ExtensionMatcher, group_by_uniqueid, records_for_call
from voip24h.ingest import outbox

INDEX_KEY = "records_built_with"
# Records built by an earlier version of the rules (docs/mapping.md) need a reindex.
MAPPING_VERSION = 2


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
    # The events' payloads of ``records``, in step (events on): JSON made by the worker.
    payloads: list[str] | None = None


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

    def encode_batch(self, rows: list[dict[str, Any]]) -> EncodedBatch:
        """A batch ready to write: its rows as insert values, and its calls' records.

        The records are those of each call from the batch's rows alone (duplicate row
        keys dropped, the first kept, in mapping order): exactly the records of a call
        none of whose rows were loaded before. Calls that continue earlier rows are
        rebuilt from the table when the batch is loaded.
        """
        unique: dict[str, dict[str, Any]] = {}
        for row in rows:
            unique.setdefault(row["row_key"], row)
        ordered: list[dict[str, Any]] = sorted(unique.values(), key=_mapping_order)
        records = [
            record_values(rec)
            for call in group_by_uniqueid(ordered).values()
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
        return EncodedBatch(encoded, records, untenanted, payloads)

    def load_batch_in(self, conn: Connection, rows: list[dict[str, Any]]) -> LoadStats:
        """Insert one batch and rebuild its calls' records on ``conn`` (the caller commits)."""
        return self.load_encoded_in(conn, self.encode_batch(rows))

    def load_encoded_in(self, conn: Connection, batch: EncodedBatch) -> LoadStats:
        """``load_batch_in`` of an encoded batch."""
        at = cdr_queries.UNIQUEID_AT
        uniqueids = list(dict.fromkeys(row[at] for row in batch.rows))
        # Calls with rows from earlier batches are rebuilt from the table; the
        # others have all their rows in this batch, and their records ready.
        known = cdr_queries.known_uniqueids(conn, uniqueids)
        keys_indexed = self.keys_indexed
        if keys_indexed is None:
            keys_indexed = indexes.keys_indexed(conn)
        new = cdr_queries.insert_encoded(conn, batch.rows, known, keys_indexed=keys_indexed)
        stats = LoadStats(
            inserted=len(new), duplicates=len(batch.rows) - len(new), untenanted=batch.untenanted
        )
        values = batch.records
        payloads = batch.payloads
        events: list[tuple[str, outbox.Record]] = []
        keep: set[str] | None = None
        if known:  # records of calls with no row in the table before this batch
            touched = list(dict.fromkeys(row[at] for row in new))
            stored = [u for u in touched if u in known]
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
        uniqueids: list[str],
        events: list[tuple[str, outbox.Record]] | None = None,
    ) -> int:
        """Replace the records of ``uniqueids`` by those their rows in the table give;
        the events this makes (created, updated) are added to ``events`` when given."""
        rows = cdr_queries.rows_of_calls(conn, uniqueids)
        records = [
            rec
            for rows in group_by_uniqueid(rows).values()
            for rec in records_for_call(rows, self.matcher, self.zone)
        ]
        before = record_queries.records_of_calls(conn, uniqueids) if self.events else []
        gained = record_queries.replace_records(conn, uniqueids, records)
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
                    if row["uniqueid"] != current_id and current:
                        pending.extend(records_for_call(current, self.matcher, self.zone))
                        current = []
                    current_id = row["uniqueid"]
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
    """The order rows_of_calls reads rows in: uniqueid, calldate, sequence (NULL first)."""
    sequence = row.get("sequence")
    return (row["uniqueid"], row["calldate"], sequence is not None, sequence or 0)


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch

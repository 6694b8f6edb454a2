"""Tables, in portable types. Migrations under db/migrations create and upgrade them.

``cdr`` is the source of truth, with Asterisk's column names (FreePBX's
``calldate`` layout plus Master.csv's ``answer``/``end``). ``call_records`` is
derived from it by records.py and can always be rebuilt (``voip24h db reindex``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()
_MYSQL: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}
Id = BigInteger().with_variant(Integer(), "sqlite")

cdr = Table(
    "cdr",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    # Identity of a row for idempotent loading: (uniqueid, sequence) where the
    # source has a sequence, else a digest of the row's content (cdr.row_key). Unique
    # through ux_cdr_row_key: an index, not a constraint, so that an initial load can
    # build it at its end (db/indexes.py).
    Column("row_key", String(64), nullable=False),
    Column("calldate", DateTime, nullable=False),
    Column("answer", DateTime),
    Column("end", DateTime),
    Column("clid", String(255), nullable=False, default=""),
    Column("src", String(80), nullable=False, default=""),
    Column("dst", String(80), nullable=False, default=""),
    Column("dcontext", String(80), nullable=False, default=""),
    Column("channel", String(255), nullable=False, default=""),
    Column("dstchannel", String(255), nullable=False, default=""),
    Column("lastapp", String(80), nullable=False, default=""),
    Column("lastdata", String(255), nullable=False, default=""),
    Column("duration", Integer, nullable=False, default=0),
    Column("billsec", Integer, nullable=False, default=0),
    Column("disposition", String(45), nullable=False, default=""),
    Column("amaflags", Integer, nullable=False, default=0),
    Column("accountcode", String(80), nullable=False, default=""),
    Column("uniqueid", String(150), nullable=False, default=""),
    Column("userfield", String(255), nullable=False, default=""),
    Column("did", String(50), nullable=False, default=""),
    Column("recordingfile", String(255), nullable=False, default=""),
    Column("cnum", String(80), nullable=False, default=""),
    Column("cnam", String(80), nullable=False, default=""),
    Column("outbound_cnum", String(80), nullable=False, default=""),
    Column("outbound_cnam", String(80), nullable=False, default=""),
    Column("dst_cnam", String(80), nullable=False, default=""),
    Column("linkedid", String(150), nullable=False, default=""),
    Column("peeraccount", String(80), nullable=False, default=""),
    Column("sequence", Integer),
    # The conversation the row belongs to (domain/conversations.py): linkedid, else
    # uniqueid, else derived from the caller channel. call_records.callid is this.
    Column("callid", String(150), nullable=False, default=""),
    Index("ux_cdr_row_key", "row_key", unique=True),
    Index("ix_cdr_uniqueid", "uniqueid"),
    Index("ix_cdr_callid", "callid"),
    Index("ix_cdr_calldate", "calldate"),
    **_MYSQL,
)

# What a seed-shaped answer of one user reads besides its user, time and callId: the
# scope's extension ranges (user_num) and the answer's fields (indexed below).
COVERED = ("user_num", "phone_number", "call_type", "call_status", "call_date")

call_records = Table(
    "call_records",
    metadata,
    Column("callid", String(150), primary_key=True),
    Column("user_ext", String(80), primary_key=True),
    Column("user_num", BigInteger),
    Column("accountcode", String(80), nullable=False, default=""),
    Column("call_ts", BigInteger, nullable=False),
    Column("call_date", String(19), nullable=False),
    Column("phone_number", String(80), nullable=False, default=""),
    Column("call_type", String(16), nullable=False),
    Column("call_status", String(45), nullable=False, default=""),
    Column("direction", String(16), nullable=False),
    Column("duration", Integer, nullable=False, default=0),
    Column("billsec", Integer, nullable=False, default=0),
    Column("did", String(50), nullable=False, default=""),
    Column("linkedid", String(150), nullable=False, default=""),
    Column("recordingfile", String(255), nullable=False, default=""),
    # The per-user and the tenant-by-time indexes also hold what the seed answer reads
    # (COVERED), so getUser/getUserDate and a tenant's getDate read one contiguous run
    # of index entries and never the table: a user's records are scattered over the
    # table (it is in call order), and on a large table each of those row reads is a
    # page read.
    Index("ix_records_user_ts", "user_ext", "call_ts", "callid", *COVERED),
    Index("ix_records_ts", "call_ts", "callid"),
    Index("ix_records_account_ts", "accountcode", "call_ts", "callid", "user_ext", *COVERED),
    Index("ix_records_account_user_ts", "accountcode", "user_ext", "call_ts", "callid", *COVERED),
    Index("ix_records_linkedid", "linkedid"),
    **_MYSQL,
)

partners = Table(
    "partners",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("accountcodes", Text, nullable=False, default=""),
    Column("extensions", Text, nullable=False, default=""),
    Column("created_at", DateTime, nullable=False),
    Column("revoked_at", DateTime),
    # Per-partner rate limits (NULL: the server-wide setting; 0: unlimited).
    Column("rate_per_second", Float),
    Column("rows_per_minute", Integer),
    **_MYSQL,
)

partner_secrets = Table(
    "partner_secrets",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("partner_id", Id, ForeignKey("partners.id", ondelete="CASCADE"), nullable=False),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime),
    Column("revoked_at", DateTime),
    Index("ix_partner_secrets_partner", "partner_id"),
    **_MYSQL,
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", DateTime, nullable=False),
    Column("request_id", String(64), nullable=False, default=""),
    Column("partner_id", Id),
    Column("partner", String(100)),
    Column("request_type", String(40)),
    Column("params", Text, nullable=False, default=""),
    Column("rows_returned", Integer, nullable=False, default=0),
    Column("status", Integer, nullable=False),
    Column("error_code", String(40), nullable=False, default=""),
    Column("latency_ms", Float, nullable=False),
    Column("client", String(64), nullable=False, default=""),
    Index("ix_audit_at", "at"),
    Index("ix_audit_partner_at", "partner", "at"),
    **_MYSQL,
)

meta = Table(
    "voip24h_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    **_MYSQL,
)

# --- push: the event outbox, webhook endpoints and their deliveries (issue 20) ---

# The outbox. ``seq`` orders every event; it is handed out from the ``sequences`` row
# "events" inside the writing transaction (events.append_events), whose row lock makes
# concurrent writers commit their events in seq order, so a reader's cursor never skips
# an event committed late. accountcode, user_ext and user_num are the record's, under
# call_records' names, so the partner scope clause applies to this table as it is.
events = Table(
    "events",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("id", String(40), nullable=False),
    Column("type", String(32), nullable=False),
    Column("occurred_at", DateTime, nullable=False),
    Column("accountcode", String(80), nullable=False, default=""),
    Column("user_ext", String(80), nullable=False, default=""),
    Column("user_num", BigInteger),
    Column("callid", String(150), nullable=False, default=""),
    Column("payload", Text, nullable=False),
    Index("ux_events_id", "id", unique=True),
    Index("ix_events_occurred_at", "occurred_at"),
    **_MYSQL,
)

sequences = Table(
    "sequences",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
    **_MYSQL,
)

# A partner's webhook URL. The signing secret is stored as given (not hashed): the
# deliverer needs it to sign, so this table is as sensitive as the secrets themselves.
# previous_secret still signs (a second signature) until previous_until, while a
# partner's receivers move to the new one. ``last_seq`` is how far the deliverer has
# queued the event stream for this endpoint.
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("partner_id", Id, ForeignKey("partners.id", ondelete="CASCADE"), nullable=False),
    Column("url", Text, nullable=False),
    Column("secret", String(100), nullable=False),
    Column("previous_secret", String(100)),
    Column("previous_until", DateTime),
    Column("event_types", Text, nullable=False, default=""),
    Column("users", Text, nullable=False, default=""),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("disabled_reason", String(255), nullable=False, default=""),
    Column("failing_since", DateTime),
    Column("last_seq", BigInteger, nullable=False, default=0),
    Column("created_at", DateTime, nullable=False),
    Index("ix_webhook_endpoints_partner", "partner_id"),
    **_MYSQL,
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column(
        "endpoint_id",
        String(40),
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("event_seq", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime, nullable=False),
    Column("last_status", Integer),
    Column("last_error", String(255), nullable=False, default=""),
    # pending, delivered or failed (the schedule ran out, or the endpoint was disabled)
    Column("state", String(16), nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Index("ux_webhook_deliveries_event", "endpoint_id", "event_seq", unique=True),
    Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
    **_MYSQL,
)

# Every delivery attempt, for `voip24h webhook attempts` (migration 0009).
webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column(
        "endpoint_id",
        String(40),
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("event_seq", BigInteger, nullable=False),
    Column("event_id", String(40), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("at", DateTime, nullable=False),
    Column("status", Integer),
    Column("error", String(255), nullable=False, default=""),
    Column("latency_ms", Float, nullable=False),
    Index("ix_webhook_attempts_endpoint", "endpoint_id", "id"),
    **_MYSQL,
)

# One row per singleton job (the deliverer): who holds it and until when.
leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("expires_at", DateTime, nullable=False),
    **_MYSQL,
)

CDR_COLUMNS: tuple[str, ...] = tuple(c.name for c in cdr.columns if c.name not in ("id", "row_key"))

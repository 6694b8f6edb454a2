"""Settings, declared once: name, type, default and help (config/checks.py validates
them, config/loading.py layers them)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from voip24h.config import checks


def _setting(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Settings:
    """Every setting of the server and the command line tools."""

    database_url: str = _setting(
        "sqlite:///voip24h.db",
        "Database URL: sqlite:///FILE, postgresql://USER@HOST/DB or mysql://USER@HOST/DB "
        "(MariaDB too). The SQLite file is relative to the working directory.",
    )
    timezone: str = _setting(
        "Asia/Ho_Chi_Minh",
        "The PBX's IANA time zone: fromDate/toDate days and callDate are in this zone. "
        "Changing it needs `voip24h db reindex`.",
    )
    extension_pattern: str = _setting(
        "[0-9]{2,6}",
        "Regular expression (ASCII, whole name) an endpoint name must match to be an "
        "extension; trunks and other names are not.",
    )
    extensions: str = _setting(
        "",
        "Explicit extension list and ranges (e.g. '100-199,205'); when set it replaces "
        "extension_pattern.",
    )
    max_range_days: int = _setting(
        366, "Longest fromDate..toDate window, in days (both ends inclusive)."
    )
    max_records: int = _setting(
        100_000,
        "Most records one answer may carry; a larger result is refused with "
        "result_too_large, never cut.",
    )
    max_body_bytes: int = _setting(65_536, "Largest request body accepted, in bytes.")
    host: str = _setting("127.0.0.1", "Address the server listens on.")
    port: int = _setting(8024, "Port the server listens on.")
    workers: int = _setting(1, "Server worker processes.")
    db_timeout_seconds: float = _setting(
        10.0,
        "Statement timeout: the longest one request may spend in the database (waiting "
        "for a connection included); the query is then cancelled on the database server "
        "and the partner gets 503 database_timeout. 10 s covers a year of one busy user; "
        "raise it only together with any proxy timeout in front.",
    )
    db_pool_size: int = _setting(8, "Database connections per worker (PostgreSQL, MariaDB).")
    db_max_waiting: int = _setting(
        64,
        "Requests per worker that may wait for a database connection beyond db_pool_size; "
        "more are refused at once with 503 database_busy and Retry-After.",
    )
    db_wait_seconds: float = _setting(
        2.0,
        "Longest time a request waits for a free database connection (PostgreSQL, "
        "MariaDB) before 503 database_busy with Retry-After: a frozen database then holds "
        "only db_pool_size requests for db_timeout_seconds, and answers the others fast.",
    )
    client_timeout_seconds: float = _setting(
        15.0,
        "Longest time a client may take to send a request's headers (from connecting or "
        "from its previous answer) and, separately, its body; slower clients are closed "
        "(headers) or answered 408 request_timeout (body).",
    )
    keep_alive_seconds: float = _setting(
        5.0, "How long an idle keep-alive connection stays open after an answer."
    )
    max_connections: int = _setting(
        1000,
        "Connections (and requests) one worker serves at once; beyond it the oldest slow "
        "or idle connection is closed to make room, or, with none, a request gets 503 "
        "server_busy with Retry-After at once. Keep it under the process's open-file "
        "limit (systemd LimitNOFILE).",
    )
    partner_cache_seconds: float = _setting(
        2.0,
        "How long a checked secret is trusted without asking the database again; a "
        "revocation takes effect within this time.",
    )
    log_level: str = _setting("info", "Log level: debug, info, warning or error.")
    # --- abuse resistance, audit and operations (issue 5) ---
    rate_limit_per_second: float = _setting(
        10.0,
        "Requests per second each partner may send (bursts of one second's worth); 0 turns "
        "the limit off. `voip24h partner limits` overrides it per partner.",
    )
    rate_limit_rows_per_minute: int = _setting(
        1_000_000,
        "Records per minute each partner may receive; 0 turns the limit off. Overridable "
        "per partner.",
    )
    redis_url: str = _setting(
        "",
        "redis://HOST:PORT/DB shared by every server process for rate limits and the "
        "failed-secret throttle; empty keeps them in each process.",
    )
    redis_key_prefix: str = _setting("voip24h:", "Prefix of every key written to Redis.")
    auth_failures_per_minute: int = _setting(
        20,
        "Failed secret checks one client address may make per minute before it gets 429; "
        "0 turns the throttle off.",
    )
    trusted_proxies: str = _setting(
        "",
        "Comma-separated addresses or networks (e.g. 10.0.0.0/8) of reverse proxies whose "
        "X-Forwarded-For is believed; no other header or peer is.",
    )
    max_json_depth: int = _setting(8, "Deepest nesting of objects/arrays accepted in data.")
    max_string_length: int = _setting(
        256, "Longest string accepted anywhere in the request (the secret included)."
    )
    audit_enabled: bool = _setting(True, "Record every partner request in the audit table.")
    audit_retention_days: int = _setting(
        90, "Audit rows older than this are deleted hourly and by `voip24h audit prune`."
    )
    audit_database_url: str = _setting(
        "",
        "Where the audit trail is written and `voip24h audit` reads it. Empty: the main "
        "database, except a SQLite database_url FILE.db, whose audit goes to the sibling "
        "FILE-audit.db (writes to the file the server reads cost it ~40% throughput).",
    )
    ops_token: str = _setting(
        "",
        "When set, GET /metrics and /readyz need `Authorization: Bearer <ops_token>`.",
    )
    ops_port: int = _setting(
        0,
        "When not 0, /healthz, /readyz and /metrics are served only on ops_host:ops_port "
        "(workers=1), not on the partner port.",
    )
    ops_host: str = _setting("127.0.0.1", "Address of the ops listener (see ops_port).")
    shutdown_grace_seconds: float = _setting(
        10.0, "On shutdown, how long in-flight requests may take to finish."
    )

    # --- extended API: paging, export, recordings (issue 4) ---
    page_size: int = _setting(100, "Records per page when a request sends a cursor but no limit.")
    max_page_size: int = _setting(1000, "Largest limit a paged request may ask for.")
    export_chunk_rows: int = _setting(
        2000, "Rows read from the database per chunk while streaming a CSV/NDJSON export."
    )
    recordings_dir: str = _setting(
        "/var/spool/asterisk/monitor",
        "Directory of the PBX's call recordings (FreePBX: monitor/YYYY/MM/DD/FILE); "
        "no file outside it is ever served.",
    )
    recording_link_ttl_seconds: int = _setting(
        3600, "How long a recordingListen/recordingDownload link stays valid, in seconds."
    )
    recording_link_key: str = _setting(
        "",
        "Secret key (at least 32 characters) signing recording links; empty: a random key "
        "is generated once and kept in the database (voip24h_meta), shared by all workers.",
    )
    public_url: str = _setting(
        "",
        "Base URL partners reach this server at (e.g. https://pbx.example.com), used in "
        "recording links; empty: taken from the request's Host.",
    )

    # --- push: events and webhooks (issue 20) ---
    events_enabled: bool = _setting(True, "Ingestion writes a record.created or "
        "record.updated event for each record it creates or changes (getEvents, webhooks); "
        "off: no events.")  # fmt: skip
    event_retention_days: int = _setting(
        30, "Events older than this many days are deleted; getEvents cannot reach past them."
    )
    webhook_allow_cidrs: str = _setting(
        "",
        "Comma-separated networks (e.g. 10.20.0.0/16) webhooks may be delivered to although "
        "they are loopback, private or link-local; empty: only public addresses.",
    )
    webhook_disable_after_days: int = _setting(
        5, "A webhook endpoint failing every delivery for this many days is disabled."
    )
    webhook_max_in_flight: int = _setting(
        4, "Most deliveries one webhook endpoint has under way at once (in sequence order)."
    )
    webhook_retry_seconds: str = _setting("0,5,300,1800,7200,18000,36000,36000", "Seconds "
        "before each delivery attempt (the first, then each retry), jittered by 10%; the "
        "default is the Standard Webhooks schedule, about 27 hours.")  # fmt: skip
    webhook_poll_seconds: float = _setting(1.0, "How often the deliverer looks for new "
        "events when it has nothing to do.")  # fmt: skip
    webhook_lease_seconds: int = _setting(30, "The deliverer's lease: one process delivers; "
        "if it dies another takes over after this many seconds.")  # fmt: skip
    deliver_in_serve: bool = _setting(True, "`voip24h serve` runs the webhook deliverer (the "
        "process holding the lease delivers); off: run `voip24h deliver` on its own.")  # fmt: skip
    # --- the PBX link over AMI: live call events and click-to-call (issue 21) ---
    ami_url: str = _setting(
        "", "ami://USER:SECRET@HOST:5038 (amis:// for TLS) of the PBX's manager interface; "
        "empty: no live events, no makeDial. One process per database holds the link.",
    )
    pbx_link_in_serve: bool = _setting(
        True, "Run the link inside voip24h serve; false: only `voip24h pbx` (a process of its own)."
    )
    pbx_link_process: bool = _setting(
        True, "voip24h serve runs its link in a child process (`voip24h pbx`), so that a busy "
        "PBX never shares the workers' CPU; false: in the worker's event loop.",
    )  # fmt: skip
    dial_context: str = _setting(
        "from-internal", "Dialplan context makeDial dials phoneNumber in, once the user answers."
    )
    dial_channel: str = _setting(
        "PJSIP/{user}", "Channel makeDial rings first: the user's own phone ({user} filled in)."
    )
    dial_caller_id: str = _setting(
        "", "Caller ID the user's phone shows for a makeDial, e.g. 'Click2Call <{phone_number}>'."
    )
    dial_timeout_seconds: float = _setting(
        25.0, "How long makeDial rings the user's phone (its answer waits that long at most)."
    )
    dials_per_minute: int = _setting(
        6, "makeDial requests each partner may send per minute (its own limit); 0: no limit."
    )

    def replace(self, **changes: Any) -> Settings:
        """A copy with some values changed, validated again."""
        new = dataclasses.replace(self, **changes)
        new.validate()
        return new

    @property
    def retry_delays(self) -> tuple[float, ...]:
        """webhook_retry_seconds as numbers."""
        return tuple(float(x) for x in self.webhook_retry_seconds.split(",") if x.strip())

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def validate(self) -> None:
        """Raise SettingsError naming the first setting whose value cannot work."""
        checks.validate(self)

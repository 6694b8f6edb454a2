"""What the running app holds: settings, database reader and services."""

from __future__ import annotations

from dataclasses import dataclass, field

from voip24h.config import Settings
from voip24h.db.drivers import Reader
from voip24h.domain.mapping import ExtensionMatcher
from voip24h.server.audit import AuditWriter
from voip24h.server.dbgate import GatedReader
from voip24h.server.guard import Guard
from voip24h.server.middleware import Drain
from voip24h.server.observability import AccessLog, Metrics
from voip24h.server.ratelimit import make_buckets
from voip24h.service.answers import PartnerDirectory, RecordService
from voip24h.service.webhooks.endpoints import Webhooks
from voip24h.service.webhooks.metrics import DeliveryMetrics
from voip24h.wire.protocol import DATA_TYPES


@dataclass
class State:
    settings: Settings
    reader: Reader
    matcher: ExtensionMatcher
    partners: PartnerDirectory
    records: RecordService
    # Abuse resistance and operations (issue 5).
    metrics: Metrics = field(default_factory=lambda: Metrics(tuple(DATA_TYPES)))
    guard: Guard = field(init=False)
    audit: AuditWriter | None = None
    drain: Drain = field(default_factory=Drain)
    access: AccessLog = field(default_factory=AccessLog)
    webhooks: Webhooks = field(init=False)  # endpoints and the event feed (issue 20)
    delivery: DeliveryMetrics = field(init=False)

    def __post_init__(self) -> None:
        self.metrics.in_flight.set_function(lambda: self.drain.in_flight)
        if isinstance(self.reader, GatedReader):
            self.metrics.watch_database(self.reader)
        buckets = make_buckets(
            self.settings.redis_url,
            self.settings.redis_key_prefix,
            self.metrics.limiter_errors.inc,
        )
        self.webhooks = Webhooks(self.settings)
        self.delivery = DeliveryMetrics(self.metrics.registry)
        self.guard = Guard(self.settings, self.partners, buckets, self.metrics)
        if self.settings.audit_enabled:
            self.audit = AuditWriter.for_settings(self.settings, self.metrics)

    @classmethod
    def build(cls, settings: Settings, reader: Reader) -> State:
        return cls(
            settings=settings,
            reader=reader,
            matcher=ExtensionMatcher(settings.extension_pattern, settings.extensions),
            partners=PartnerDirectory(reader, settings.partner_cache_seconds),
            records=RecordService(reader, settings.max_records, settings),
        )

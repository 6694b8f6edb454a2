"""What the running app holds: settings, database reader and services."""

from __future__ import annotations

from dataclasses import dataclass

from voip24h.config import Settings
from voip24h.db.reader import Reader
from voip24h.records import ExtensionMatcher
from voip24h.service import PartnerDirectory, RecordService


@dataclass
class State:
    settings: Settings
    reader: Reader
    matcher: ExtensionMatcher
    partners: PartnerDirectory
    records: RecordService

    @classmethod
    def build(cls, settings: Settings, reader: Reader) -> State:
        return cls(
            settings=settings,
            reader=reader,
            matcher=ExtensionMatcher(settings.extension_pattern, settings.extensions),
            partners=PartnerDirectory(reader, settings.partner_cache_seconds),
            records=RecordService(reader, settings.max_records),
        )

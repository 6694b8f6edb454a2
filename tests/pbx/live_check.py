"""What the live-call tests compare: the extension matcher and a one-line view of events."""

from __future__ import annotations

from collections.abc import Callable

from voip24h.domain.mapping import ExtensionMatcher
from voip24h.pbx.live import LiveEvent


def matcher() -> Callable[[str], str | None]:
    """Which user a channel belongs to, with the default extension pattern."""
    return ExtensionMatcher().of_channel


def summary(events: list[LiveEvent]) -> list[tuple[str, str, int, str, str, str | None]]:
    """Each event as (user, type, sequence, phoneNumber, direction, status)."""
    return [(e.user, e.type, e.sequence, e.phone_number, e.direction, e.status) for e in events]

"""When to try a delivery again: the Standard Webhooks schedule, jittered."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# Seconds before attempt n+1 once n attempts failed: immediately, 5 s, 5 min, 30 min,
# 2 h, 5 h, 10 h, 10 h (about 27 hours in all, then the delivery fails for good).
RETRY_DELAYS = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
JITTER = 0.1  # +-10%, so endpoints that failed together do not retry together
MAX_RETRY_AFTER = 36000


def next_delay(
    attempts: int,
    retry_after: float | None = None,
    rng: random.Random | None = None,
    delays: tuple[float, ...] = RETRY_DELAYS,
) -> float | None:
    """Seconds to wait before the next attempt when ``attempts`` have been made (0: the
    first, at once), or None when the schedule (``delays``) is spent. A Retry-After
    (429/503) is honoured when later than the schedule."""
    if attempts >= len(delays):
        return None
    base = delays[attempts]
    jittered = base * (1 + (rng or random).uniform(-JITTER, JITTER))
    if retry_after is not None:
        return max(jittered, min(retry_after, MAX_RETRY_AFTER))
    return jittered


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """A Retry-After header (seconds or an HTTP date) as seconds from ``now``, or None."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())

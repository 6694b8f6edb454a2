"""Rate limiting buckets (GCRA) kept in process memory or in Redis.

One primitive serves every limit: a bucket of ``capacity`` units that refills at one
unit per ``interval`` seconds, stored as its theoretical arrival time (TAT), so a
bucket is one number. ``take`` spends ``cost`` units or refuses; ``peek`` only asks
whether ``cost`` units are there; ``force`` spends them even into debt (used to charge
the rows of an answer that was already computed). In Redis the same arithmetic runs
in one Lua script on the server's clock, so every process and host shares a bucket.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Literal

Mode = Literal["take", "peek", "force"]
log = logging.getLogger("voip24h.server.ratelimit")
RETRY_REDIS_AFTER = 1.0  # seconds of failing open without trying Redis after an error
EPS = 1e-9  # 0.1-second intervals are not exact in binary: count 9 units as 9, not 8.999


@dataclass(frozen=True)
class Verdict:
    """The outcome of one bucket operation."""

    allowed: bool
    retry_after: float  # seconds until the request would be allowed (0 when allowed)
    remaining: int  # whole units left after this operation
    reset: float  # seconds until the bucket is full again


def gcra(
    stored: float | None, now: float, interval: float, capacity: int, cost: int, mode: Mode
) -> tuple[Verdict, float | None]:
    """The verdict and the new stored TAT (None: leave it as it is)."""
    tat = max(stored or 0.0, now)
    new_tat = tat + cost * interval
    allow_at = new_tat - capacity * interval
    # EPS: (now + interval) - interval can come out a hair above now in floating point,
    # which refused the first request of a bucket holding one unit (capacity 1).
    if mode != "force" and now + EPS < allow_at:
        remaining = max(0, math.floor((now - (tat - capacity * interval)) / interval + EPS))
        return Verdict(False, allow_at - now, remaining, tat - now), None
    if mode == "peek":
        new_tat = tat
    remaining = max(0, math.floor((now - (new_tat - capacity * interval)) / interval + EPS))
    return Verdict(True, 0.0, remaining, new_tat - now), (new_tat if mode != "peek" else None)


class MemoryBuckets:
    """Buckets of this process only."""

    def __init__(self, max_keys: int = 100_000):
        self._tat: dict[str, float] = {}
        self._max_keys = max_keys

    async def hit(
        self, key: str, interval: float, capacity: int, cost: int = 1, mode: Mode = "take"
    ) -> Verdict:
        now = time.monotonic()
        verdict, new_tat = gcra(self._tat.get(key), now, interval, capacity, cost, mode)
        if new_tat is not None:
            if len(self._tat) >= self._max_keys:
                self._tat = {k: v for k, v in self._tat.items() if v > now}
                if len(self._tat) >= self._max_keys:  # a flood of distinct keys: start over
                    self._tat.clear()
            self._tat[key] = new_tat
        return verdict

    async def close(self) -> None:
        self._tat.clear()


# KEYS[1] bucket; ARGV: interval, capacity, cost, mode. Returns strings (Lua numbers
# would be truncated to integers): allowed, retry_after, remaining, reset.
_SCRIPT = """
local interval = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local mode = ARGV[4]
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + cost * interval
local allow_at = new_tat - capacity * interval
if mode ~= 'force' and now < allow_at then
  local left = math.floor((now - (tat - capacity * interval)) / interval + 1e-9)
  if left < 0 then left = 0 end
  return {'0', tostring(allow_at - now), tostring(left), tostring(tat - now)}
end
if mode == 'peek' then new_tat = tat end
if mode ~= 'peek' then
  redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
end
local left = math.floor((now - (new_tat - capacity * interval)) / interval + 1e-9)
if left < 0 then left = 0 end
return {'1', '0', tostring(left), tostring(new_tat - now)}
"""


class RedisBuckets:
    """Buckets shared by every process using the same Redis and key prefix.

    If Redis cannot be reached the request is allowed (fail open, logged and
    counted): a rate limiter outage must not become a partner outage.
    """

    def __init__(self, url: str, prefix: str, on_error: Any = None):
        import redis.asyncio as redis

        self._client = redis.from_url(
            url, socket_timeout=0.25, socket_connect_timeout=0.25, health_check_interval=30
        )
        self._script = self._client.register_script(_SCRIPT)
        self._prefix = prefix
        self._on_error = on_error
        self._last_warning = 0.0
        self._down_until = 0.0

    async def hit(
        self, key: str, interval: float, capacity: int, cost: int = 1, mode: Mode = "take"
    ) -> Verdict:
        if time.monotonic() < self._down_until:
            return self._allow(capacity)
        try:
            raw = await self._script(
                keys=[self._prefix + key], args=[repr(interval), capacity, cost, mode]
            )
        except Exception as exc:  # redis errors, timeouts, connection refused
            now = time.monotonic()
            self._down_until = now + RETRY_REDIS_AFTER  # don't pay the timeout every request
            if now - self._last_warning > 10:
                self._last_warning = now
                log.warning("rate limit store unavailable, allowing requests: %s", exc)
            return self._allow(capacity)
        allowed, retry_after, remaining, reset = (float(v) for v in raw)
        return Verdict(bool(allowed), retry_after, int(remaining), reset)

    def _allow(self, capacity: int) -> Verdict:
        if self._on_error is not None:
            self._on_error()
        return Verdict(True, 0.0, capacity, 0.0)

    async def close(self) -> None:
        await self._client.aclose()


Buckets = MemoryBuckets | RedisBuckets


def make_buckets(redis_url: str, prefix: str, on_error: Any = None) -> Buckets:
    """Redis buckets when a URL is configured, else this process's own."""
    return RedisBuckets(redis_url, prefix, on_error) if redis_url else MemoryBuckets()

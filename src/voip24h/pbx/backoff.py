"""Reconnect delays: exponential, capped, with jitter so many clients do not retry in step."""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """Delays ``base``, ``base*factor``, ... up to ``cap`` seconds, each shortened by jitter.

    A delay is ``raw * (1 - jitter * u)`` with ``u`` uniform in [0, 1). With the default
    factor 2 and jitter 0.5 each delay is at least the one before until the cap, so the
    retries always slow down, and never come faster than ``base * (1 - jitter)``.
    """

    def __init__(
        self,
        base: float = 1.0,
        cap: float = 60.0,
        *,
        factor: float = 2.0,
        jitter: float = 0.5,
        rand: Callable[[], float] = random.random,
    ):
        if base <= 0 or cap < base or factor < 1 or not 0 <= jitter < 1:
            raise ValueError("backoff needs 0 < base <= cap, factor >= 1 and 0 <= jitter < 1")
        self.base, self.cap, self.factor, self.jitter = base, cap, factor, jitter
        self._rand = rand
        self._raw = base
        self.attempts = 0

    def next(self) -> float:
        """The delay before the next attempt (and step up for the one after)."""
        delay = self._raw * (1 - self.jitter * self._rand())
        self._raw = min(self.cap, self._raw * self.factor)
        self.attempts += 1
        return delay

    def reset(self) -> None:
        """Start again from ``base`` (after a link that stayed up)."""
        self._raw = self.base
        self.attempts = 0

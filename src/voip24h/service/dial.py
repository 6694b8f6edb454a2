"""makeDial: the partner's click-to-call, checked here before the PBX is asked anything.

In order: the user must be an extension in the partner's scope (403 otherwise), the
number digits and a leading ``+``, at most 20 (400); an idempotency key seen within
``IDEMPOTENCY_SECONDS`` gets the first answer (a concurrent repeat waits for it); the
partner's own originate limit (429); then the PBX (503 when there is no link).
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from voip24h import errors
from voip24h.domain.mapping import ExtensionMatcher
from voip24h.domain.partners import Scope
from voip24h.service.results import Dialed

IDEMPOTENCY_SECONDS = 60.0
MAX_KEYS = 10_000
_PHONE_NUMBER = re.compile(r"\+?[0-9]{1,20}", re.ASCII)
_USER = re.compile(r"[0-9A-Za-z_.-]{1,64}", re.ASCII)

Limiter = Callable[[int], Awaitable[float | None]]
"""``limiter(partner_id)``: None when one more originate is allowed, else the seconds
to wait (the partner's own originate budget)."""


@dataclass(frozen=True)
class DialQuery:
    """A parsed makeDial."""

    user: str
    phone_number: str
    idempotency_key: str | None = None


class Dialer(Protocol):
    """What reaches the PBX (voip24h.pbx.dialer); raises errors.PbxUnavailable."""

    async def originate(self, user: str, phone_number: str) -> Dialed:
        """Ring ``user``, then dial ``phone_number``; how it ended."""
        ...


def may_dial(scope: Scope, user: str) -> bool:
    """True when a partner of ``scope`` may ring ``user``'s phone: the user is one of its
    extensions, or it is limited to no extension at all. A partner limited to tenants
    only may not: one PBX's tenants can reuse extension numbers, and a number alone
    does not say whose phone it is."""
    if scope.extensions:
        return scope.permits_user(user)
    return not scope.accountcodes


def check_phone_number(phone_number: str) -> None:
    """InvalidPhoneNumber unless ``phone_number`` is 1-20 digits with an optional +:
    anything else could name another context (``1@ctx``), channel (``1&SIP/x``) or
    dialplan separator."""
    if not _PHONE_NUMBER.fullmatch(phone_number):
        raise errors.InvalidPhoneNumber()


class DialService:
    """Answers makeDial for a partner; ``dialer`` None means no PBX is configured."""

    def __init__(
        self,
        matcher: ExtensionMatcher,
        dialer: Dialer | None = None,
        limiter: Limiter | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.matcher = matcher
        self.dialer = dialer
        self.limiter = limiter
        self._clock = clock
        self._seen: OrderedDict[tuple[int, str], tuple[float, DialQuery, asyncio.Future[Dialed]]]
        self._seen = OrderedDict()

    async def dial(self, partner_id: int, scope: Scope, query: DialQuery) -> Dialed:
        """The outcome of ``query`` for the partner; raises the fitting ApiError."""
        user = query.user
        if not _USER.fullmatch(user) or not self.matcher.is_extension(user):
            raise errors.InvalidUser(f"user {user[:40]!r} is not an extension number of this PBX.")
        if not may_dial(scope, user):
            raise errors.UserNotPermitted()
        check_phone_number(query.phone_number)
        key = None if query.idempotency_key is None else (partner_id, query.idempotency_key)
        if key is not None:
            first = self._first(key, query)
            if first is not None:
                answer = await asyncio.shield(first)
                return dataclasses.replace(answer, replayed=True)
        if self.limiter is not None:
            wait = await self.limiter(partner_id)
            if wait is not None:
                raise errors.RateLimited(
                    "Too many makeDial requests for this partner; retry after the time in "
                    "Retry-After.",
                    headers={"Retry-After": str(max(1, round(wait + 0.5)))},
                )
        if self.dialer is None:
            raise errors.PbxUnavailable("makeDial needs the PBX link: ami_url is not set.")
        future: asyncio.Future[Dialed] = asyncio.get_running_loop().create_future()
        if key is not None:
            self._remember(key, query, future)
        try:
            answer = await self.dialer.originate(user, query.phone_number)
        except BaseException as exc:
            # A failure is not an answer: the same key may try again.
            if key is not None:
                self._seen.pop(key, None)
            if not future.done():
                # A repeat waiting on this one gets the same error; if this one was
                # cancelled (its client left), the call may be ringing all the same.
                shared = exc if isinstance(exc, errors.ApiError) else errors.DialOutcomeUnknown()
                future.set_exception(shared)
                future.exception()  # retrieved: no "never retrieved" warning
            raise
        future.set_result(answer)
        return answer

    def _first(self, key: tuple[int, str], query: DialQuery) -> asyncio.Future[Dialed] | None:
        now = self._clock()
        while self._seen:
            oldest_key, (at, _, _) = next(iter(self._seen.items()))
            if now - at < IDEMPOTENCY_SECONDS:
                break
            del self._seen[oldest_key]
        seen = self._seen.get(key)
        if seen is None:
            return None
        _, first_query, future = seen
        if (first_query.user, first_query.phone_number) != (query.user, query.phone_number):
            raise errors.IdempotencyKeyReused()
        return future

    def _remember(
        self, key: tuple[int, str], query: DialQuery, future: asyncio.Future[Dialed]
    ) -> None:
        self._seen[key] = (self._clock(), query, future)
        while len(self._seen) > MAX_KEYS:
            self._seen.popitem(last=False)

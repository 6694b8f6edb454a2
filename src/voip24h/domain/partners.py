"""Partner secrets (generate, hash, check) and scopes (accountcodes, extensions)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

SECRET_BYTES = 24  # 32 URL-safe characters, 192 bits
MIN_IMPORTED_SECRET = 16
_SECRET_CHARS = re.compile(r"[\x21-\x7e]+", re.ASCII)
_EXT_NAME = re.compile(r"[0-9A-Za-z_.+*#]+", re.ASCII)
_EXT_RANGE = re.compile(r"([0-9]+)-([0-9]+)", re.ASCII)
_DURATION = re.compile(r"([0-9]+)\s*([smhdw]?)", re.ASCII)


def generate_secret() -> str:
    """A new random secret for a partner."""
    return secrets.token_urlsafe(SECRET_BYTES)


def check_imported_secret(secret: str) -> None:
    """Refuse a secret too weak to be stored under a fast hash."""
    if not _SECRET_CHARS.fullmatch(secret):
        raise ValueError("a secret must be printable ASCII without spaces")
    if len(secret) < MIN_IMPORTED_SECRET:
        raise ValueError(f"a secret must have at least {MIN_IMPORTED_SECRET} characters")


def hash_secret(secret: str) -> str:
    """The stored form of a secret.

    Secrets are long random strings, so one SHA-256 (domain-separated) is enough:
    a slow password hash would only add latency to every request.
    """
    return hashlib.sha256(b"voip24h-partner-secret:" + secret.encode("utf-8")).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    """Constant-time comparison of a presented secret with a stored hash."""
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def secret_prefix(secret: str) -> str:
    """A short, non-secret label for logs and listings."""
    return secret[:4] + "…"


def parse_duration(text: str) -> timedelta:
    """``24h``, ``30m``, ``2d``, ``90s``, ``1w`` or plain seconds."""
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a duration like 24h, 30m, 2d")
    amount, unit = int(match.group(1)), match.group(2) or "s"
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit]
    return timedelta(seconds=amount * seconds)


@dataclass(frozen=True)
class ExtensionSet:
    """Extensions named one by one and as numeric ranges (``100-199,205``)."""

    names: frozenset[str] = frozenset()
    ranges: tuple[tuple[int, int], ...] = ()

    def __contains__(self, user: object) -> bool:
        if not isinstance(user, str):
            return False
        if user in self.names:
            return True
        number = canonical_number(user)
        return number is not None and any(lo <= number <= hi for lo, hi in self.ranges)

    def __bool__(self) -> bool:
        return bool(self.names or self.ranges)

    def spec(self) -> str:
        parts = [f"{lo}-{hi}" if lo != hi else str(lo) for lo, hi in self.ranges]
        return ",".join(sorted(self.names) + parts)


def canonical_number(user: str) -> int | None:
    """The number of a pure ASCII-digit extension without leading zeros, else None.

    ``0137`` is not 137 and fullwidth ``\uff11\uff13\uff17`` is not 137: ranges only hold
    extensions written the way the PBX writes them.
    """
    if user.isascii() and user.isdigit() and (user == "0" or not user.startswith("0")):
        return int(user) if len(user) <= 18 else None
    return None


def parse_extensions(*specs: str) -> ExtensionSet:
    """Parse ``100-199,205 300`` style lists (several specs are merged)."""
    names: set[str] = set()
    ranges: list[tuple[int, int]] = []
    for spec in specs:
        for token in re.split(r"[,\s]+", spec.strip()):
            if not token:
                continue
            rng = _EXT_RANGE.fullmatch(token)
            if rng:
                lo, hi = int(rng.group(1)), int(rng.group(2))
                if lo > hi:
                    raise ValueError(f"extension range {token!r} runs backwards")
                if canonical_number(rng.group(1)) is None or canonical_number(rng.group(2)) is None:
                    raise ValueError(f"extension range {token!r}: no leading zeros in ranges")
                ranges.append((lo, hi))
            elif _EXT_NAME.fullmatch(token):
                number = canonical_number(token)
                if number is not None:
                    ranges.append((number, number))
                else:
                    names.add(token)
            else:
                raise ValueError(f"{token!r} is not an extension or a range like 100-199")
    return ExtensionSet(frozenset(names), tuple(sorted(set(ranges))))


@dataclass(frozen=True)
class Scope:
    """What a partner may see: records whose accountcode and user are both allowed.

    An empty set means "no restriction" on that axis.
    """

    accountcodes: frozenset[str] = frozenset()
    extensions: ExtensionSet = field(default_factory=ExtensionSet)

    def permits_user(self, user: str) -> bool:
        return not self.extensions or user in self.extensions

    @property
    def unrestricted(self) -> bool:
        return not self.accountcodes and not self.extensions

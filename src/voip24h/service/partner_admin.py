"""Operator actions on partners: add, rotate, revoke, show, list."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from voip24h.db.queries import call_records as record_queries
from voip24h.db.queries import partners as q
from voip24h.domain.partners import (
    check_imported_secret,
    generate_secret,
    hash_secret,
    parse_extensions,
    secret_prefix,
)
from voip24h.service.answers import utcnow


class PartnerError(ValueError):
    """An operator action that cannot be done, with a message that says why."""


@dataclass(frozen=True)
class Issued:
    name: str
    secret: str


def _require(conn: Any, name: str) -> dict[str, Any]:
    partner = q.find(conn, name)
    if partner is None:
        raise PartnerError(f"no partner named {name!r}")
    return partner


def add(
    engine: Engine,
    name: str,
    accountcodes: list[str],
    extensions: list[str],
    secret: str | None = None,
    limits: dict[str, Any] | None = None,
    is_extension: Callable[[str], bool] | None = None,
) -> Issued:
    """Create a partner with a new secret, or with ``secret`` it already holds.

    ``limits`` may set ``rate_per_second`` and ``rows_per_minute`` (see set_limits).
    With ``is_extension`` (the PBX's extension rule), every extension and range end
    named must be one: a scope no user can ever match is refused, not kept silently.
    """
    if is_extension is not None:
        _check_extensions(extensions, is_extension)
    limits = _checked_limits(limits or {})
    name = name.strip()
    if not name or len(name) > 100:
        raise PartnerError("a partner name must have 1 to 100 characters")
    codes = sorted({code.strip() for code in accountcodes if code.strip()})
    if any("," in code for code in codes):
        raise PartnerError("an accountcode cannot contain a comma; repeat --accountcode instead")
    try:
        ext_spec = parse_extensions(*extensions).spec() if extensions else ""
    except ValueError as exc:
        raise PartnerError(f"--extensions: {exc}") from exc
    if secret is not None:
        try:
            check_imported_secret(secret)
        except ValueError as exc:
            raise PartnerError(f"--secret: {exc}") from exc
    secret = secret or generate_secret()
    now = utcnow()
    with engine.begin() as conn:
        try:
            partner_id = q.add_partner(conn, name, ",".join(codes), ext_spec, now)
            q.add_secret(conn, partner_id, hash_secret(secret), secret_prefix(secret), now)
            if limits:
                q.set_limits(conn, partner_id, limits)
        except q.PartnerExists:
            raise PartnerError(f"a partner named {name!r} already exists") from None
        except q.SecretExists:
            raise PartnerError("that secret is already held by a partner") from None
    return Issued(name, secret)


def rotate(engine: Engine, name: str, overlap: timedelta) -> Issued:
    """Issue a new secret; the old ones keep working for ``overlap``, then stop."""
    secret = generate_secret()
    now = utcnow()
    with engine.begin() as conn:
        partner = _require(conn, name)
        if partner["revoked_at"] is not None:
            raise PartnerError(f"partner {name!r} is revoked")
        q.expire_active_secrets(conn, partner["id"], now + overlap)
        q.add_secret(conn, partner["id"], hash_secret(secret), secret_prefix(secret), now)
    return Issued(name, secret)


def _checked_limits(limits: dict[str, Any]) -> dict[str, Any]:
    for key, value in limits.items():
        if key not in ("rate_per_second", "rows_per_minute"):
            raise PartnerError(f"unknown limit {key!r}")
        if value is not None and value < 0:
            raise PartnerError(f"{key} must not be negative (0 means unlimited)")
    return limits


def set_limits(engine: Engine, name: str, limits: dict[str, Any]) -> dict[str, Any]:
    """Set per-partner limits (None: back to the server default; 0: unlimited).

    Servers pick the change up within partner_cache_seconds.
    """
    limits = _checked_limits(limits)
    with engine.begin() as conn:
        partner = _require(conn, name)
        if limits:
            q.set_limits(conn, partner["id"], limits)
        partner = _require(conn, name)
    return {key: partner[key] for key in ("rate_per_second", "rows_per_minute")}


def _check_extensions(specs: list[str], is_extension: Callable[[str], bool]) -> None:
    for spec in specs:
        for token in re.split(r"[,\s]+", spec.strip()):
            ends = token.split("-", 1) if re.fullmatch(r"\d+-\d+", token) else [token]
            wrong = [end for end in ends if end and not is_extension(end)]
            if wrong:
                raise PartnerError(
                    f"--extensions: {wrong[0]!r} is not an extension of this PBX "
                    "(see the extension_pattern and extensions settings)"
                )


def unknown_accountcodes(engine: Engine, accountcodes: list[str]) -> tuple[list[str], list[str]]:
    """The accountcodes no call carries yet, and (some of) those the calls do carry."""
    codes = sorted({code.strip() for code in accountcodes if code.strip()})
    with engine.connect() as conn:
        missing = sorted(set(codes) - record_queries.known_accountcodes(conn, codes))
        known = record_queries.some_accountcodes(conn) if missing else []
    return missing, known


def revoke(engine: Engine, name: str) -> datetime | None:
    """Revoke NAME and its secrets; the earlier revocation's time when it already was."""
    with engine.begin() as conn:
        partner = _require(conn, name)
        if partner["revoked_at"] is not None:
            return partner["revoked_at"]
        q.revoke(conn, partner["id"], utcnow())
        return None


def show(engine: Engine, name: str) -> dict[str, Any]:
    with engine.connect() as conn:
        partner = _require(conn, name)
        secrets = q.secrets_of(conn, partner["id"])
    now = utcnow()
    return {
        "name": partner["name"],
        "accountcodes": [c for c in partner["accountcodes"].split(",") if c],
        "extensions": partner["extensions"],
        "created_at": _iso(partner["created_at"]),
        "revoked_at": _iso(partner["revoked_at"]),
        "rate_per_second": partner.get("rate_per_second"),
        "rows_per_minute": partner.get("rows_per_minute"),
        "secrets": [
            {
                "prefix": s["prefix"],
                "created_at": _iso(s["created_at"]),
                "expires_at": _iso(s["expires_at"]),
                "revoked_at": _iso(s["revoked_at"]),
                "active": s["revoked_at"] is None
                and (s["expires_at"] is None or s["expires_at"] > now),
            }
            for s in secrets
        ],
    }


def list_all(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = q.list_all(conn, utcnow())
    return [
        {
            "name": row["name"],
            "accountcodes": [c for c in row["accountcodes"].split(",") if c],
            "extensions": row["extensions"],
            "active_secrets": int(row["active_secrets"]),
            "revoked": row["revoked_at"] is not None,
            "created_at": _iso(row["created_at"]),
        }
        for row in rows
    ]


def _iso(value: Any) -> str | None:
    return None if value is None else value.replace(microsecond=0).isoformat() + "Z"


def find_exists(engine: Engine, name: str) -> bool:
    with engine.connect() as conn:
        return q.find(conn, name) is not None

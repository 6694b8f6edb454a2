"""Whether settings can work: each check names the setting it refuses."""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class SettingsError(ValueError):
    """A setting has a value that cannot work."""


def validate(self: Any) -> None:
    """Raise SettingsError naming the first setting whose value cannot work."""
    try:
        ZoneInfo(self.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SettingsError(f"timezone: unknown time zone {self.timezone!r}") from exc
    try:
        re.compile(self.extension_pattern, re.ASCII)
    except re.error as exc:
        raise SettingsError(f"extension_pattern: not a valid regular expression: {exc}") from exc
    if self.extensions:
        from voip24h.domain.partners import parse_extensions

        try:
            parse_extensions(self.extensions)
        except ValueError as exc:
            raise SettingsError(f"extensions: {exc}") from exc
    positive = ("max_range_days", "max_records", "max_body_bytes", "workers", "db_pool_size")
    for name in (*positive, "max_connections"):
        if getattr(self, name) < 1:
            raise SettingsError(f"{name}: must be at least 1")
    _validate_security(self)
    if not 0 < self.port < 65536:
        raise SettingsError("port: must be between 1 and 65535")
    for name in (
        "db_timeout_seconds",
        "db_wait_seconds",
        "client_timeout_seconds",
        "keep_alive_seconds",
    ):
        if getattr(self, name) <= 0:
            raise SettingsError(f"{name}: must be greater than 0")
    _validate_extended_api(self)
    if self.db_max_waiting < 0:
        raise SettingsError("db_max_waiting: must not be negative")
    if self.partner_cache_seconds < 0:
        raise SettingsError("partner_cache_seconds: must not be negative")
    if self.log_level.lower() not in {"debug", "info", "warning", "error"}:
        raise SettingsError("log_level: must be debug, info, warning or error")


def _validate_security(self: Any) -> None:
    from voip24h.domain.netaddr import parse_networks

    for name in ("max_json_depth", "max_string_length", "audit_retention_days"):
        if getattr(self, name) < 1:
            raise SettingsError(f"{name}: must be at least 1")
    limits = ("rate_limit_per_second", "rate_limit_rows_per_minute", "auth_failures_per_minute")
    for name in limits:
        if getattr(self, name) < 0:
            raise SettingsError(f"{name}: must not be negative")
    if self.shutdown_grace_seconds < 0:
        raise SettingsError("shutdown_grace_seconds: must not be negative")
    if not 0 <= self.ops_port < 65536:
        raise SettingsError("ops_port: must be between 0 and 65535")
    if self.ops_port and self.workers > 1:
        raise SettingsError("ops_port: needs workers=1; protect ops with ops_token instead")
    if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise SettingsError("redis_url: must start with redis://, rediss:// or unix://")
    try:
        parse_networks(self.trusted_proxies)
    except ValueError as exc:
        raise SettingsError(f"trusted_proxies: {exc}") from exc
    if self.audit_database_url:
        from voip24h.db.engine import backend_of

        try:
            backend_of(self.audit_database_url)
        except ValueError as exc:
            raise SettingsError(f"audit_database_url: {exc}") from exc


def _validate_extended_api(self: Any) -> None:
    positive = ("page_size", "max_page_size", "export_chunk_rows", "recording_link_ttl_seconds")
    for name in positive:
        if getattr(self, name) < 1:
            raise SettingsError(f"{name}: must be at least 1")
    if self.page_size > self.max_page_size:
        raise SettingsError("page_size: must not exceed max_page_size")
    if self.recording_link_key and len(self.recording_link_key) < 32:
        raise SettingsError("recording_link_key: must have at least 32 characters")
    if self.public_url and not self.public_url.startswith(("http://", "https://")):
        raise SettingsError("public_url: must start with http:// or https://")
    _validate_push(self)


def _validate_push(self: Any) -> None:
    from voip24h.domain.netaddr import parse_networks

    at_least_one = ("event_retention_days", "webhook_disable_after_days")
    for name in (*at_least_one, "webhook_max_in_flight", "webhook_lease_seconds"):
        if getattr(self, name) < 1:
            raise SettingsError(f"{name}: must be at least 1")
    if self.webhook_poll_seconds <= 0:
        raise SettingsError("webhook_poll_seconds: must be more than 0")
    number = r" *[0-9]+(\.[0-9]+)? *"
    if not re.fullmatch(f"{number}(,{number})*", self.webhook_retry_seconds):
        raise SettingsError("webhook_retry_seconds: comma-separated seconds, like 0,5,300")
    try:
        parse_networks(self.webhook_allow_cidrs)
    except ValueError as exc:
        raise SettingsError(f"webhook_allow_cidrs: {exc}") from exc
    if self.ami_url and not self.ami_url.startswith(("ami://", "amis://")):
        raise SettingsError("ami_url: must start with ami:// or amis://")
    if "{user}" not in self.dial_channel or self.dial_timeout_seconds <= 0:
        raise SettingsError("dial_channel needs {user}; dial_timeout_seconds must be > 0")
    if self.dials_per_minute < 0:
        raise SettingsError("dials_per_minute: must not be negative")

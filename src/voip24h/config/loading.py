"""Settings layered: defaults <- TOML file <- ``VOIP24H_*`` environment <- flags,
and validated when loaded, so a bad value stops the program with a clear message
instead of failing on the first request."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from voip24h.config.checks import SettingsError
from voip24h.config.settings import Settings

ENV_PREFIX = "VOIP24H_"
CONFIG_FILE_ENV = "VOIP24H_CONFIG"


def describe() -> list[tuple[str, str, Any, str]]:
    """(name, environment variable, default, help) for every setting, in declaration order."""
    return [(f.name, env_name(f.name), f.default, f.metadata["help"]) for f in fields(Settings)]


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def _coerce(name: str, raw: Any) -> Any:
    kind = {f.name: f.type for f in fields(Settings)}[name]
    try:
        if kind == "int":
            if isinstance(raw, bool):
                raise ValueError
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off"}:
                return False
            raise ValueError
        return str(raw)
    except (TypeError, ValueError):
        raise SettingsError(f"{name}: {raw!r} is not a valid {kind}") from None


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    *,
    config_file: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build validated Settings from defaults, a TOML file, the environment and overrides.

    ``overrides`` are the command-line flags; a value of None means "not given".
    The TOML file comes from ``config_file`` or ``VOIP24H_CONFIG``.
    """
    env = os.environ if environ is None else environ
    known = {f.name for f in fields(Settings)}
    values: dict[str, Any] = {}
    path = config_file or env.get(CONFIG_FILE_ENV)
    if path:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise SettingsError(f"config file {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"config file {path}: {exc}") from exc
        section = data.get("voip24h", data)
        for key, raw in section.items():
            if key not in known:
                raise SettingsError(f"config file {path}: unknown setting {key!r}")
            values[key] = _coerce(key, raw)
    for name in known:
        if env_name(name) in env:
            values[name] = _coerce(name, env[env_name(name)])
    for name, raw in (overrides or {}).items():
        if raw is None:
            continue
        if name not in known:
            raise SettingsError(f"unknown setting {name!r}")
        values[name] = _coerce(name, raw)
    settings = Settings(**values)
    settings.validate()
    return settings

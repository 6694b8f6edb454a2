"""Settings: defaults <- file <- environment <- flags, validated at load."""

from __future__ import annotations

import pytest

from voip24h.config import SettingsError, load_settings


def test_layering(tmp_path):
    config = tmp_path / "voip24h.toml"
    config.write_text('[voip24h]\nport = 9000\nmax_range_days = 31\ntimezone = "UTC"\n')
    settings = load_settings(
        {"port": 9100}, config_file=config, environ={"VOIP24H_MAX_RANGE_DAYS": "62"}
    )
    assert (settings.port, settings.max_range_days, settings.timezone) == (9100, 62, "UTC")
    assert settings.database_url == "sqlite:///voip24h.db"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"timezone": "Nowhere/City"}, "timezone: unknown time zone 'Nowhere/City'"),
        ({"port": 0}, "port: must be between 1 and 65535"),
        ({"max_range_days": "many"}, "max_range_days: 'many' is not a valid int"),
        ({"extension_pattern": "(["}, "extension_pattern: not a valid regular expression"),
        ({"extensions": "abc-def"}, "extensions: 'abc-def' is not an extension"),
        ({"nonsense": 1}, "unknown setting 'nonsense'"),
    ],
)
def test_invalid_values_are_refused_at_load(overrides, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_settings(overrides, environ={})


def test_unknown_key_in_file(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("prot = 1\n")
    with pytest.raises(SettingsError, match="unknown setting 'prot'"):
        load_settings(config_file=config, environ={})

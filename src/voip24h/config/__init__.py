"""Settings, declared once (settings.py) with their help, validated (checks.py) and
layered from defaults, a TOML file, the environment and flags (loading.py)."""

from voip24h.config.checks import SettingsError
from voip24h.config.loading import CONFIG_FILE_ENV, ENV_PREFIX, describe, env_name, load_settings
from voip24h.config.settings import Settings

__all__ = [
    "CONFIG_FILE_ENV",
    "ENV_PREFIX",
    "Settings",
    "SettingsError",
    "describe",
    "env_name",
    "load_settings",
]

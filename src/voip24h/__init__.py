"""voip24h: the partner API server for Asterisk/FreePBX call records."""

__version__ = "0.1.0"

"""Running the server under uvicorn: one process, or workers that read their settings from
the environment. Shared by ``voip24h serve`` and ``voip24h demo``."""

from __future__ import annotations

import os
from typing import Any

from voip24h.config import Settings, env_name


def run_server(settings: Settings) -> None:
    """Serve the partner API with ``settings`` until stopped (uvicorn imported only here)."""
    import uvicorn

    from voip24h.server.app import create_app
    from voip24h.server.observability import configure_logging
    from voip24h.server.protocol import TimedProtocol

    configure_logging(settings.log_level)
    common: dict[str, Any] = dict(
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        proxy_headers=False,  # X-Forwarded-For is read only from trusted_proxies
        server_header=False,
        access_log=False,  # voip24h.access writes JSON access lines instead
        timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_seconds)),
        # Slow or idle clients: server/protocol.py closes a connection whose request head
        # is late; uvicorn one idle after an answer, and refuses connections beyond the cap.
        http=TimedProtocol,
        timeout_keep_alive=settings.keep_alive_seconds,
        limit_concurrency=settings.max_connections,
    )
    TimedProtocol.header_timeout = settings.client_timeout_seconds
    if settings.workers == 1:
        uvicorn.run(create_app(settings), **common)
        return
    # Workers are separate processes: they read their settings from the environment.
    for name, value in vars(settings).items():
        os.environ[env_name(name)] = str(value)
    uvicorn.run("voip24h.server.app:app_from_env", factory=True, workers=settings.workers, **common)

"""The route table: every route of the partner app and of the ops listener.

Only declarations live here; the handlers are in server/handlers.py (the partner
endpoint, recording files), server/stream.py (the SSE event stream), server/pages.py
(/openapi.json, /docs) and server/ops.py (/healthz, /readyz, /metrics).
server/app.py:create_app serves ``partner_routes`` on the partner port and, when
ops_port is set, ``ops_routes`` on the ops listener.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from voip24h.config import Settings
from voip24h.server.handlers import partner_api, recording_file
from voip24h.server.ops import healthz, metrics, readyz
from voip24h.server.pages import docs, openapi_json
from voip24h.server.stream import STREAM_PATH, events_stream
from voip24h.wire.protocol import PATH, RECORDINGS_PREFIX


def ops_routes() -> list[BaseRoute]:
    """The ops routes: on the ops listener, or on the partner port when ops_port is 0."""
    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]


def partner_routes(settings: Settings) -> list[BaseRoute]:
    """Every route of the partner app (the ops routes too unless ops_port is set)."""
    return [
        # POSTs take server/app.py:PartnerServer's fast path; other methods get 405 here.
        Route(PATH, partner_api, methods=["POST"]),
        Route(RECORDINGS_PREFIX + "{token}", recording_file, methods=["GET", "HEAD"]),
        Route(STREAM_PATH, events_stream, methods=["GET"]),  # live events (issue 21)
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
        Mount(
            "/docs/static",
            StaticFiles(packages=[("voip24h", "static/swagger-ui")]),
            name="docs-static",
        ),
        *([] if settings.ops_port else ops_routes()),
    ]

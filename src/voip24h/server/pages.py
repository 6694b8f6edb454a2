"""The documentation pages: GET /openapi.json and the /docs UI.

The docs page and Swagger UI's files are served from the package itself
(src/voip24h/static), so the documentation works on a PBX without internet access.
"""

from __future__ import annotations

import html

import orjson
from starlette.requests import Request
from starlette.responses import Response

from voip24h.wire.openapi import document

_DOCS = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>voip24h partner API</title>
<link rel="stylesheet" href="{root}/docs/static/swagger-ui.css">
<link rel="icon" href="{root}/docs/static/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui" data-url="{root}/openapi.json"></div>
<script src="{root}/docs/static/swagger-ui-bundle.js"></script>
<script src="{root}/docs/static/voip24h-docs.js"></script>
</body>
</html>
"""


async def openapi_json(request: Request) -> Response:
    """GET /openapi.json."""
    cached = getattr(request.app.state, "openapi_bytes", None)
    if cached is None:
        cached = request.app.state.openapi_bytes = orjson.dumps(document())
    return Response(cached, media_type="application/json")


async def docs(request: Request) -> Response:
    """GET /docs: Swagger UI over /openapi.json, every file from this package."""
    root = html.escape(request.scope.get("root_path", "").rstrip("/"))
    return Response(_DOCS.format(root=root), media_type="text/html; charset=utf-8")

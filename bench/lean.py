"""The lean references: the least code that answers the same request with the same JSON.

Starlette + orjson + the backend's fastest driver (sqlite3 inline, asyncpg pool,
asyncmy pool), the same SQL as the server (scope by the tenant's accountcode, one
user and/or a window of whole local days, newest first), no auth, no validation
beyond what parsing needs. Run by uvicorn with the same workers and options as the
server: ``LEAN_DB=URL LEAN_TENANTS=t0001,... uvicorn bench.lean:app --workers 2``; a
request's scope is the tenant whose bench partner's secret it carries.

``ceiling`` is the machine's ceiling: a bare ASGI app returning a fixed 4.5 KB body.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.workload import ORDER_BY, tenant_of_secret

PATH = "/api/v1/partner/voip24h"
KEYS = ("callId", "user", "phoneNumber", "callType", "callStatus", "callDate")
HEAD = b'{"respCode":0,"respMsg":"Success","data":'
ZONE_OFFSET = timedelta(hours=7)  # Asia/Ho_Chi_Minh has no DST
LIMIT = 100_001
COLS = "callid, user_ext, phone_number, call_type, call_status, call_date"
WHERE = {
    "getUser": "accountcode IN ({}) AND user_ext = {}",
    "getDate": "accountcode IN ({}) AND call_ts >= {} AND call_ts < {}",
    "getUserDate": "accountcode IN ({}) AND user_ext = {} AND call_ts >= {} AND call_ts < {}",
}


def _epoch(day: str, plus: int = 0) -> int:
    d, m, y = day.split("/")
    moment = datetime(int(y), int(m), int(d), tzinfo=UTC) - ZONE_OFFSET + timedelta(days=plus)
    return int(moment.timestamp())


def _args(doc: dict[str, Any], tenants: dict[str, str]) -> tuple[str, list[Any]]:
    kind, data = doc["requestType"], doc["data"]
    args: list[Any] = [tenants[doc["partnerSecret"]]]
    if kind != "getDate":
        args.append(str(data["user"]))
    if kind != "getUser":
        args += [_epoch(data["fromDate"]), _epoch(data["toDate"], 1)]
    return kind, args


def _sql(style: str) -> dict[str, str]:
    out = {}
    for kind, where in WHERE.items():
        count = where.count("{}") + 1
        marks = ["?"] * count if style == "qmark" else [f"${i}" for i in range(1, count + 1)]
        if style == "format":
            marks = ["%s"] * count
        text = f"SELECT {COLS} FROM call_records WHERE {where} ORDER BY {ORDER_BY[kind]} LIMIT {{}}"
        out[kind] = text.format(*marks)
    return out


def _render(rows: Any) -> Response:
    body = HEAD + orjson.dumps([dict(zip(KEYS, row, strict=True)) for row in rows]) + b"}"
    return Response(body, media_type="application/json")


def sqlite_app(path: str, tenants: dict[str, str]) -> Starlette:
    sql = _sql("qmark")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)

    async def endpoint(request: Request) -> Response:
        kind, args = _args(orjson.loads(await request.body()), tenants)
        return _render(conn.execute(sql[kind], [*args, LIMIT]).fetchall())

    return Starlette(routes=[Route(PATH, endpoint, methods=["POST"])])


def asyncpg_app(url: str, tenants: dict[str, str]) -> Starlette:
    import asyncpg

    sql = _sql("numeric")
    pool: list[Any] = []

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        pool.append(await asyncpg.create_pool(url, min_size=8, max_size=8))
        yield
        await pool[0].close()

    async def endpoint(request: Request) -> Response:
        kind, args = _args(orjson.loads(await request.body()), tenants)
        async with pool[0].acquire() as conn:
            rows = await conn.fetch(sql[kind], *args, LIMIT)
        return _render(rows)

    return Starlette(routes=[Route(PATH, endpoint, methods=["POST"])], lifespan=lifespan)


def asyncmy_app(url: str, tenants: dict[str, str]) -> Starlette:
    import asyncmy

    sql = _sql("format")
    pool: list[Any] = []
    u = urlsplit(url)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        pool.append(
            await asyncmy.create_pool(
                host=u.hostname, port=u.port or 3306, user=u.username or "root",
                password=u.password or "", db=u.path.lstrip("/"), minsize=8, maxsize=8,
                autocommit=True, charset="utf8mb4",
            )
        )  # fmt: skip
        yield
        pool[0].close()
        await pool[0].wait_closed()

    async def endpoint(request: Request) -> Response:
        kind, args = _args(orjson.loads(await request.body()), tenants)
        async with pool[0].acquire() as conn, conn.cursor() as cursor:
            await cursor.execute(sql[kind], [*args, LIMIT])
            rows = await cursor.fetchall()
        return _render(rows)

    return Starlette(routes=[Route(PATH, endpoint, methods=["POST"])], lifespan=lifespan)


def app() -> Starlette:
    """uvicorn factory: the lean reference for ``LEAN_DB``."""
    url = os.environ["LEAN_DB"]
    tenants = tenant_of_secret(os.environ.get("LEAN_TENANTS", ""))
    if url.startswith("sqlite:///"):
        return sqlite_app(url.removeprefix("sqlite:///"), tenants)
    if url.startswith("postgresql://"):
        return asyncpg_app(url, tenants)
    return asyncmy_app(url, tenants)


_FIXED = b'{"respCode":0,"respMsg":"Success","data":' + b"[" + b"x" * 4500 + b"]}"
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(_FIXED)).encode())]


async def ceiling(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Bare ASGI: read the body, answer a fixed 4.5 KB body."""
    if scope["type"] != "http":
        while scope["type"] == "lifespan":
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _FIXED})

"""The request mix: tenant partners, their secrets, and rotating users and windows."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlencode

from bench.dataset import SPAN_DAYS, SPAN_END, Shape

KINDS = ("getUser", "getDate", "getUserDate")
LIGHT = "-light"  # suffix of a system's light-load latency runs (bench/run.py: pair)
PATH = "/api/v1/partner/voip24h"
PARTNER_TENANTS = 64  # tenant partners the mix rotates over
ALL_PARTNER = "bench-all"


def secret_for(name: str) -> str:
    """A fixed secret per bench partner, the same on every backend and run."""
    return "bench-" + hashlib.sha256(f"voip24h-bench:{name}".encode()).hexdigest()


def lean_tenants(shape: Shape) -> str:
    """The partner tenants' names, comma-separated, for the lean reference (LEAN_TENANTS)."""
    return ",".join(shape.tenant(t) for t in partner_tenants(shape))


def tenant_of_secret(names: str) -> dict[str, str]:
    """Secret -> tenant of the bench partners of the tenants ``names`` (lean_tenants)."""
    return {secret_for(f"bench-{name}"): name for name in names.split(",") if name}


def partner_tenants(shape: Shape) -> list[int]:
    """Indexes of the tenants that get a partner of their own (spread over all tenants)."""
    count = min(PARTNER_TENANTS, shape.tenants)
    return sorted({round(i * shape.tenants / count) % shape.tenants for i in range(count)})


@dataclass(frozen=True)
class Request:
    kind: str
    tenant: str
    user: str
    first: date
    last: date

    @property
    def partner(self) -> str:
        return f"bench-{self.tenant}"

    def body(self) -> dict[str, object]:
        data: dict[str, object] = {}
        if self.kind != "getDate":
            data["user"] = self.user
        if self.kind != "getUser":
            data["fromDate"] = self.first.strftime("%d/%m/%Y")
            data["toDate"] = self.last.strftime("%d/%m/%Y")
        # Only the protocol's fields (the server refuses others): the lean reference,
        # which has no auth, finds the partner's tenant from its secret (lean_tenants).
        return {"requestType": self.kind, "partnerSecret": secret_for(self.partner), "data": data}


def make_requests(shape: Shape, kind: str, count: int = 2000) -> list[Request]:
    """A deterministic mix: users of the partner tenants; getUserDate windows of 1..3
    months, getDate windows of 1..7 days, anywhere in the dataset's year."""
    rng = random.Random(f"{shape.rows}:{kind}")
    tenants = partner_tenants(shape)
    first_day = (SPAN_END - timedelta(days=SPAN_DAYS)).date()
    out = []
    for _ in range(count):
        tenant = rng.choice(tenants)
        user = str(rng.choice(shape.exts_of(tenant)))
        days = rng.randint(30, 91) if kind == "getUserDate" else rng.randint(1, 7)
        start = first_day + timedelta(days=rng.randrange(SPAN_DAYS - days))
        out.append(Request(kind, shape.tenant(tenant), user, start, start + timedelta(days - 1)))
    return out


def write_voip(requests: list[Request], path: Path) -> Path:
    """TSV for wrk: the protocol's POST (the server and the lean references)."""
    with path.open("w", encoding="utf-8") as out:
        for req in requests:
            body = json.dumps(req.body(), separators=(",", ":"))
            out.write(f"POST\t{PATH}\t{body}\n")
    return path


# The server's order: newest first, ties by callid then user, less the user where the
# request fixes it (records.order_for). The lean references and datasette use it too.
ORDER_BY = {
    "getUser": "call_ts DESC, callid DESC",
    "getDate": "call_ts DESC, callid DESC, user_ext DESC",
    "getUserDate": "call_ts DESC, callid DESC",
}
DATASETTE_SQL = {
    "getUser": "accountcode IN (:t) AND user_ext = :u",
    "getDate": "accountcode IN (:t) AND call_ts >= :s AND call_ts < :e",
    "getUserDate": "accountcode IN (:t) AND user_ext = :u AND call_ts >= :s AND call_ts < :e",
}


def _epochs(req: Request) -> tuple[int, int]:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    start = datetime(req.first.year, req.first.month, req.first.day, tzinfo=zone)
    end = datetime(req.last.year, req.last.month, req.last.day, tzinfo=zone) + timedelta(1)
    return int(start.timestamp()), int(end.timestamp())


def write_datasette(requests: list[Request], database: str, path: Path) -> Path:
    """TSV for wrk: the same SQL as a datasette canned-free ``?sql=`` query (GET)."""
    with path.open("w", encoding="utf-8") as out:
        for req in requests:
            start, end = _epochs(req)
            sql = (
                "SELECT callid, user_ext, phone_number, call_type, call_status, call_date "
                f"FROM call_records WHERE {DATASETTE_SQL[req.kind]} "
                f"ORDER BY {ORDER_BY[req.kind]} LIMIT 100001"
            )
            params = {"sql": sql, "_shape": "array", "t": req.tenant}
            if req.kind != "getDate":
                params["u"] = req.user
            if req.kind != "getUser":
                params["s"], params["e"] = str(start), str(end)
            out.write(f"GET\t/{database}.json?{urlencode(params)}\t\n")
    return path


def write_asterisk(requests: list[Request], path: Path) -> Path:
    """TSV for wrk: asterisk-cdr-api's nearest equivalent of getUserDate (GET /calls)."""
    with path.open("w", encoding="utf-8") as out:
        for req in requests:
            params = {
                "src": req.user,
                "date_from": req.first.isoformat(),
                "date_to": req.last.isoformat(),
                "limit": "500",
            }
            out.write(f"GET\t/calls?{urlencode(params)}\t\n")
    return path

"""``voip24h demo``: realistic synthetic Asterisk CDRs, a demo partner, and a running server."""

from __future__ import annotations

import json
import math
import random
import shlex
import struct
import wave
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click

from voip24h.cli.common import engine_for, settings_from
from voip24h.domain.dates import to_epoch

# Tenants of one PBX: note that acme and globex both have an extension 101..120.
TENANTS = {
    "acme": [str(n) for n in range(101, 141)],
    "globex": [str(n) for n in range(101, 121)] + [str(n) for n in range(201, 221)],
}
TRUNKS = ["viettel-trunk", "vnpt-trunk", "mobifone-trunk"]
MOBILE_PREFIXES = [
    "090",
    "093",
    "096",
    "097",
    "098",
    "086",
    "032",
    "033",
    "034",
    "035",
    "070",
    "077",
    "081",
    "083",
    "088",
    "091",
    "094",
]
LANDLINE_PREFIXES = ["024", "028", "0236", "0225", "0292"]
DISPOSITIONS = ["ANSWERED"] * 6 + ["NO ANSWER"] * 3 + ["BUSY", "FAILED", "CONGESTION"]

# The recording of the first seed call (FreePBX's name for it), so that recordingListen
# and recordingDownload of 1532857052.131132 answer a link that plays on a fresh demo.
SEED_RECORDING = "out-0982056720-137-20180729-163732-1532857052.131132.wav"
SEED_RECORDING_DAY = "2018/07/29"

# The two calls of the protocol's own samples, so they answer as documented.
SEED_CALLS = [
    ("1532857052.131132", datetime(2018, 7, 29, 16, 37, 32), "0982056720"),
    ("1532834934.130789", datetime(2018, 7, 29, 10, 28, 54), "0971828252"),
]


class _Calls:
    """Builds the CDR rows of realistic calls, FreePBX style (calldate, cnum, did, ...)."""

    def __init__(self, rng: random.Random, zone: Any):
        self.rng = rng
        self.zone = zone
        self.seq = 100000

    def number(self) -> str:
        if self.rng.random() < 0.8:
            return self.rng.choice(MOBILE_PREFIXES) + f"{self.rng.randrange(10**7):07d}"
        prefix = self.rng.choice(LANDLINE_PREFIXES)
        return prefix + "".join(str(self.rng.randrange(10)) for _ in range(11 - len(prefix)))

    def uid(self, start: datetime) -> str:
        self.seq += 1
        return f"{to_epoch(start, self.zone)}.{self.seq}"

    def chan(self, name: str) -> str:
        return f"PJSIP/{name}-{self.rng.randrange(16**8):08x}"

    def row(self, start: datetime, uniqueid: str, account: str, **fields: Any) -> dict[str, Any]:
        disposition = fields.pop("disposition")
        ring = self.rng.randint(2, 25)
        talk = self.rng.randint(5, 900) if disposition == "ANSWERED" else 0
        row = {
            "calldate": start,
            "uniqueid": uniqueid,
            "linkedid": uniqueid,
            "accountcode": account,
            "disposition": disposition,
            "duration": ring + talk,
            "billsec": talk,
            "amaflags": 3,
            "lastapp": "Dial",
            "dcontext": "from-internal",
        }
        row.update(fields)
        row.setdefault("clid", f'"{row.get("src", "")}" <{row.get("src", "")}>')
        return row

    def outbound(
        self,
        start: datetime,
        account: str,
        ext: str,
        to: str | None = None,
        uniqueid: str | None = None,
        disposition: str | None = None,
    ) -> list[dict[str, Any]]:
        to = to or self.number()
        trunk = self.rng.choice(TRUNKS)
        return [
            self.row(
                start,
                uniqueid or self.uid(start),
                account,
                src=ext,
                cnum=ext,
                dst=to,
                channel=self.chan(ext),
                dstchannel=self.chan(trunk),
                lastdata=f"PJSIP/{to}@{trunk},300,Tt",
                disposition=disposition or self.rng.choice(DISPOSITIONS),
            )
        ]

    def inbound(self, start: datetime, account: str, ext: str) -> list[dict[str, Any]]:
        caller, trunk = self.number(), self.rng.choice(TRUNKS)
        disposition = self.rng.choice(DISPOSITIONS)
        return [
            self.row(
                start,
                self.uid(start),
                account,
                src=caller,
                dst=ext,
                did="19001234",
                channel=self.chan(trunk),
                dcontext="from-trunk",
                dstchannel=self.chan(ext) if disposition != "FAILED" else "",
                disposition=disposition,
            )
        ]

    def internal(self, start: datetime, account: str, a: str, b: str) -> list[dict[str, Any]]:
        return [
            self.row(
                start,
                self.uid(start),
                account,
                src=a,
                cnum=a,
                dst=b,
                channel=self.chan(a),
                dstchannel=self.chan(b),
                disposition=self.rng.choice(["ANSWERED", "ANSWERED", "NO ANSWER", "BUSY"]),
            )
        ]

    def ring_group(
        self, start: datetime, account: str, agents: list[str], queue: bool
    ) -> list[dict[str, Any]]:
        """One inbound call ringing several agents: one row per agent, one uniqueid."""
        caller, trunk = self.number(), self.rng.choice(TRUNKS)
        uniqueid, trunk_chan = self.uid(start), self.chan(trunk)
        winner = self.rng.randrange(len(agents) + 1)  # len(agents): nobody answers
        rows = []
        for index, agent in enumerate(agents):
            dstchannel = (
                f"Local/{agent}@from-queue-{self.rng.randrange(16**8):08x};1"
                if queue
                else self.chan(agent)
            )
            rows.append(
                self.row(
                    start + timedelta(seconds=index % 2),
                    uniqueid,
                    account,
                    src=caller,
                    dst="600" if queue else "601",
                    did="19001234",
                    channel=trunk_chan,
                    dstchannel=dstchannel,
                    dcontext="from-trunk",
                    lastapp="Queue" if queue else "Dial",
                    disposition="ANSWERED" if index == winner else "NO ANSWER",
                )
            )
        return rows

    def ivr_only(self, start: datetime, account: str) -> list[dict[str, Any]]:
        return [
            self.row(
                start,
                self.uid(start),
                account,
                src=self.number(),
                dst="s",
                channel=self.chan(self.rng.choice(TRUNKS)),
                dstchannel="",
                lastapp="BackGround",
                dcontext="ivr-1",
                disposition="ANSWERED",
            )
        ]


def write_recording(recordings_dir: str) -> Path:
    """The seed call's recording, in the monitor layout: one second of a quiet 440 Hz
    tone, an 8 kHz 16-bit mono WAV (16 KB) any player opens."""
    path = Path(recordings_dir, SEED_RECORDING_DAY, SEED_RECORDING)
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = 8000
    samples = (round(3000 * math.sin(2 * math.pi * 440 * n / rate)) for n in range(rate))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"".join(struct.pack("<h", value) for value in samples))
    return path


def demo_rows(calls: int, zone: Any, now: datetime, seed: int = 24) -> Iterator[dict[str, Any]]:
    """Deterministic demo CDR rows: mid-2018 (the protocol samples' dates) and the last 30 days."""
    rng = random.Random(seed)
    make = _Calls(rng, zone)
    for index, (uniqueid, start, number) in enumerate(SEED_CALLS):
        rows = make.outbound(start, "acme", "137", number, uniqueid, "NO ANSWER")
        if index == 0:
            rows[0]["recordingfile"] = SEED_RECORDING
        yield from rows
    windows = [(datetime(2018, 6, 1), datetime(2018, 7, 31)), (now - timedelta(days=30), now)]
    for index in range(calls):
        first, last = windows[index % 2]
        span = int((last - first).total_seconds())
        start = (first + timedelta(seconds=rng.randrange(span))).replace(microsecond=0)
        if not 7 <= start.hour < 21:
            start = start.replace(hour=rng.randint(8, 19))
        account = rng.choice(list(TENANTS))
        exts = TENANTS[account]
        kind = rng.random()
        if kind < 0.35:
            yield from make.outbound(start, account, rng.choice(exts))
        elif kind < 0.65:
            yield from make.inbound(start, account, rng.choice(exts))
        elif kind < 0.8:
            a, b = rng.sample(exts, 2)
            yield from make.internal(start, account, a, b)
        elif kind < 0.95:
            yield from make.ring_group(start, account, rng.sample(exts, 3), queue=kind < 0.88)
        else:
            yield from make.ivr_only(start, account)


@click.command()
@click.option(
    "--db",
    "database_url",
    default="sqlite:///voip24h-demo.db",
    show_default=True,
    metavar="URL",
    help="Database to fill with demo data.",
)
@click.option(
    "--recordings",
    "recordings_dir",
    default="voip24h-demo-recordings",
    show_default=True,
    metavar="DIR",
    help="Directory the demo's call recording is written to, and served from.",
)
@click.option("--host", default=None, help="Listen address [default 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Listen port [default 8024].")
@click.option(
    "--calls",
    type=click.IntRange(1, 2_000_000),
    default=4000,
    show_default=True,
    help="How many synthetic calls to generate.",
)
@click.option(
    "--serve/--no-serve",
    default=True,
    show_default=True,
    help="Start the server once the data is loaded.",
)
@click.pass_context
def demo(
    ctx: click.Context,
    database_url: str,
    recordings_dir: str,
    host: str | None,
    port: int | None,
    calls: int,
    serve: bool,
) -> None:
    """Create a demo database with realistic CDRs, add two partners, print their secrets, serve.

    Running it again keeps the data (loading is idempotent) and issues the demo
    partner a fresh secret.
    """
    from voip24h.cli.serving import run_server
    from voip24h.db import migrate
    from voip24h.domain import cdr
    from voip24h.ingest.loader import Loader
    from voip24h.service import partner_admin

    settings = settings_from(
        ctx, database_url=database_url, recordings_dir=recordings_dir, host=host, port=port
    )
    write_recording(settings.recordings_dir)
    engine = engine_for(settings)
    migrate.upgrade(engine)
    loader = Loader(engine, settings)
    loader.check_ready()
    # Whole days, so running the demo again the same day adds nothing new.
    now = datetime.now(settings.zone).replace(
        tzinfo=None, hour=0, minute=0, second=0, microsecond=0
    )
    rows = (cdr.normalize(row, settings.zone) for row in demo_rows(calls, settings.zone, now))
    stats = loader.load(rows)
    if partner_admin.find_exists(engine, "demo"):
        issued = partner_admin.rotate(engine, "demo", timedelta(0))
    else:
        issued = partner_admin.add(engine, "demo", [], [])
    if partner_admin.find_exists(engine, "acme-crm"):
        tenant = partner_admin.rotate(engine, "acme-crm", timedelta(0))
    else:
        tenant = partner_admin.add(engine, "acme-crm", ["acme"], ["100-199"])
    engine.dispose()
    url = f"http://{settings.host}:{settings.port}/api/v1/partner/voip24h"
    body = json.dumps(
        {
            "requestType": "getUserDate",
            "partnerSecret": issued.secret,
            "data": {"user": "137", "fromDate": "01/07/2018", "toDate": "30/07/2018"},
        }
    )
    click.echo(
        f"Demo database {database_url}: {stats.inserted:,} new CDR rows "
        f"({calls:,} calls; already loaded rows are skipped)."
    )
    click.echo(f"Partner 'demo' sees every tenant. Its secret: {issued.secret}")
    click.echo(
        "Partner 'acme-crm' sees tenant acme, extensions 100-199 only. "
        f"Its secret: {tenant.secret}\n"
    )
    click.echo("Try it (in another terminal):\n")
    click.echo(
        f"curl -s -X POST {url} -H 'Content-Type: application/json' -d {shlex.quote(body)}\n"
    )
    click.echo(
        f"Every request type, tried in the browser: http://{settings.host}:{settings.port}/docs "
        "(the OpenAPI document is /openapi.json)\n"
    )
    if serve:
        run_server(settings)

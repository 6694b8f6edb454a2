"""Deterministic, realistic CDR datasets for the bench: a hosted multi-tenant PBX.

A dataset of N rows is one year of calls of a PBX hosting many tenants (accountcode
``tNNNN``), 20 extensions each, with globally unique 5-digit extension numbers.
The number of tenants grows with N, so every extension makes about the same number
of calls per day at every size: an answer for one extension (or one tenant) over a
given window holds about as many records at 1M rows as at 10M. That is what lets
the bench compare latency across table sizes fairly (the growth target).

Rows are written as an Asterisk Master.csv (``loguniqueid`` + ``newcdrcolumns``
layout, 20 columns) and loaded with ``voip24h import``: the project's own path.
"""

from __future__ import annotations

import csv
import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

EXTS_PER_TENANT = 20
FIRST_EXT = 10000
# One year of history ending at a fixed day, so windows are the same on every run.
SPAN_END = datetime(2026, 1, 1)
SPAN_DAYS = 365
# Records per extension over the span: ~1.45 a day, so a 1..3 month window of one
# extension holds ~87 records on average (the reference answer size).
RECORDS_PER_EXT = 530
RECORDS_PER_ROW = 1.125  # see the call mix below
GENERATOR_VERSION = 2

MOBILE = ("090", "093", "096", "097", "098", "086", "032", "033", "034", "035", "070", "091")
TRUNKS = ("viettel-trunk", "vnpt-trunk", "mobifone-trunk")
DISPOSITIONS = ("ANSWERED",) * 6 + ("NO ANSWER",) * 3 + ("BUSY", "FAILED", "CONGESTION")


@dataclass(frozen=True)
class Shape:
    """How a dataset of ``rows`` rows is laid out."""

    rows: int
    seed: int = 24

    @property
    def extensions(self) -> int:
        wanted = math.ceil(self.rows * RECORDS_PER_ROW / RECORDS_PER_EXT)
        return max(EXTS_PER_TENANT, math.ceil(wanted / EXTS_PER_TENANT) * EXTS_PER_TENANT)

    @property
    def tenants(self) -> int:
        return self.extensions // EXTS_PER_TENANT

    def tenant(self, index: int) -> str:
        return f"t{index:04d}"

    def tenant_of(self, ext: int) -> str:
        return self.tenant((ext - FIRST_EXT) // EXTS_PER_TENANT)

    def exts_of(self, tenant_index: int) -> range:
        first = FIRST_EXT + tenant_index * EXTS_PER_TENANT
        return range(first, first + EXTS_PER_TENANT)

    @property
    def name(self) -> str:
        return f"cdr-{label(self.rows)}-s{self.seed}-v{GENERATOR_VERSION}"


def label(rows: int) -> str:
    """1000000 -> '1M', 20000 -> '20k'."""
    if rows <= 0:
        return "-"
    if rows % 1_000_000 == 0:
        return f"{rows // 1_000_000}M"
    if rows % 1000 == 0:
        return f"{rows // 1000}k"
    return str(rows)


def parse_size(text: str) -> int:
    """'1M' / '10m' / '20k' / '5000' -> rows."""
    text = text.strip().lower()
    factor = {"k": 1000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * factor)


def _q(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def write_master_csv(shape: Shape, path: Path) -> int:
    """Write the dataset as a Master.csv; return the number of rows written."""
    rng = random.Random(shape.seed)
    rand, randrange, choice = rng.random, rng.randrange, rng.choice
    exts = shape.extensions
    start = SPAN_END - timedelta(days=SPAN_DAYS)
    span = SPAN_DAYS * 86400
    # Calls come in time order, as Asterisk appends them; ~1.2 rows per call.
    calls = max(1, round(shape.rows / 1.2))
    step = span / calls
    base_epoch = int(start.timestamp())  # naive: only used for uniqueid text
    written = 0
    seq = 0
    tmp = path.with_suffix(".part")
    with tmp.open("w", encoding="utf-8", newline="") as out:
        write = out.write
        for index in range(calls):
            if written >= shape.rows:
                break
            offset = int(index * step + rand() * step)
            moment = start + timedelta(seconds=offset)
            # Office hours: push night calls into the day, keeping the date.
            if moment.hour < 7 or moment.hour >= 21:
                moment = moment.replace(hour=8 + randrange(12))
            text_start = moment.strftime("%Y-%m-%d %H:%M:%S")
            seq += 1
            uid = f"{base_epoch + offset}.{seq}"
            ext = FIRST_EXT + randrange(exts)
            account = shape.tenant_of(ext)
            kind = rand()
            if kind < 0.40:  # outbound: 1 row, 1 record
                number = choice(MOBILE) + f"{randrange(10**7):07d}"
                trunk = choice(TRUNKS)
                rows = [
                    (
                        account,
                        str(ext),
                        number,
                        "from-internal",
                        f'"{ext}" <{ext}>',
                        f"PJSIP/{ext}-{randrange(16**8):08x}",
                        f"PJSIP/{trunk}-{randrange(16**8):08x}",
                        "Dial",
                        f"PJSIP/{number}@{trunk},300,Tt",
                        choice(DISPOSITIONS),
                    )
                ]
            elif kind < 0.75:  # inbound: 1 row, 1 record
                number = choice(MOBILE) + f"{randrange(10**7):07d}"
                trunk = choice(TRUNKS)
                rows = [
                    (
                        account,
                        number,
                        str(ext),
                        "from-trunk",
                        f'"{number}" <{number}>',
                        f"PJSIP/{trunk}-{randrange(16**8):08x}",
                        f"PJSIP/{ext}-{randrange(16**8):08x}",
                        "Dial",
                        f"PJSIP/{ext},30,tr",
                        choice(DISPOSITIONS),
                    )
                ]
            elif kind < 0.90:  # internal: 1 row, 2 records
                other = shape.exts_of((ext - FIRST_EXT) // EXTS_PER_TENANT)[randrange(20)]
                if other == ext:
                    other = ext + 1 if (ext - FIRST_EXT) % EXTS_PER_TENANT < 19 else ext - 1
                rows = [
                    (
                        account,
                        str(ext),
                        str(other),
                        "from-internal",
                        f'"{ext}" <{ext}>',
                        f"PJSIP/{ext}-{randrange(16**8):08x}",
                        f"PJSIP/{other}-{randrange(16**8):08x}",
                        "Dial",
                        f"PJSIP/{other},30,tr",
                        choice(("ANSWERED", "ANSWERED", "NO ANSWER", "BUSY")),
                    )
                ]
            else:  # queue ringing 3 agents: 3 rows of one uniqueid, 3 records
                number = choice(MOBILE) + f"{randrange(10**7):07d}"
                trunk_chan = f"PJSIP/{choice(TRUNKS)}-{randrange(16**8):08x}"
                team = shape.exts_of((ext - FIRST_EXT) // EXTS_PER_TENANT)
                agents = rng.sample(team, 3)
                winner = randrange(4)
                rows = [
                    (
                        account,
                        number,
                        "600",
                        "from-trunk",
                        f'"{number}" <{number}>',
                        trunk_chan,
                        f"Local/{agent}@from-queue-{randrange(16**8):08x};1",
                        "Queue",
                        "600,t",
                        "ANSWERED" if i == winner else "NO ANSWER",
                    )
                    for i, agent in enumerate(agents)
                ]
            for leg, (acc, src, dst, ctx, clid, chan, dchan, app, data, disp) in enumerate(rows):
                talk = randrange(5, 900) if disp == "ANSWERED" else 0
                ring = randrange(2, 25)
                answer = (
                    (moment + timedelta(seconds=ring)).strftime("%Y-%m-%d %H:%M:%S") if talk else ""
                )
                end = (moment + timedelta(seconds=ring + talk)).strftime("%Y-%m-%d %H:%M:%S")
                write(
                    ",".join(
                        (
                            _q(acc),
                            _q(src),
                            _q(dst),
                            _q(ctx),
                            _q(clid),
                            _q(chan),
                            _q(dchan),
                            _q(app),
                            _q(data),
                            _q(text_start),
                            _q(answer),
                            _q(end),
                            str(ring + talk),
                            str(talk),
                            _q(disp),
                            _q("DOCUMENTATION"),
                            _q(uid),
                            _q(""),
                            _q(uid),
                            str(leg),
                        )
                    )
                    + "\n"
                )
                written += 1
    tmp.replace(path)
    return written


def master_csv_columns() -> str:
    """The `voip24h import` flags of the layout written above."""
    return "--loguniqueid --newcdrcolumns"


def check_csv(path: Path, expected_columns: int = 20) -> None:
    """Raise if the first line does not have the expected column count."""
    with path.open(encoding="utf-8", newline="") as handle:
        first = next(csv.reader(handle))
    if len(first) != expected_columns:
        raise ValueError(f"{path}: {len(first)} columns, expected {expected_columns}")

"""Property tests (hypothesis): the date parser, the Master.csv reader and the mapping
rules never fail with anything but their own errors, and round-trip what they read."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from voip24h import errors
from voip24h.domain import cdr as cdr_rules
from voip24h.domain.dates import (
    CALL_DATE_FORMAT,
    MAX_YEAR,
    MIN_YEAR,
    day_window,
    format_day,
    parse_day,
    render_epoch,
    to_epoch,
)
from voip24h.domain.mapping import (
    ExtensionMatcher,
    disposition_rank,
    endpoint_name,
    records_for_call,
    row_start,
)
from voip24h.ingest.csvstream import RecordSplitter
from voip24h.ingest.layouts import ALL_LAYOUTS
from voip24h.ingest.rows import RowParser

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
ZONES = [HCM, ZoneInfo("UTC"), ZoneInfo("Europe/Paris"), ZoneInfo("America/New_York")]
FUZZ = settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
days = st.dates(min_value=date(MIN_YEAR, 1, 1), max_value=date(MAX_YEAR, 12, 31))
junk = st.one_of(
    st.text(max_size=30),
    st.from_regex(r"[0-9]{1,3}/[0-9]{1,3}/[0-9]{1,5}", fullmatch=True),
    st.integers(),
    st.none(),
    st.floats(allow_nan=True),
    st.lists(st.integers(), max_size=2),
)


# --- dates -------------------------------------------------------------------------


@seed(1)
@FUZZ
@given(days)
def test_day_format_and_parse_round_trip(day):
    assert parse_day(format_day(day)) == day
    assert parse_day(f"{day.day}/{day.month}/{day.year}") == day  # one-digit forms too


@seed(2)
@FUZZ
@given(junk)
def test_day_parser_fails_only_with_invalid_date(value):
    try:
        parsed = parse_day(value)
    except errors.InvalidDate as exc:
        assert exc.status == 400 and exc.message
    else:
        assert isinstance(parsed, date) and format_day(parsed) == (
            value if len(value) == 10 else format_day(parsed)
        )


@seed(3)
@FUZZ
@given(
    st.one_of(days.map(format_day), junk),
    st.one_of(days.map(format_day), junk),
    st.sampled_from(ZONES),
    st.integers(min_value=1, max_value=400),
)
def test_day_window_is_whole_days_or_a_client_error(first, last, zone, max_days):
    try:
        window = day_window(first, last, zone, max_days)
    except errors.ApiError as exc:
        assert exc.status == 400
        return
    span = (window.last - window.first).days + 1
    assert 1 <= span <= max_days
    # Whole local days: 24 h each, give or take the DST shifts inside the window.
    assert abs((window.end - window.start) - span * 86400) <= 2 * 3600
    assert render_epoch(window.start, zone).endswith("00:00:00")


@seed(4)
@FUZZ
@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2999, 12, 31)))
def test_call_date_epoch_round_trip(moment):
    moment = moment.replace(microsecond=0)
    assert render_epoch(to_epoch(moment, HCM), HCM) == moment.strftime(CALL_DATE_FORMAT)


# --- Master.csv ----------------------------------------------------------------------

text_value = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20
)
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1)).map(
    lambda m: m.replace(microsecond=0)
)


@st.composite
def master_rows(draw):
    layout = draw(st.sampled_from(ALL_LAYOUTS))
    start = draw(moments)
    values = {}
    for name in layout.columns:
        if name == "start":
            values[name] = start.strftime(CALL_DATE_FORMAT)
        elif name in ("answer", "end"):
            values[name] = draw(
                st.sampled_from(["", (start + timedelta(seconds=5)).strftime(CALL_DATE_FORMAT)])
            )
        elif name in ("duration", "billsec", "sequence"):
            values[name] = str(draw(st.integers(min_value=0, max_value=10**6)))
        elif name == "amaflags":
            values[name] = draw(st.sampled_from(["DOCUMENTATION", "BILLING", "OMIT", "3"]))
        else:
            values[name] = draw(text_value)
    return layout, values


def to_csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    return out.getvalue().encode("utf-8")


def split_into(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@seed(5)
@FUZZ
@given(st.lists(master_rows(), min_size=1, max_size=5), st.lists(st.integers(0, 2000), max_size=6))
def test_master_csv_round_trips_whatever_the_chunking(rows, cuts):
    layout = rows[0][0]
    rows = [(layout, values) for _, values in rows if _ == layout] or rows[:1]
    data = to_csv([[values[c] for c in layout.columns] for _, values in rows])
    splitter = RecordSplitter(len(layout.columns))
    records = [r for chunk in split_into(data, cuts) for r in splitter.feed(chunk)]
    records += list(splitter.finish())
    parser = RowParser(layout.columns, HCM)
    parsed = [parser.parse(record) for record in records]
    assert len(parsed) == len(rows)
    for line, (_, values) in zip(parsed, rows, strict=True):
        row = line.row
        if row is None:  # only values the cdr columns cannot hold are refused
            assert line.error, line
            controls = any(cdr_rules.CONTROL.search(v) for v in values.values())
            assert "too long" in line.error or (
                line.error.startswith("control character") and controls
            ), line.error
            continue
        for name in ("src", "dst", "clid", "channel", "dstchannel", "disposition", "accountcode"):
            assert row[name] == values[name]
        assert row["calldate"].strftime(CALL_DATE_FORMAT) == values["start"]
        assert row["billsec"] == int(values["billsec"])


@seed(6)
@FUZZ
@given(st.binary(max_size=400), st.sampled_from(ALL_LAYOUTS), st.lists(st.integers(0, 400)))
def test_master_csv_reader_never_crashes_on_garbage(data, layout, cuts):
    splitter = RecordSplitter(len(layout.columns), max_record_bytes=256)
    parser = RowParser(layout.columns, HCM, usegmtime=True)
    records = [r for chunk in split_into(data, cuts) for r in splitter.feed(chunk)]
    for record in [*records, *splitter.finish()]:
        line = parser.parse(record)
        assert (line.row is None) != (line.error is None)


# --- mapping rules -------------------------------------------------------------------

MATCHER = ExtensionMatcher("[0-9]{2,6}")
endpoints = st.sampled_from(["101", "102", "137", "viettel-trunk", "IVR", "", "1", "0137"])
channels = st.one_of(
    st.builds(
        lambda tech, name: f"{tech}/{name}-0000002a", st.sampled_from(["PJSIP", "SIP"]), endpoints
    ),
    st.builds(lambda name: f"Local/{name}@from-queue-0001;1", endpoints),
    st.sampled_from(["", "garbage", "PJSIP/", "/-"]),
    st.text(max_size=12),
)
dispositions = st.sampled_from(
    ["ANSWERED", "NO ANSWER", "BUSY", "FAILED", "CONGESTION", "CANCEL", "", "weird"]
)


@st.composite
def cdr_rows(draw):
    return {
        "uniqueid": "1532857052.1",
        "calldate": draw(moments),
        "channel": draw(channels),
        "dstchannel": draw(channels),
        "src": draw(st.sampled_from(["101", "0982056720", ""])),
        "dst": draw(st.sampled_from(["102", "0971828252", "s", ""])),
        "cnum": draw(st.sampled_from(["", "101", "x"])),
        "disposition": draw(dispositions),
        "billsec": draw(st.one_of(st.integers(0, 500), st.just(None), st.just("x"))),
        "lastapp": draw(st.sampled_from(["Dial", "Queue", "Park", "VoiceMailMain", "", "dial"])),
        "accountcode": draw(st.sampled_from(["acme", ""])),
        "peeraccount": draw(st.sampled_from(["", "beta"])),
    }


def _sides(row):
    """The extensions a row names as its parties (docs/mapping.md, rule 2)."""
    found = {endpoint_name(row["channel"]), endpoint_name(row["dstchannel"]), row["cnum"]}
    if not row["dstchannel"] and row["lastapp"].lower() == "dial":
        found.add(row["dst"])
    return {name for name in found if MATCHER.is_extension(name)}


@seed(7)
@FUZZ
@given(st.lists(cdr_rows(), max_size=6), st.randoms(use_true_random=False))
def test_mapping_rules_hold_for_any_rows(rows, rnd):
    records = records_for_call(rows, MATCHER, HCM)
    users = [r.user for r in records]
    assert len(users) == len(set(users))  # at most one record per (callId, user)
    for record in records:
        assert MATCHER.is_extension(record.user)
        # Only an extension side of some row is a user, never a number in dst alone.
        assert any(record.user in _sides(row) for row in rows), record
        assert not (record.call_type == "INTERNAL" and record.phone_number == record.user)
        assert record.accountcode in {r["accountcode"] for r in rows} | {"beta"}
        assert record.call_type in ("INTERNAL", "EXTERNAL")
        mine = [row for row in rows if any(leg for leg in _legs_of(row) if leg == record.user)]
        assert record.call_date == min(row_start(r) for r in mine).strftime(CALL_DATE_FORMAT)
        best = min(disposition_rank(r["disposition"]) for r in mine)
        assert disposition_rank(record.call_status) == best
    shuffled = list(rows)
    rnd.shuffle(shuffled)
    again = records_for_call(shuffled, MATCHER, HCM)
    assert _summary(again) == _summary(records)  # row order never changes the answer


def _legs_of(row):
    from voip24h.domain.mapping import legs

    return [leg[0] for leg in legs(row, MATCHER)]


def _summary(records):
    return sorted(
        # On a tie (same rank and billsec) the first row wins, so call type and
        # phone number may follow the order; these may not.
        (r.user, r.call_date, disposition_rank(r.call_status), r.billsec)
        for r in records
    )

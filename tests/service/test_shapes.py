"""service/shapes.py on its own: a query's statement shape and its bind values.

Besides the values themselves, each case compiles the statement the shape stands for
(SQLAlchemy's default dialect, no database) and checks that the values fill exactly
the statement's bind parameters: one missing would fail at the database, one too many
would be a condition the statement does not have.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from voip24h.db.queries import call_records
from voip24h.db.queries.call_records import Shape
from voip24h.domain.dates import Window
from voip24h.domain.partners import Scope
from voip24h.service.shapes import columns_for, shape_of
from voip24h.service.translate import Filters, RecordingQuery, RecordQuery, StatsQuery
from voip24h.wire.cursor import Cursor

DAYS = Window(date(2026, 3, 1), date(2026, 3, 2), 1_772_298_000, 1_772_470_800)
AFTER = Cursor(1_772_300_000, "1772300000.4", "101")


def binds(statement: Any) -> set[str]:
    """The bind parameters the statement leaves to the caller (constants excluded)."""
    return {name for name, value in statement.compile().params.items() if value is None}


def test_a_seed_query_has_no_condition_and_no_values():
    shape, params = shape_of(RecordQuery(None, None))
    assert shape == Shape()
    assert params == {}
    assert binds(call_records.select_shaped(Scope(), shape)) == {"limit"}


def test_one_user_over_a_window():
    shape, params = shape_of(RecordQuery("101", DAYS))
    assert shape == Shape(by_user=True, by_window=True)
    assert params == {"user": "101", "start": DAYS.start, "end": DAYS.end}


def test_one_call_binds_its_id_twice_for_the_call_and_its_linked_legs():
    shape, params = shape_of(RecordQuery(None, None, call="c.1"))
    assert shape == Shape(by_call=True)
    assert params == {"call": "c.1", "call_2": "c.1"}
    assert binds(call_records.select_shaped(Scope(), shape)) == {*params, "limit"}


def test_every_filter_and_the_cursor_together():
    filters = Filters(("ANSWERED", "BUSY"), "EXTERNAL", "INBOUND", "098", prefix=False)
    query = RecordQuery("101", DAYS, filters=filters, limit=20, after=AFTER)
    shape, params = shape_of(query)
    assert shape == Shape(
        by_user=True, by_window=True, statuses=2, by_call_type=True, by_direction=True,
        phone="exact", after=True,
    )  # fmt: skip
    assert params == {
        "user": "101", "start": DAYS.start, "end": DAYS.end,
        "status_0": "ANSWERED", "status_1": "BUSY", "call_type": "EXTERNAL",
        "direction": "INBOUND", "phone": "098",
        "after_ts": AFTER.call_ts, "after_id": AFTER.callid, "after_user": AFTER.user,
    }  # fmt: skip
    assert binds(call_records.select_shaped(Scope(), shape)) == {*params, "limit"}


@pytest.mark.parametrize(
    ("prefix", "pattern"),
    [("098", "098%"), ("09%", "09/%%"), ("0_8", "0/_8%"), ("0/9", "0//9%")],
)
def test_a_phone_prefix_binds_an_escaped_like_pattern(prefix, pattern):
    shape, params = shape_of(RecordQuery(None, None, filters=Filters(phone=prefix, prefix=True)))
    assert shape.phone == "prefix"
    assert params == {"phone_like": pattern}
    assert binds(call_records.select_shaped(Scope(), shape)) == {"phone_like", "limit"}


def test_the_shape_depends_on_which_options_are_used_never_on_their_values():
    one = shape_of(RecordQuery("101", DAYS, filters=Filters(("ANSWERED",), phone="1")))
    two = shape_of(RecordQuery("202", None, filters=Filters(("BUSY",), phone="2")))
    assert one[0] != two[0]  # a window is a condition of its own
    three = shape_of(RecordQuery("202", DAYS, filters=Filters(("BUSY",), phone="2")))
    assert one[0] == three[0] and hash(one[0]) == hash(three[0])
    assert one[1] != three[1]


def test_a_recording_query_binds_the_call_but_is_not_a_by_call_shape():
    shape, params = shape_of(RecordingQuery("c.9", download=True))
    assert shape == Shape()
    assert params == {"call": "c.9", "call_2": "c.9"}
    assert binds(call_records.select_recordings(Scope(), shape)) == {"call", "limit"}


def test_a_recording_query_carries_its_filters():
    shape, params = shape_of(RecordingQuery("c.9", False, Filters(call_type="INTERNAL")))
    assert shape == Shape(by_call_type=True)
    assert params["call_type"] == "INTERNAL"


@pytest.mark.parametrize("hourly", [False, True])
def test_a_stats_query_binds_user_window_and_filters(hourly):
    query = StatsQuery("101", DAYS, hourly, Filters(direction="OUTBOUND"))
    shape, params = shape_of(query)
    assert shape == Shape(by_user=True, by_window=True, by_direction=True)
    assert params == {"user": "101", "start": DAYS.start, "end": DAYS.end,
                      "direction": "OUTBOUND"}  # fmt: skip
    assert binds(call_records.select_stats(Scope(), shape, hourly=hourly)) == {*params, "limit"}


def test_columns_are_the_seed_six_then_the_asked_fields_then_the_key():
    plain = columns_for(())
    assert [c.name for c in plain] == [
        "callid", "user_ext", "phone_number", "call_type", "call_status", "call_date",
        "call_ts", "callid", "user_ext",
    ]  # fmt: skip
    asked = columns_for(("duration", "hasRecording"))
    assert [c.name for c in asked[6:8]] == ["duration", "recordingfile"]
    assert len(asked) == len(plain) + 2

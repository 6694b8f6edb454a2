"""service/translate.py on its own: request data -> the frozen typed Query.

The data goes through wire/protocol.py:parse_data first, as on the server, so each
case reads as what a partner sends. No HTTP, no database.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest

from voip24h import errors
from voip24h.config import Settings
from voip24h.domain.dates import Window
from voip24h.domain.mapping import ExtensionMatcher
from voip24h.service.dial import DialQuery
from voip24h.service.translate import (
    NO_FILTERS,
    Filters,
    RecordingQuery,
    RecordQuery,
    StatsQuery,
    to_query,
)
from voip24h.wire import cursor
from voip24h.wire.protocol import EXTENDED_FIELDS, Envelope, parse_data

PLUS7 = timezone(timedelta(hours=7))  # Asia/Ho_Chi_Minh, the default zone: no DST
SETTINGS = Settings().replace(max_range_days=31, page_size=50, max_page_size=200)
MATCHER = ExtensionMatcher(SETTINGS.extension_pattern, SETTINGS.extensions)
MARCH = {"fromDate": "01/03/2026", "toDate": "02/03/2026"}


def midnight(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=PLUS7).timestamp())


MARCH_WINDOW = Window(date(2026, 3, 1), date(2026, 3, 2), midnight(date(2026, 3, 1)),
                      midnight(date(2026, 3, 3)))  # fmt: skip


def query(request_type: str, settings: Settings = SETTINGS, **data: Any) -> Any:
    return to_query(parse_data(Envelope(request_type, None, data)), settings, MATCHER)


# --- the seed's request types: nothing opt-in set ------------------------------------


def test_get_user_is_one_users_records_over_all_time():
    assert query("getUser", user="101") == RecordQuery("101", None)
    assert query("getUser", user=101) == RecordQuery("101", None)  # a number is the same user


def test_get_date_is_every_users_records_in_whole_local_days():
    q = query("getDate", **MARCH)
    assert q == RecordQuery(None, MARCH_WINDOW)
    assert q.window.end - q.window.start == 2 * 86400


def test_get_date_ignores_its_user_field():
    assert query("getDate", user="101", **MARCH) == RecordQuery(None, MARCH_WINDOW)


def test_get_user_date_is_one_user_in_a_window():
    assert query("getUserDate", user="205", **MARCH) == RecordQuery("205", MARCH_WINDOW)


def test_get_call_data_narrows_to_one_call():
    assert query("getCallData", callId="1700000000.7") == RecordQuery(
        None, None, call="1700000000.7"
    )


def test_a_seed_shaped_query_has_every_opt_in_part_at_its_default():
    q = query("getUser", user="101")
    assert (q.call, q.filters, q.fields, q.limit, q.after, q.format) == (
        None, NO_FILTERS, (), None, None, "json",
    )  # fmt: skip


def test_queries_are_frozen():
    q = query("getUser", user="101")
    with pytest.raises(dataclasses.FrozenInstanceError):
        q.user = "102"


# --- filters -------------------------------------------------------------------------


def test_every_filter_is_carried_and_statuses_are_upper_case_without_repeats():
    q = query(
        "getUser", user="101", callStatus=["answered", "BUSY", "Answered"],
        callType="EXTERNAL", direction="INBOUND", phoneNumber="0987654321",
    )  # fmt: skip
    assert q.filters == Filters(("ANSWERED", "BUSY"), "EXTERNAL", "INBOUND", "0987654321", False)


@pytest.mark.parametrize(
    ("data", "phone"),
    [({"phonePrefix": "098"}, "098"), ({"phoneNumber": "098*"}, "098")],
)
def test_a_prefix_is_phone_prefix_or_a_number_ending_in_a_star(data, phone):
    assert query("getUser", user="101", **data).filters == Filters(phone=phone, prefix=True)


def test_a_star_elsewhere_is_part_of_the_exact_number():
    assert query("getUser", user="101", phoneNumber="*98").filters == Filters(phone="*98")


def test_filters_reach_recording_and_stats_queries_too():
    assert query("recordingListen", callId="c1", callType="INTERNAL").filters == Filters(
        call_type="INTERNAL"
    )
    assert query("getStats", direction="OUTBOUND", **MARCH).filters == Filters(direction="OUTBOUND")


# --- extended fields, paging, export -------------------------------------------------


def test_fields_come_in_the_documented_order_whatever_the_request_order():
    q = query("getUser", user="101", fields=["hasRecording", "duration", "duration"])
    assert q.fields == ("duration", "hasRecording")


def test_extended_true_asks_for_every_extended_field():
    assert query("getUser", user="101", extended=True).fields == EXTENDED_FIELDS
    assert query("getUser", user="101", extended=False).fields == ()


def test_a_limit_asks_for_one_page_and_a_cursor_continues_after_its_record():
    after = cursor.Cursor(1_772_000_000, "1772000000.5", "101")
    q = query("getDate", limit=20, cursor=after.encode(), **MARCH)
    assert (q.limit, q.after) == (20, after)


def test_a_cursor_without_limit_pages_with_the_servers_page_size():
    after = cursor.Cursor(5, "c", "101")
    assert query("getUser", user="101", cursor=after.encode()).limit == 50


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_an_export_format_is_carried_without_paging(fmt):
    q = query("getUserDate", user="101", format=fmt, **MARCH)
    assert (q.format, q.limit, q.after) == (fmt, None, None)


def test_get_call_data_takes_a_format_but_has_no_paging():
    q = query("getCallData", callId="c1", format="csv")
    assert (q.format, q.limit) == ("csv", None)


# --- recordings, stats, makeDial -----------------------------------------------------


def test_recording_listen_and_download_differ_only_in_download():
    assert query("recordingListen", callId="c1") == RecordingQuery("c1", False, NO_FILTERS)
    assert query("recordingDownload", callId="c1") == RecordingQuery("c1", True, NO_FILTERS)


def test_stats_by_day_or_hour_for_every_user_or_one():
    assert query("getStats", **MARCH) == StatsQuery(None, MARCH_WINDOW, False)
    assert query("getStats", user=101, groupBy="hour", **MARCH) == StatsQuery(
        "101", MARCH_WINDOW, True
    )


def test_make_dial_carries_user_number_and_idempotency_key():
    assert query("makeDial", user=101, phoneNumber="+84987") == DialQuery("101", "+84987", None)
    assert query("makeDial", user="101", phoneNumber="0987", idempotencyKey="k1") == DialQuery(
        "101", "0987", "k1"
    )


# --- refusals: the error class, its code and the message a partner reads ------------


@pytest.mark.parametrize(
    ("request_type", "data", "error", "message"),
    [
        ("getUser", {"user": "trunk-1"}, errors.InvalidUser,
         "user 'trunk-1' is not an extension number of this PBX."),
        ("getUser", {"user": "9" * 41}, errors.InvalidUser,
         f"user '{'9' * 40}…' is not an extension number of this PBX."),
        ("getStats", {"user": "x", **MARCH}, errors.InvalidUser,
         "user 'x' is not an extension number of this PBX."),
        ("getUser", {"user": "101", "phoneNumber": "0", "phonePrefix": "0"}, errors.InvalidField,
         "Send data.phoneNumber or data.phonePrefix, not both."),
        ("getUser", {"user": "101", "phoneNumber": "*"}, errors.InvalidField,
         "data.phoneNumber: '*' needs at least one digit before it."),
        ("getUser", {"user": "101", "extended": True, "fields": ["did"]}, errors.InvalidField,
         "Send data.extended or data.fields, not both."),
        ("getUser", {"user": "101", "limit": 201}, errors.InvalidField,
         "data.limit must be at most 200; page with nextCursor."),
        ("getUser", {"user": "101", "limit": 5, "format": "csv"}, errors.InvalidField,
         "data.format streams every matching record: send it without limit/cursor."),
        ("getUser", {"user": "101", "cursor": "not-a-cursor"}, errors.InvalidCursor,
         "data.cursor is not a value this server returned as nextCursor."),
        ("getDate", {"fromDate": "2026-03-01", "toDate": "02/03/2026"}, errors.InvalidDate,
         "fromDate must be a date in dd/mm/yyyy format, got '2026-03-01'."),
        ("getDate", {"fromDate": "31/02/2026", "toDate": "02/03/2026"}, errors.InvalidDate,
         "fromDate: '31/02/2026' is not a real calendar date."),
        ("getDate", {"fromDate": "02/03/2026", "toDate": "01/03/2026"},
         errors.DateRangeReversed, "fromDate (02/03/2026) must not be after toDate (01/03/2026)."),
        ("getStats", {"fromDate": "01/03/2026", "toDate": "01/04/2026"},
         errors.DateRangeTooLarge, "The date range covers 32 days; at most 31 are allowed per "
         "request. Split it into smaller ranges."),
    ],
)  # fmt: skip
def test_refusals(request_type, data, error, message):
    with pytest.raises(error) as exc:
        query(request_type, **data)
    assert exc.value.message == message
    assert exc.value.status == 400
    assert exc.value.envelope() == {"respCode": -1, "respMsg": message,
                                    "errorCode": error.error_code}  # fmt: skip


def test_the_range_limit_is_the_settings_own():
    wide = Settings().replace(max_range_days=366)
    assert query("getDate", wide, fromDate="01/01/2026", toDate="31/12/2026").window.first == (
        date(2026, 1, 1)
    )


def test_an_explicit_extension_list_decides_who_is_a_user():
    matcher = ExtensionMatcher(SETTINGS.extension_pattern, "100-199")
    data = parse_data(Envelope("getUser", None, {"user": "205"}))
    with pytest.raises(errors.InvalidUser):
        to_query(data, SETTINGS, matcher)
    ok = parse_data(Envelope("getUser", None, {"user": "150"}))
    assert to_query(ok, SETTINGS, matcher) == RecordQuery("150", None)

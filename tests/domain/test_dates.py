"""dd/mm/yyyy days in the PBX zone, and callDate rendering."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from voip24h import errors
from voip24h.domain.dates import day_window, gmt_to_local, parse_day, render_epoch

HCM = ZoneInfo("Asia/Ho_Chi_Minh")


def test_parse_day_accepts_real_dates():
    assert parse_day("29/07/2018") == date(2018, 7, 29)
    assert parse_day("1/7/2018") == date(2018, 7, 1)
    assert parse_day("29/02/2020") == date(2020, 2, 29)


@pytest.mark.parametrize(
    "text", ["31/02/2018", "29/02/2019", "00/01/2018", "01/00/2018", "32/01/2018", "01/13/2018"]
)
def test_impossible_dates(text):
    with pytest.raises(errors.InvalidDate, match="not a real calendar date"):
        parse_day(text, "fromDate")


@pytest.mark.parametrize(
    "text",
    [
        "2018-07-29",
        "29-07-2018",
        "29/07/18",
        "29/07/2018 10:00",
        " 29/07/2018",
        "\uff12\uff19/07/2018",
        "",
        "today",
    ],
)
def test_other_formats(text):
    with pytest.raises(errors.InvalidDate, match="dd/mm/yyyy"):
        parse_day(text, "toDate")


def test_window_is_local_midnight_to_next_local_midnight():
    window = day_window("29/07/2018", "29/07/2018", HCM, 366)
    assert window.start == int(datetime(2018, 7, 28, 17, 0).timestamp()) - _utc_offset()
    assert window.end - window.start == 86400


def _utc_offset() -> int:
    # datetime(...).timestamp() reads naive values in the machine's zone; undo it.
    naive = datetime(2018, 7, 28, 17, 0)
    return int(naive.timestamp() - naive.replace(tzinfo=ZoneInfo("UTC")).timestamp())


def test_window_bounds_in_utc():
    window = day_window("01/01/2018", "30/07/2018", HCM, 366)
    assert window.start == 1514739600  # 2018-01-01 00:00 +07
    assert window.end == 1532970000  # 2018-07-31 00:00 +07


def test_range_limits():
    assert day_window("01/01/2020", "31/12/2020", HCM, 366).last == date(2020, 12, 31)
    with pytest.raises(errors.DateRangeTooLarge, match="367 days; at most 366"):
        day_window("01/01/2020", "01/01/2021", HCM, 366)
    with pytest.raises(errors.DateRangeReversed):
        day_window("02/01/2020", "01/01/2020", HCM, 366)


def test_seed_callid_epoch_matches_calldate_in_utc_plus_7():
    assert render_epoch(1532857052, HCM) == "2018-07-29 16:37:32"


def test_gmt_rows_are_converted_to_local():
    assert gmt_to_local(datetime(2018, 7, 29, 9, 37, 32), HCM) == datetime(2018, 7, 29, 16, 37, 32)

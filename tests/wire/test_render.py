"""render_records: the seed answer's bytes, whatever the text in the records."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from voip24h.wire.protocol import RECORD_FIELDS, render_records

field = st.text(st.characters(codec="utf-8"), max_size=12)
row = st.tuples(field, field, field, field, field, field)


def reference(rows: list[tuple[str, ...]]) -> bytes:
    """The seed's rendering: one JSON object per record, keys in wire order, compact."""
    records = [dict(zip(RECORD_FIELDS, r, strict=True)) for r in rows]
    return b'{"respCode":0,"respMsg":"Success","data":' + orjson.dumps(records) + b"}"


@given(st.lists(row, max_size=20))
def test_bytes_equal_the_seed_rendering_for_any_text(rows: list[tuple[str, ...]]) -> None:
    assert render_records(rows) == reference(rows)


def test_escapes_quotes_backslashes_and_control_characters() -> None:
    rows = [('1.1"', "10\\1", "\x00\x1f\n\t", "é😀\u2028", "NO ANSWER", "2018-07-29 16:37:32")]
    body = render_records(rows)
    assert body == reference(rows)
    assert orjson.loads(body)["data"][0]["callId"] == '1.1"'


def test_no_records_is_an_empty_list() -> None:
    assert render_records([]) == b'{"respCode":0,"respMsg":"Success","data":[]}'

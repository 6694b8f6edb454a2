"""db/queries/events.py:event_document, the one rendering of an event for partners."""

from __future__ import annotations

from datetime import datetime

import pytest

from voip24h.db.queries.events import EVENT_FIELDS, event_document

EXPECTED = {
    "id": "evt_1",
    "type": "call.ended",
    "occurredAt": "2026-03-01T10:20:30Z",
    "sequence": 7,
    "data": {"callId": "c.1"},
}


@pytest.mark.parametrize(
    "occurred_at",
    [datetime(2026, 3, 1, 10, 20, 30), "2026-03-01 10:20:30", "2026-03-01T10:20:30"],
)
def test_an_events_row_renders_the_same_from_a_datetime_or_a_drivers_text(occurred_at):
    row = (7, "evt_1", "call.ended", occurred_at, b'{"callId":"c.1"}')
    assert event_document(row) == EXPECTED


def test_a_delivery_mapping_renders_through_the_columns_order():
    delivery = {
        "delivery_id": "d1", "attempts": 0, "seq": "7", "id": "evt_1", "type": "call.ended",
        "occurred_at": datetime(2026, 3, 1, 10, 20, 30), "payload": '{"callId":"c.1"}',
    }  # fmt: skip
    assert EVENT_FIELDS == ("seq", "id", "type", "occurred_at", "payload")
    assert event_document([delivery[name] for name in EVENT_FIELDS]) == EXPECTED

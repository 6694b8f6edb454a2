"""From queries to statement shapes: which conditions a statement has, and its bind values.

A shape is hashable and depends only on which options a request uses, never on
their values, so each one is compiled once per partner scope and then reused.
"""

from __future__ import annotations

from typing import Any

from voip24h.db.queries import call_records as record_queries
from voip24h.db.queries.call_records import Shape
from voip24h.service.translate import RecordingQuery, RecordQuery, StatsQuery


def columns_for(fields: tuple[str, ...]) -> tuple[Any, ...]:
    """Seed columns, the requested extended fields, then the keyset columns."""
    extra = tuple(record_queries.EXTENDED_COLUMNS[name] for name in fields)
    return (*record_queries.SEED_COLUMNS, *extra, *record_queries.KEY_COLUMNS)


def shape_of(query: RecordQuery | StatsQuery | RecordingQuery) -> tuple[Shape, dict[str, Any]]:
    """The statement shape of a query and its bind parameter values."""
    params: dict[str, Any] = {}
    user = getattr(query, "user", None)
    window = getattr(query, "window", None)
    call = getattr(query, "call", None)
    after = getattr(query, "after", None)
    if user is not None:
        params["user"] = user
    if window is not None:
        params["start"], params["end"] = window.start, window.end
    if call is not None:
        params["call"] = params["call_2"] = call
    f = query.filters
    for n, status in enumerate(f.statuses):
        params[f"status_{n}"] = status
    if f.call_type is not None:
        params["call_type"] = f.call_type
    if f.direction is not None:
        params["direction"] = f.direction
    phone = None
    if f.phone is not None:
        phone = "prefix" if f.prefix else "exact"
        if f.prefix:
            params["phone_like"] = record_queries.like_prefix(f.phone)
        else:
            params["phone"] = f.phone
    if after is not None:
        params.update(after_ts=after.call_ts, after_id=after.callid, after_user=after.user)
    shape = Shape(
        by_user=user is not None,
        by_window=window is not None,
        by_call=call is not None and not isinstance(query, RecordingQuery),
        statuses=len(f.statuses),
        by_call_type=f.call_type is not None,
        by_direction=f.direction is not None,
        phone=phone,
        after=after is not None,
    )
    return shape, params

"""Migrations 0008 and 0009 build the push tables as declared, and go back down cleanly."""

from __future__ import annotations

from typing import Any

from alembic import command
from sqlalchemy import inspect

from voip24h.db import migrate
from voip24h.db.schema import (
    events,
    leases,
    sequences,
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
)

PUSH_TABLES = (events, sequences, webhook_endpoints, webhook_deliveries, webhook_attempts, leases)


def downgrade(engine: Any, revision: str) -> None:
    config = migrate.alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def shape(engine: Any, name: str) -> tuple[dict[str, bool], dict[str, tuple[list[str], bool]]]:
    found = inspect(engine)
    columns = {str(c["name"]): bool(c["nullable"]) for c in found.get_columns(name)}
    indexes = {
        str(ix["name"]): ([str(c) for c in ix["column_names"]], bool(ix["unique"]))
        for ix in found.get_indexes(name)
    }
    return columns, indexes


def test_the_push_tables_are_built_as_declared(engine):
    for table in PUSH_TABLES:
        columns, indexes = shape(engine, table.name)
        assert columns == {c.name: bool(c.nullable) for c in table.columns}, table.name
        for ix in table.indexes:
            assert indexes.get(str(ix.name)) == ([c.name for c in ix.columns], bool(ix.unique))


def test_0008_downgrades_to_0007_and_upgrades_again(engine):
    downgrade(engine, "0007")
    left = set(inspect(engine).get_table_names())
    assert not left & {t.name for t in PUSH_TABLES}
    assert {"call_records", "partners"} <= left
    migrate.upgrade(engine)
    assert {t.name for t in PUSH_TABLES} <= set(inspect(engine).get_table_names())

"""Storage: engines, schema, migrations and one query module per table."""

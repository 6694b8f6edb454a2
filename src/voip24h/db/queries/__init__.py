"""SQL lives here and only here: one module per table."""

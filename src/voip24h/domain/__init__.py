"""Pure rules: CDR rows, the record mapping, dates, partner scopes. No I/O, no framework."""

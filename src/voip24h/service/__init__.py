"""Use cases: answer a partner query, the partner directory, recordings, partner admin."""

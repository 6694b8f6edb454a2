"""Push: webhook targets (SSRF guard), Standard Webhooks signing and the retry schedule."""

"""API keys: issuing, hashing, authenticating and limits per key."""

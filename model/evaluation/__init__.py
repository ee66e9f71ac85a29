"""The lip-sync benchmark: held-out synthetic pairs dubbed by the real engine, scored against the truth."""

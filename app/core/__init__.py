"""Cross-cutting pieces of the API service: settings, database, storage, queue, errors, fetching, logging."""

"""Celery tasks: thin, named, taking ids; the work is in plain functions next to them."""

"""Dub jobs: create, read, list, cancel; the job state machine."""

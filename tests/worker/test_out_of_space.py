"""A full temporary disk is told apart from a bad input wherever the engine or the fetcher wrapped it: it
is retried and ends as `worker_disk_full` (tests/faults/test_disk.py fills a real tmpfs under a worker)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from worker.engine.errors import OUTPUT_FAILED, EngineError
from worker.tasks.processing import out_of_space


def _wrapped(error: OSError) -> EngineError:
    try:
        try:
            raise error
        except OSError as cause:
            raise EngineError(OUTPUT_FAILED, "cannot write") from cause
    except EngineError as wrapped:
        return wrapped


def test_a_full_disk_is_found_under_the_engine_error() -> None:
    assert out_of_space(_wrapped(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))))
    assert out_of_space(OSError(errno.ENOSPC, "No space left on device"))


def test_other_write_failures_are_not_a_full_disk(tmp_path: Path) -> None:
    try:
        (tmp_path / "missing" / "file").write_bytes(b"x")
    except OSError as error:
        assert not out_of_space(_wrapped(error))
    assert not out_of_space(EngineError(OUTPUT_FAILED, "cannot write"))
    assert not out_of_space(ValueError("bad"))

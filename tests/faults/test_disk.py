"""A worker's temporary disk full (its REDUB_WORK_DIR on a tiny tmpfs, filled up): the dub fails with a
clear code, and the same worker process dubs the next one once there is room again."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import Caller, MediaServer
from tests.faults.conftest import Stack, dub_body, errors_of, wait_all_terminal


@pytest.fixture
def small_disk() -> Iterator[Path]:
    """A 4 MiB tmpfs (mounting needs root or CAP_SYS_ADMIN; without it the case cannot run here)."""
    directory = Path(tempfile.mkdtemp(prefix="redub-fault-disk-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(directory)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        directory.rmdir()
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    yield directory
    subprocess.run(["umount", str(directory)], check=True)
    directory.rmdir()


def _fill(directory: Path, leave_bytes: int) -> Path:
    stats = os.statvfs(directory)
    filler = directory / "filler"
    filler.write_bytes(b"\0" * max(0, stats.f_bavail * stats.f_frsize - leave_bytes))
    return filler


def test_worker_disk_full(
    measured: Callable[[str], None], stack: Stack, caller: Caller, media_server: MediaServer, small_disk: Path
) -> None:
    (worker,) = stack.run_workers(1, REDUB_WORK_DIR=str(small_disk), REDUB_JOB_RETRY_DELAY_S="1")
    pid = worker.process.pid if worker.process else None
    filler = _fill(small_disk, leave_bytes=8 * 1024)  # less than the inputs
    with stack.client(caller) as client:
        full = str(client.dubs.create(**dub_body(media_server)).id)
        assert wait_all_terminal([full], 300, stack) == {full: "failed"}
        code, retryable = errors_of([full])[full]
        measured(f"disk full: {code} (retryable {retryable})")
        assert (code, retryable) == ("worker_disk_full", True)

        filler.unlink()
        after = str(client.dubs.create(**dub_body(media_server)).id)
        assert wait_all_terminal([after], 300, stack) == {after: "succeeded"}, stack.log()[-4000:]
    assert worker.process is not None and worker.process.pid == pid and worker.process.poll() is None

"""Redis (broker and rate-limit counters) restarted while dubs run: it keeps nothing on disk, so every task
queued in it is lost. The reaper sends the tasks of dubs still `queued` again; every dub ends once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import Caller, MediaServer
from tests.faults.conftest import Output, Stack, assert_each_succeeded_once, create_dubs


def test_every_dub_ends_once_after_redis_restarts(
    measured: Callable[[str], None],
    stack: Stack,
    caller: Caller,
    media_server: MediaServer,
    undisturbed: Output,
    tmp_path: Path,
) -> None:
    # A dub still `queued` 5 s after its last sending is sent again (the default waits 30 minutes).
    stack.run_workers(2, REDUB_STALE_QUEUED_AFTER_S="5")
    job_ids = create_dubs(stack, caller, media_server, 8, slow_s=3)
    stack.redis.stop()  # every queued and unacknowledged task goes with it
    stack.redis.start()
    measured(assert_each_succeeded_once(job_ids, stack, undisturbed, tmp_path))

"""A dub task that finds the database unreachable is sent again with backoff, not dropped (its dub would
stay `queued` until the reaper's stale-queued bound, 30 minutes). The fault suite (tests/faults) stops a
real database under running dubs; here a real worker is pointed at a port where no database listens."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.conftest import WorkerProcess, free_port, wait_until


def test_a_dub_task_is_retried_while_the_database_is_unreachable(
    service_env: dict[str, str], tmp_path: Path
) -> None:
    from app.core.queue import TASK_PROCESS_DUB, PendingTask, send_now

    queue = f"outage-{uuid.uuid4().hex[:8]}"  # no other worker takes it
    unreachable = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/redub"
    worker = WorkerProcess(
        {**service_env, "REDUB_DATABASE_URL": unreachable}, tmp_path, name="outage", beat=False, queues=queue
    )
    worker.start()
    try:
        wait_until(lambda: " ready." in worker.log(), 120, "worker")
        job_id = str(uuid.uuid4())
        send_now(PendingTask(TASK_PROCESS_DUB, (job_id,), queue))
        wait_until(lambda: "Retry in 4s" in worker.log(), 60, f"a second retry\n{worker.log()}")
        log = worker.log()
        assert "Retry in 2s" in log and "OperationalError" in log
        assert "raised unexpected" not in log
    finally:
        worker.stop()

"""Workers killed with SIGKILL mid-dub (no chance to clean up) and the API killed while clients create dubs:
each dub finishes once, and a create retried by the client under its Idempotency-Key makes one dub."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import Caller, MediaServer, wait_until
from tests.faults.conftest import (
    Output,
    Stack,
    assert_each_succeeded_once,
    create_dubs,
    dub_body,
    jobs_of,
    outcomes,
    wait_all_terminal,
)

DUBS = 6
CLIENTS = 12
CREATES_EACH = 4


def test_workers_killed_mid_dub(
    measured: Callable[[str], None],
    stack: Stack,
    caller: Caller,
    media_server: MediaServer,
    undisturbed: Output,
    tmp_path: Path,
) -> None:
    workers = stack.run_workers(2)
    job_ids = create_dubs(stack, caller, media_server, DUBS, slow_s=3)
    for worker in workers:
        worker.kill()
    killed = [job_id for job_id, status in outcomes(job_ids).items() if status == "processing"]
    for worker in workers:
        worker.start()

    assert killed
    measured(assert_each_succeeded_once(job_ids, stack, undisturbed, tmp_path))


def test_api_killed_while_clients_create_dubs(
    measured: Callable[[str], None], stack: Stack, caller: Caller, media_server: MediaServer
) -> None:
    # An API killed after committing a dub but before sending its task leaves it `queued` with no task: the
    # reaper sends it again after the stale-queued bound (30 minutes by default; 5 s here).
    stack.run_workers(1, REDUB_STALE_QUEUED_AFTER_S="5")
    created: list[str] = []
    lock = threading.Lock()

    def create() -> None:
        with stack.client(caller) as client:
            for _ in range(CREATES_EACH):
                dub_id = str(client.dubs.create(**dub_body(media_server)).id)
                with lock:
                    created.append(dub_id)

    clients = [threading.Thread(target=create) for _ in range(CLIENTS)]
    for thread in clients:
        thread.start()
    # A third of the creates answered: up to one per client in flight, the rest not sent yet.
    wait_until(lambda: len(created) >= CLIENTS * CREATES_EACH // 3, 120, "the first creates")
    stack.api.kill()
    with lock:
        before = len(created)
    time.sleep(2)
    stack.api.start()
    for thread in clients:
        thread.join(timeout=180)

    wanted = CLIENTS * CREATES_EACH
    measured(f"{before} of {wanted} creates answered before the kill; {len(created)} after the retries")
    assert len(created) == wanted == len(set(created))
    assert jobs_of(caller) == wanted
    ended = wait_all_terminal(created, 300, stack)
    assert set(ended.values()) == {"succeeded"}, stack.log()[-6000:]

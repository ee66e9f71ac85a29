"""200 passthrough dubs created at once by 20 clients, with 2 workers: every dub succeeds; the create
latency (p50, p99) is printed for the README, not asserted."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import Caller, MediaServer
from tests.faults.conftest import Output, Stack, assert_outputs_match, dub_body, jobs_of, wait_all_terminal

DUBS = 200
CLIENTS = 20


def test_200_dubs_at_once(
    measured: Callable[[str], None],
    stack: Stack,
    caller: Caller,
    media_server: MediaServer,
    undisturbed: Output,
    tmp_path: Path,
) -> None:
    stack.run_workers(2)
    created: list[str] = []
    latencies: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS)

    def submit() -> None:
        with stack.client(caller) as client:
            start.wait()
            for _ in range(DUBS // CLIENTS):
                began = time.perf_counter()
                dub_id = str(client.dubs.create(**dub_body(media_server)).id)
                with lock:
                    latencies.append(time.perf_counter() - began)
                    created.append(dub_id)

    began = time.monotonic()
    clients = [threading.Thread(target=submit) for _ in range(CLIENTS)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join(timeout=600)
    ended = wait_all_terminal(created, 1800, stack)
    elapsed = time.monotonic() - began
    cuts = statistics.quantiles(latencies, n=100)
    measured(
        f"{len(created)} dubs by {CLIENTS} clients: create p50 {statistics.median(latencies) * 1000:.0f} ms, "
        f"p99 {cuts[98] * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms; all ended after {elapsed:.0f} s"
    )
    assert len(created) == DUBS and jobs_of(caller) == DUBS
    assert set(ended.values()) == {"succeeded"}, stack.log()[-6000:]
    assert_outputs_match(created[:: DUBS // 10], undisturbed, tmp_path)  # a sample of ten

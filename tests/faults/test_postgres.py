"""PostgreSQL stopped for 30 s while dubs run, then started again: meanwhile the API answers 503 with
`Retry-After` (never a 500), a client that retries creates its dub once the database is back, the API and
the workers recover without a restart, and every dub ends once with the output an undisturbed run gives."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.conftest import Caller, MediaServer
from tests.faults.conftest import (
    Output,
    Stack,
    assert_each_succeeded_once,
    create_dubs,
    create_in_background,
    dub_body,
    jobs_of,
)

DUBS = 6
DOWN_S = 30.0


def test_postgres_down_for_30_s(
    measured: Callable[[str], None],
    stack: Stack,
    caller: Caller,
    media_server: MediaServer,
    undisturbed: Output,
    tmp_path: Path,
) -> None:
    stack.run_workers(2)
    job_ids = create_dubs(stack, caller, media_server, DUBS, slow_s=3)

    stack.postgres.stop()
    down_at = time.monotonic()
    # A client creating a dub during the outage: it retries (honouring Retry-After) under one key.
    creator, created = create_in_background(stack, caller, **dub_body(media_server))
    answers: list[tuple[int, str | None, str | None]] = []
    with httpx.Client(base_url=stack.api.url, headers=caller.headers, timeout=10) as http:
        while time.monotonic() - down_at < DOWN_S:
            for response in (http.get("/v1/dubs"), http.get(f"/v1/dubs/{job_ids[0]}")):
                code = response.json().get("code") if response.status_code >= 400 else None
                answers.append((response.status_code, code, response.headers.get("retry-after")))
            time.sleep(1)
        stack.postgres.start()
        # The API comes back by itself: its pools drop the broken connections and open new ones.
        recovered = None
        for _ in range(60):
            if http.get("/v1/dubs").status_code == 200:
                recovered = time.monotonic() - down_at - DOWN_S
                break
            time.sleep(0.5)
    creator.join(timeout=120)
    measured(f"answers while down: {sorted(set(answers))}; API back {recovered:.1f} s after the database")

    assert answers and set(answers) == {(503, "database_unavailable", "2")}
    assert recovered is not None
    assert len(created) == 1
    measured(assert_each_succeeded_once(job_ids + created, stack, undisturbed, tmp_path))
    assert jobs_of(caller) == DUBS + 1  # the retried create made one dub

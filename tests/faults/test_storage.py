"""Object storage (SeaweedFS) down for 30 s while dubs store their inputs and outputs and a client uploads
a file: the work is retried, and each dub succeeds or fails with a retryable code; none hangs."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from tests.conftest import Caller, MediaServer
from tests.faults.conftest import (
    Output,
    Stack,
    assert_outputs_match,
    attempts_of,
    create_dubs,
    create_in_background,
    errors_of,
    jobs_of,
    terminal_events,
    wait_all_terminal,
)

DUBS = 6
DOWN_S = 30.0


def test_storage_down_for_30_s(
    measured: Callable[[str], None],
    stack: Stack,
    caller: Caller,
    media_server: MediaServer,
    undisturbed: Output,
    tmp_path: Path,
) -> None:
    # The default retry delays: a dub that broke on our side runs again 30 s later, then 60 s later.
    stack.run_workers(2)
    job_ids = create_dubs(stack, caller, media_server, DUBS, slow_s=2)
    stack.s3.stop()
    # An upload started during the outage: the client retries it (5xx, connection errors) with backoff.
    upload, uploaded = create_in_background(
        stack, caller, video=media_server.directory / "video.mp4", audio=media_server.directory / "audio.m4a"
    )
    time.sleep(DOWN_S)
    stack.s3.start()
    upload.join(timeout=180)
    assert len(uploaded) == 1, "the upload did not get through once storage was back"
    job_ids += uploaded

    ended = wait_all_terminal(job_ids, 600, stack)
    errors = errors_of(job_ids)
    measured(f"outcomes: {Counter(ended.values())}; errors: {set(errors.values())}")
    measured(f"attempts: {attempts_of(job_ids)}")
    for job_id, status in ended.items():
        assert status == "succeeded" or errors[job_id][1] is True, (status, errors[job_id])
    assert jobs_of(caller) == DUBS + 1
    assert set(terminal_events(job_ids).values()) == {1}
    succeeded = [job_id for job_id, status in ended.items() if status == "succeeded"]
    assert_outputs_match(succeeded, undisturbed, tmp_path)

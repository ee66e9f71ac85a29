"""Two requests with one Idempotency-Key at the same moment: the second is told to retry (409), and after
the first commits, the key replays its answer."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from sqlalchemy import text

from app.core.errors import ApiError


def _blocked_backends() -> int:
    from app.core.db import new_session

    with new_session() as session:
        count = session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return int(count or 0)


def test_a_concurrent_request_with_the_same_key_gets_409_then_a_replay(service_env: dict[str, str]) -> None:
    from app.core import idempotency
    from app.core.db import new_session

    account, key, digest = uuid.uuid4(), f"race-{uuid.uuid4()}", "a" * 64
    first = new_session()
    assert (
        idempotency.begin(first, account, key, digest, "POST /v1/dubs") is None
    )  # reserved, not yet committed

    outcome: list[object] = []

    def second_request() -> None:
        with new_session() as second:
            try:
                outcome.append(idempotency.begin(second, account, key, digest, "POST /v1/dubs"))
            except ApiError as error:
                outcome.append(error)

    thread = threading.Thread(target=second_request)
    thread.start()
    while not outcome and _blocked_backends() == 0:
        time.sleep(0.01)  # until the second insert waits on the first one's row in the unique index
    idempotency.finish(first, account, key, 202, {"id": "job"})
    first.commit()
    first.close()
    thread.join(timeout=30)
    assert isinstance(outcome[0], ApiError)
    assert (outcome[0].status, outcome[0].code) == (409, "idempotency_in_progress")

    with new_session() as third:
        stored = idempotency.begin(third, account, key, digest, "POST /v1/dubs")
        assert stored is not None and stored.response_body == {"id": "job"}
        with pytest.raises(ApiError) as mismatch:
            idempotency.begin(third, account, key, "b" * 64, "POST /v1/dubs")
        assert mismatch.value.code == "idempotency_key_reused"

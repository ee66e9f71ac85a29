"""Two requests with one Idempotency-Key at the same moment: the second is told to retry (409), and after
the first commits, the key replays its answer."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

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
    assert outcome[0].retryable is True
    assert (
        outcome[0].message == "A request with this Idempotency-Key is still being processed; retry shortly."
    )

    with new_session() as third:
        stored = idempotency.begin(third, account, key, digest, "POST /v1/dubs")
        assert stored is not None and stored.response_body == {"id": "job"}
        with pytest.raises(ApiError) as mismatch:
            idempotency.begin(third, account, key, "b" * 64, "POST /v1/dubs")
        assert mismatch.value.code == "idempotency_key_reused"


def _reserve(session: Session, account: uuid.UUID, key: str, digest: str = "a" * 64) -> None:
    from app.core import idempotency

    assert idempotency.begin(session, account, key, digest, "POST /v1/dubs") is None


def _refusal(session: Session, account: uuid.UUID, key: str, digest: str, endpoint: str) -> ApiError:
    from app.core import idempotency

    with pytest.raises(ApiError) as refused:
        idempotency.begin(session, account, key, digest, endpoint)
    return refused.value


def test_keys_are_1_to_255_characters_of_the_allowed_set(service_env: dict[str, str]) -> None:
    from app.core.db import new_session

    account = uuid.uuid4()
    with new_session() as session:
        for key in ("a", "Az09._~:-" + uuid.uuid4().hex, "k" * 255):
            _reserve(session, account, key)
        for key in ("", "k" * 256, "two words", "slash/key", "ключ", "key\x00"):
            error = _refusal(session, account, key, "a" * 64, "POST /v1/dubs")
            assert (error.status, error.code) == (400, "invalid_idempotency_key"), key
            assert error.message == "Idempotency-Key: 1–255 of A-Z a-z 0-9 . _ ~ : -"


def test_a_key_replays_its_status_and_body_for_its_ttl_and_only_on_its_endpoint(
    service_env: dict[str, str],
) -> None:
    from app.core import idempotency
    from app.core.config import get_settings
    from app.core.db import new_session
    from app.models import IdempotencyKey

    account, key = uuid.uuid4(), f"k-{uuid.uuid4()}"
    with new_session() as session:
        started = datetime.now(UTC)
        _reserve(session, account, key)
        idempotency.finish(session, account, key, 201, {"id": "first"})
        stored = session.scalars(select(IdempotencyKey).where(IdempotencyKey.key == key)).one()
        ttl = timedelta(seconds=get_settings().idempotency_ttl_s)
        assert started + ttl <= stored.expires_at <= datetime.now(UTC) + ttl

        replay = idempotency.begin(session, account, key, "a" * 64, "POST /v1/dubs")
        assert replay is not None and (replay.status_code, replay.response_body) == (201, {"id": "first"})
        elsewhere = _refusal(session, account, key, "a" * 64, "POST /v1/preflights")
        assert (elsewhere.status, elsewhere.code) == (422, "idempotency_key_reused")
        assert (
            elsewhere.message == "This Idempotency-Key was used for POST /v1/dubs, not POST /v1/preflights."
        )
        other_body = _refusal(session, account, key, "b" * 64, "POST /v1/dubs")
        assert (other_body.status, other_body.code) == (422, "idempotency_key_reused")
        assert other_body.message == "This Idempotency-Key was used with a different request body."

        # A row kept from before keys named their endpoint is checked by its body alone.
        stored.endpoint = ""
        session.flush()
        assert idempotency.begin(session, account, key, "a" * 64, "POST /v1/preflights") is stored


def test_an_expired_key_is_free_again_and_purged(service_env: dict[str, str]) -> None:
    from app.core import idempotency
    from app.core.db import new_session
    from app.models import IdempotencyKey

    account, expired, live = uuid.uuid4(), f"old-{uuid.uuid4()}", f"live-{uuid.uuid4()}"
    with new_session() as session:
        _reserve(session, account, expired)
        _reserve(session, account, live)
        idempotency.finish(session, account, expired, 202, {"id": "old"})
        session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == expired)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        # Another body under the expired key is a new request, not a reuse.
        _reserve(session, account, expired, "b" * 64)
        rows = session.scalars(select(IdempotencyKey).where(IdempotencyKey.key == expired)).all()
        assert [(row.request_hash, row.status_code) for row in rows] == [("b" * 64, 0)]

        session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == expired)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        expired_rows = session.scalar(
            select(func.count()).select_from(IdempotencyKey).where(IdempotencyKey.expires_at <= func.now())
        )
        assert expired_rows and idempotency.purge_expired(session) == expired_rows
        remaining = session.scalars(
            select(IdempotencyKey.key).where(IdempotencyKey.account_id == account)
        ).all()
        assert remaining == [live]
        assert idempotency.purge_expired(session) == 0  # nothing left to purge


def test_the_request_hash_is_the_sha256_of_a_canonical_form() -> None:
    from app.core.idempotency import request_hash

    body = {"video_url": "https://x/v.mp4", "options": {"b": 1, "a": [1, 2]}}
    canonical = b'["POST","/v1/dubs",{"options":{"a":[1,2],"b":1},"video_url":"https://x/v.mp4"}]'
    assert request_hash("POST", "/v1/dubs", body) == hashlib.sha256(canonical).hexdigest()
    assert request_hash("POST", "/v1/dubs", dict(reversed(body.items()))) == request_hash(
        "POST", "/v1/dubs", body
    )
    assert (
        request_hash("POST", "/v1/dubs", {"at": datetime(2026, 1, 1, tzinfo=UTC)})
        == hashlib.sha256(b'["POST","/v1/dubs",{"at":"2026-01-01 00:00:00+00:00"}]').hexdigest()
    )

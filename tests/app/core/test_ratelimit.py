"""Windows that start at their first event, in Redis (API processes share them) and in process memory
(the embedded mode): the count grows within the window, names are counted apart, and the time left never
exceeds the window."""

from __future__ import annotations

import uuid

import pytest

from app.core.ratelimit import MemoryCounter, RedisCounter


@pytest.fixture(params=["redis", "memory"])
def counter(request: pytest.FixtureRequest, redis_url: str) -> RedisCounter | MemoryCounter:
    if request.param == "memory":
        return MemoryCounter()
    return RedisCounter(redis_url, f"redub_test_{uuid.uuid4().hex}:")


def test_a_window_counts_from_its_first_event(counter: RedisCounter | MemoryCounter) -> None:
    name, other = f"a-{uuid.uuid4().hex}", f"b-{uuid.uuid4().hex}"
    counts = [counter.hit_from_first(name, 60) for _ in range(3)]
    assert [count for count, _ in counts] == [1, 2, 3]
    assert all(0 < left <= 60 for _, left in counts)
    # Later events do not push the window's end back: it ends 60 s after the first.
    assert counts[2][1] <= counts[0][1]
    assert counter.hit_from_first(other, 60)[0] == 1


def test_a_window_that_ended_starts_again(counter: RedisCounter | MemoryCounter) -> None:
    name = f"c-{uuid.uuid4().hex}"
    assert counter.hit_from_first(name, 1)[0] == 1
    assert counter.hit_from_first(name, 1)[0] == 2
    # Expire it as time would (Redis: the key's TTL; memory: the window's end).
    if isinstance(counter, RedisCounter):
        counter.client.delete(f"{counter.prefix}ratelimit:{name}")
    else:
        counter.windows[name] = (counter.windows[name][0], 0.0)
    assert counter.hit_from_first(name, 1)[0] == 1

"""A worker's input cache against the real object store (SeaweedFS): an object is downloaded once whatever
the number of tasks that use it, its content hash is its identity, the disk bound evicts the least recently
used, a killed download's leftovers are never served, and decoded items are kept by count."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from worker.engine.errors import INPUT_NOT_FOUND, EngineError
from worker.tasks import input_cache
from worker.tasks.input_cache import cache_folder, cached_decoded, cached_input


@pytest.fixture
def settings_env(
    monkeypatch: pytest.MonkeyPatch, service_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., None]]:
    """A fresh cache folder for the test (REDUB_WORK_DIR), and REDUB_* values for it; restored after."""
    from app.core.config import get_settings

    def apply(**values: Any) -> None:
        for name, value in values.items():
            monkeypatch.setenv(f"REDUB_{name.upper()}", str(value))
        get_settings.cache_clear()

    apply(work_dir=tmp_path / "work")
    input_cache.clear_memory()
    yield apply
    monkeypatch.undo()
    get_settings.cache_clear()
    input_cache.clear_memory()


def _stored(tmp_path: Path, content: bytes, key: str | None = None) -> tuple[str, str]:
    """Upload `content` (under `key`, or a new one); returns its key and sha256."""
    from app.core.storage import get_storage

    key = key or f"tests/input-cache/{uuid.uuid4().hex}"
    source = tmp_path / f"upload-{uuid.uuid4().hex}"
    source.write_bytes(content)
    get_storage().upload_file(key, source, "application/octet-stream")
    return key, hashlib.sha256(content).hexdigest()


def _task_folder(tmp_path: Path) -> Path:
    folder = tmp_path / f"task-{uuid.uuid4().hex}"
    folder.mkdir()
    return folder


def _counts() -> dict[str, int]:
    return asdict(input_cache.counters)


def _delta(before: dict[str, int]) -> dict[str, int]:
    return {name: value - before[name] for name, value in _counts().items() if value != before[name]}


def test_three_tasks_download_an_input_once(settings_env: Callable[..., None], tmp_path: Path) -> None:
    content = os.urandom(300_000)
    key, sha256 = _stored(tmp_path, content)
    before = _counts()
    paths = [cached_input(key, sha256, _task_folder(tmp_path)) for _ in range(3)]
    assert _delta(before) == {"downloads": 1, "file_hits": 2}
    assert all(path.read_bytes() == content for path in paths)
    # Each task holds its own link: the cached copy going away does not take a task's file with it.
    (cache_folder() / sha256).unlink()
    assert paths[0].read_bytes() == content
    assert cached_input(key, sha256, _task_folder(tmp_path)).read_bytes() == content
    assert _delta(before) == {"downloads": 2, "file_hits": 2}


def test_a_changed_object_is_never_served_from_the_cache(
    settings_env: Callable[..., None], tmp_path: Path
) -> None:
    key, old_sha256 = _stored(tmp_path, b"first version " * 1000)
    assert cached_input(key, old_sha256, _task_folder(tmp_path)).read_bytes() == b"first version " * 1000
    _, new_sha256 = _stored(tmp_path, b"second version " * 1000, key=key)  # same key, other content
    before = _counts()
    assert cached_input(key, new_sha256, _task_folder(tmp_path)).read_bytes() == b"second version " * 1000
    assert _delta(before) == {"downloads": 1}
    # A plan made from other bytes than the stored object's is refused, and nothing is kept.
    with pytest.raises(EngineError) as raised:
        cached_input(key, hashlib.sha256(b"what the plan saw").hexdigest(), _task_folder(tmp_path))
    assert raised.value.code == INPUT_NOT_FOUND
    assert sorted(path.name for path in cache_folder().iterdir()) == sorted([old_sha256, new_sha256])


def test_a_missing_object_fails_as_input_not_found(settings_env: Callable[..., None], tmp_path: Path) -> None:
    with pytest.raises(EngineError) as raised:
        cached_input(f"tests/input-cache/{uuid.uuid4().hex}", "0" * 64, _task_folder(tmp_path))
    assert raised.value.code == INPUT_NOT_FOUND
    assert list(cache_folder().iterdir()) == []


def test_the_byte_bound_evicts_the_least_recently_used(
    settings_env: Callable[..., None], tmp_path: Path
) -> None:
    settings_env(input_cache_bytes=250_000)  # room for two of the three 100 kB objects
    first, second, third = (_stored(tmp_path, os.urandom(100_000)) for _ in range(3))
    cached_input(*first, _task_folder(tmp_path))
    time.sleep(0.01)
    cached_input(*second, _task_folder(tmp_path))
    time.sleep(0.01)
    cached_input(*first, _task_folder(tmp_path))  # used again: the second is now the least recently used
    time.sleep(0.01)
    before = _counts()
    cached_input(*third, _task_folder(tmp_path))
    assert _delta(before) == {"downloads": 1, "evictions": 1}
    assert sorted(path.name for path in cache_folder().iterdir()) == sorted([first[1], third[1]])
    assert sum(path.stat().st_size for path in cache_folder().iterdir()) <= 250_000
    cached_input(*second, _task_folder(tmp_path))  # evicted: downloaded again
    assert _delta(before) == {"downloads": 2, "evictions": 2}


def test_a_killed_download_leaves_nothing_that_is_served(
    settings_env: Callable[..., None], tmp_path: Path
) -> None:
    content = os.urandom(50_000)
    key, sha256 = _stored(tmp_path, content)
    folder = cache_folder()
    # What a worker killed mid-download leaves: a partial file beside the cache under a dotted name.
    stale = folder / f".{sha256}.{uuid.uuid4().hex}.partial"
    stale.write_bytes(content[:1000])
    hour_ago = time.time() - 2 * input_cache.STALE_PARTIAL_S
    os.utime(stale, (hour_ago, hour_ago))
    fresh = folder / f".{sha256}.{uuid.uuid4().hex}.partial"  # another process downloading right now
    fresh.write_bytes(content[:1000])
    before = _counts()
    assert cached_input(key, sha256, _task_folder(tmp_path)).read_bytes() == content
    assert _delta(before) == {"downloads": 1}
    assert not stale.exists() and fresh.exists()


def test_decoded_items_are_kept_by_count(settings_env: Callable[..., None]) -> None:
    settings_env(input_cache_decoded_items=2)
    loaded: list[str] = []

    def loader(name: str) -> Callable[[], list[str]]:
        def load() -> list[str]:
            loaded.append(name)
            return [name]

        return load

    first = cached_decoded(("track", "a"), loader("a"))
    assert cached_decoded(("track", "a"), loader("a")) is first
    cached_decoded(("track", "b"), loader("b"))
    cached_decoded(("track", "a"), loader("a"))  # used again: "b" is now the oldest
    cached_decoded(("track", "c"), loader("c"))  # over the count: "b" goes
    cached_decoded(("track", "a"), loader("a"))
    cached_decoded(("track", "b"), loader("b"))
    assert loaded == ["a", "b", "c", "b"]

"""A worker's local copies of job inputs, keyed by content (sha256): the segments of one job that a worker
renders download its inputs once, decode its dub track once and load its analysis once.

On disk: one file per content hash in `<work_dir>/input-cache`, bounded by `input_cache_bytes`, the least
recently used files first out. Worker processes on one machine share the folder (one download serves them
all): a file is downloaded beside it under a private dotted name, its hash checked, then renamed into place,
so a worker killed mid-download leaves only a dotted file, never served and removed once stale. A task takes
a hard link to the file into its own folder, so another process evicting it meanwhile cannot pull it away.

In memory (per process): the last `input_cache_decoded_items` decoded items (a dub track, memory-mapped; an
analysis), keyed by the hash of what they were decoded from. Video frames are never kept: they are decoded
per segment, so memory does not grow with the video's length."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from app.core.config import get_settings
from app.core.storage import ObjectNotFound, get_storage
from worker.engine.errors import INPUT_NOT_FOUND, EngineError

logger = logging.getLogger(__name__)

T = TypeVar("T")

# A dotted (partial) file untouched this long belongs to a download that died: a live download writes on.
STALE_PARTIAL_S = 3600.0


@dataclass
class CacheCounters:
    """What this process's cache did since it started (read by tests and logged with each download)."""

    file_hits: int = 0
    downloads: int = 0
    evictions: int = 0
    memory_hits: int = 0
    loads: int = 0


counters = CacheCounters()
_memory: OrderedDict[Hashable, Any] = OrderedDict()
_memory_lock = threading.Lock()


def cache_folder() -> Path:
    folder = Path(get_settings().work_dir or tempfile.gettempdir()) / "input-cache"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def cached_input(key: str, sha256: str, workdir: Path) -> Path:
    """The object at `key`, whose content hashes to `sha256`, as a file in `workdir` (a link to the cached
    copy where the file system allows it). A stored object whose content no longer hashes to `sha256` is
    refused: the plan was made from other bytes."""
    folder = cache_folder()
    cached = folder / sha256
    local = workdir / f"input-{sha256}"
    if _link(cached, local):
        os.utime(cached)  # recently used: evicted last
        counters.file_hits += 1
        return local
    _remove_stale_partials(folder)
    partial = folder / f".{sha256}.{uuid.uuid4().hex}.partial"
    try:
        get_storage().download_file(key, partial)
        with partial.open("rb") as stream:
            digest = hashlib.file_digest(stream, "sha256").hexdigest()
        if digest != sha256:
            raise EngineError(INPUT_NOT_FOUND, "The dub's stored input changed after the dub was planned.")
        os.replace(partial, cached)
    except ObjectNotFound as error:
        raise EngineError(INPUT_NOT_FOUND, "The dub's stored input no longer exists.") from error
    finally:
        partial.unlink(missing_ok=True)
    counters.downloads += 1
    logger.info("input downloaded", extra={"key": key, "bytes": cached.stat().st_size})
    _link(cached, local)
    counters.evictions += _evict(folder, get_settings().input_cache_bytes, keep=cached)
    return local


def _link(cached: Path, local: Path) -> bool:
    """Link the cached file into the task's folder; False when it is not cached."""
    try:
        os.link(cached, local)
    except FileNotFoundError:
        return False  # not cached (or evicted by another process a moment ago)
    except FileExistsError:
        return True  # this task took it already
    except OSError:  # another file system: use the cached file in place
        if not cached.exists():
            return False
        local.symlink_to(cached)
    return True


def _remove_stale_partials(folder: Path) -> None:
    cutoff = time.time() - STALE_PARTIAL_S
    for entry in folder.glob(".*"):
        try:
            if entry.stat().st_mtime < cutoff:
                entry.unlink(missing_ok=True)
        except FileNotFoundError:
            continue


def _evict(folder: Path, limit: int, keep: Path) -> int:
    """Remove the least recently used files until the folder holds at most `limit` bytes (`keep`, the file
    just downloaded, stays even if it alone is larger); returns how many. A file a task still uses keeps its
    data through the task's own link until the task ends."""
    entries = []
    for entry in folder.iterdir():
        if entry.name.startswith("."):
            continue
        try:
            stat = entry.stat()
        except FileNotFoundError:  # another process evicted it
            continue
        entries.append((stat.st_mtime, stat.st_size, entry))
    total = sum(size for _, size, _ in entries)
    removed = 0
    for _, size, entry in sorted(entries):
        if total <= limit:
            break
        if entry != keep:
            entry.unlink(missing_ok=True)
            total -= size
            removed += 1
    return removed


def cached_decoded(key: Hashable, load: Callable[[], T]) -> T:
    """`load()`'s result, kept for the next call with the same key (which must name the content decoded, e.g.
    its sha256, and how). Callers must not modify what they get: the next segment gets the same object."""
    with _memory_lock:
        if key in _memory:
            _memory.move_to_end(key)
            counters.memory_hits += 1
            cached: T = _memory[key]
            return cached
    value = load()
    limit = get_settings().input_cache_decoded_items
    with _memory_lock:
        counters.loads += 1
        if limit > 0:
            _memory[key] = value
            _memory.move_to_end(key)
            while len(_memory) > limit:
                _memory.popitem(last=False)
    return value


def clear_memory() -> None:
    with _memory_lock:
        _memory.clear()

"""A worker's local copies of job inputs, keyed by content (sha256): the segments of one job that a worker
renders download its inputs once. Bounded by `input_cache_bytes`; the least recently used copies go first."""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

from app.core.config import get_settings
from app.core.storage import ObjectNotFound, get_storage
from worker.engine.errors import INPUT_NOT_FOUND, EngineError


def cached_input(key: str, sha256: str) -> Path:
    """The object at `key`, whose content hashes to `sha256`, as a local file."""
    settings = get_settings()
    folder = Path(settings.work_dir or tempfile.gettempdir()) / "input-cache"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / sha256
    if path.exists():
        os.utime(path)  # recently used: evicted last
        return path
    # Worker processes on one machine share the folder: each downloads beside it and renames atomically.
    partial = folder / f".{sha256}.{uuid.uuid4().hex}.partial"
    try:
        get_storage().download_file(key, partial)
        os.replace(partial, path)
    except ObjectNotFound as error:
        raise EngineError(INPUT_NOT_FOUND, "The dub's stored input no longer exists.") from error
    finally:
        partial.unlink(missing_ok=True)
    _evict(folder, settings.input_cache_bytes, keep=path)
    return path


def _evict(folder: Path, limit: int, keep: Path) -> None:
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
    for _, size, entry in sorted(entries):
        if total <= limit:
            return
        if entry != keep:
            entry.unlink(missing_ok=True)  # a reader that has it open keeps reading
            total -= size

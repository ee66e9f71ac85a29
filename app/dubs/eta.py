"""How long a queued or running dub has left: an estimate from the dubs that succeeded last.

A running dub is expected to take as long, per second of its input video, as the median of the last
`RECENT_DUBS` succeeded dubs (once it is probed; before that, their median processing time), less the time
it has run so far. A queued dub waits for the dubs ahead of it: while dubs queue every worker slot is busy,
so the dubs processing now say how many run at once; it starts after `position` median dubs shared over
those slots, then takes a median dub itself. Queueing and renderers change, so it is an estimate only.
"""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.core.config import get_settings
from app.core.db import read_connection
from app.dubs import repository

# Enough finished dubs for a steady median, few enough that it follows a change of renderer or hardware.
RECENT_DUBS = 20


@dataclass(frozen=True)
class History:
    dubs: int  # succeeded dubs the medians come from
    median_processing_s: float | None
    median_s_per_video_s: float | None  # processing seconds per second of input video
    processing_now: int

    @classmethod
    def from_rows(cls, rows: list[Any], processing_now: int) -> History:
        """`rows`: (started_at, finished_at, media) of succeeded dubs."""
        spans = [(row.finished_at - row.started_at).total_seconds() for row in rows]
        rates = [
            span / row.media["video"]["duration_s"]
            for span, row in zip(spans, rows, strict=True)
            if row.media and row.media.get("video", {}).get("duration_s")
        ]
        return cls(
            dubs=len(rows),
            median_processing_s=statistics.median(spans) if spans else None,
            median_s_per_video_s=statistics.median(rates) if rates else None,
            processing_now=processing_now,
        )


@dataclass(frozen=True)
class Estimate:
    seconds_left: float
    completes_at: datetime
    based_on_dubs: int


def estimate(
    status: str,
    *,
    position: int | None,
    started_at: datetime | None,
    media: dict[str, Any] | None,
    history: History,
    now: datetime,
) -> Estimate | None:
    """The estimate for a dub in `status`; None when it has ended, there is no history, or a running dub
    has already run longer than expected (nothing honest to say then)."""
    if history.median_processing_s is None:
        return None
    if status == "queued" and position is not None:
        slots = max(1, history.processing_now)
        left = position * history.median_processing_s / slots + history.median_processing_s
    elif status == "processing" and started_at is not None:
        expected = history.median_processing_s
        video_s = (media or {}).get("video", {}).get("duration_s")
        if video_s and history.median_s_per_video_s is not None:
            expected = history.median_s_per_video_s * video_s
        left = expected - (now - started_at).total_seconds()
        if left <= 0:
            return None
    else:
        return None
    return Estimate(round(left, 1), now + timedelta(seconds=left), history.dubs)


_cache_lock = threading.Lock()
_cached: tuple[float, History] | None = None


def recent_history() -> History:
    """The history, read at most once per `REDUB_ETA_HISTORY_TTL_S` in this process."""
    global _cached
    with _cache_lock:
        if _cached is not None and time.monotonic() - _cached[0] < get_settings().eta_history_ttl_s:
            return _cached[1]
    with read_connection() as connection:
        rows = repository.recent_succeeded(connection, RECENT_DUBS)
        processing_now = repository.processing_count(connection)
    history = History.from_rows(list(rows), processing_now)
    with _cache_lock:
        _cached = (time.monotonic(), history)
    return history

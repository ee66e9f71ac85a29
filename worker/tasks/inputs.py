"""A job's or a preflight's inputs: the media, fetched through the SSRF-safe fetcher, and the engine
options its request asks for."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.core import metrics
from app.core.config import get_settings
from app.core.fetch import FETCH_CANCELED, FetchError, fetch_to_file
from app.core.storage import ObjectNotFound, get_storage
from worker.engine.errors import INPUT_NOT_FOUND, EngineError

if TYPE_CHECKING:
    from worker.engine.pipeline import DubOptions


def engine_options(
    sync_mode: str,
    max_duration_s: float,
    on_no_face: str,
    speakers: list[Any] | None,
    model: str | None = None,
) -> DubOptions:
    """DubOptions for a request: its sync mode, its key's length limit (0: the engine's), who to dub and the
    model (an id of `model.catalog`; None: the shipped one, or passthrough where no weights are installed)."""
    from model import catalog
    from worker.engine.analysis.options import AnalysisOptions
    from worker.engine.errors import MODEL_UNAVAILABLE, EngineError
    from worker.engine.pipeline import DubOptions
    from worker.engine.probe import Limits

    model_id = model or catalog.default_model()
    entry = catalog.available_models().get(model_id)
    if entry is None:
        raise EngineError(MODEL_UNAVAILABLE, f"the model {model_id!r} is not installed on this worker")
    return DubOptions(
        sync_mode=sync_mode,
        renderer=entry.renderer,
        model=entry.id if entry.renderer == "dit" else None,
        limits=Limits(max_duration_s=max_duration_s) if max_duration_s > 0 else Limits(),
        segment_frames=get_settings().segment_frames,
        analysis=AnalysisOptions.from_request(on_no_face, speakers),
    )


def obtain(
    name: str,
    url: str | None,
    file_key: str | None,
    workdir: Path,
    keep_as: str | None = None,
    on_progress: Callable[[int, int | None], None] | None = None,
    is_canceled: Callable[[], bool] | None = None,
) -> Path:
    """One input, fetched from the customer's URL or downloaded from an upload; raises FetchError or
    EngineError. A fetched input is also stored under `keep_as` when given; `is_canceled` is polled while
    the fetch waits for the server."""
    settings = get_settings()
    storage = get_storage()
    destination = workdir / name
    if url is not None:
        try:
            result = fetch_to_file(
                url,
                destination,
                max_bytes=settings.fetch_max_bytes,
                timeout_s=settings.fetch_timeout_s,
                allow_private=settings.allow_private_urls,
                max_redirects=settings.fetch_max_redirects,
                min_bytes_per_s=settings.fetch_min_bytes_per_s,
                rate_window_s=settings.fetch_rate_window_s,
                dns_timeout_s=settings.dns_timeout_s,
                is_canceled=is_canceled,
                on_progress=on_progress,
            )
        except FetchError as error:
            if error.code != FETCH_CANCELED:  # a cancel is the customer's choice, not a failure
                metrics.FETCH_FAILURES.labels(error.code).inc()
            # Two inputs can fail the same way; the message says which one.
            raise error.for_input(f"{name}_url") from error
        if keep_as is not None:
            storage.upload_file(keep_as, result.path, result.content_type)
        return result.path
    if file_key is None:
        raise EngineError(INPUT_NOT_FOUND, f"The uploaded {name} file no longer exists.")
    try:
        storage.download_file(file_key, destination)
    except ObjectNotFound as error:
        raise EngineError(INPUT_NOT_FOUND, f"The uploaded {name} file no longer exists.") from error
    return destination

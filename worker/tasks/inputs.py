"""Bring a job's or a preflight's inputs into its work directory, through the SSRF-safe fetcher."""

from __future__ import annotations

from pathlib import Path

from app.core.config import get_settings
from app.core.fetch import fetch_to_file
from app.core.storage import ObjectNotFound, get_storage
from worker.engine.errors import INPUT_NOT_FOUND, EngineError


def obtain(
    name: str, url: str | None, file_key: str | None, workdir: Path, keep_as: str | None = None
) -> Path:
    """One input, fetched from the customer's URL or downloaded from an upload; raises FetchError or
    EngineError. A fetched input is also stored under `keep_as` when given."""
    settings = get_settings()
    storage = get_storage()
    destination = workdir / name
    if url is not None:
        result = fetch_to_file(
            url,
            destination,
            max_bytes=settings.fetch_max_bytes,
            timeout_s=settings.fetch_timeout_s,
            allow_private=settings.allow_private_urls,
            max_redirects=settings.fetch_max_redirects,
        )
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

"""Downloads for CLI inputs given as URLs, through the service's one fetcher."""

from __future__ import annotations

from pathlib import Path

from worker.engine.errors import EngineError

_MAX_BYTES = 4 * 1024**3
_TIMEOUT_S = 600.0


def download(url: str, destination: Path) -> Path:
    from app.core.config import get_settings
    from app.core.fetch import FetchError, fetch_to_file

    settings = get_settings()
    try:
        # The CLI runs on the user's own machine for the user: addresses on their network are theirs to use.
        result = fetch_to_file(
            url,
            destination,
            max_bytes=_MAX_BYTES,
            timeout_s=_TIMEOUT_S,
            allow_private=True,
            min_bytes_per_s=settings.fetch_min_bytes_per_s,
            rate_window_s=settings.fetch_rate_window_s,
            dns_timeout_s=settings.dns_timeout_s,
        )
    except FetchError as error:
        raise EngineError(error.code, error.message) from error
    return result.path

"""Logs keep a customer's media URL without its query string (presigned tokens), in both formats."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from app.core.fetch import fetch_to_file
from app.core.logging import configure_logging, redact_urls
from tests.conftest import MediaServer


def test_redact_urls() -> None:
    assert redact_urls("GET https://cdn.example.com/a/b.mp4?sig=1&t=2 done") == (
        "GET https://cdn.example.com/a/b.mp4?[redacted] done"
    )
    assert redact_urls("https://user:pw@example.com/v.mp4") == "https://[redacted]@example.com/v.mp4"
    assert redact_urls("see https://example.com/v.mp4 and http://h/x#t=1") == (
        "see https://example.com/v.mp4 and http://h/x?[redacted]"
    )


def test_logs_never_carry_a_media_urls_query_string(
    media_server: MediaServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        for json_lines in (True, False):
            configure_logging("DEBUG", json_lines=json_lines)  # a handler on the captured stderr
            url = media_server.url("video.mp4") + "?X-Amz-Signature=TOPSECRET&X-Amz-Credential=AKIA#frag"
            fetch_to_file(url, tmp_path / "video.mp4", max_bytes=10**8, timeout_s=20, allow_private=True)
            logging.getLogger("test").warning("fetching %s failed", url, extra={"url": url})
            logged = capsys.readouterr().err
            assert "video.mp4?[redacted]" in logged  # the fetcher's and httpx's lines, path kept
            assert "TOPSECRET" not in logged and "AKIA" not in logged and "frag" not in logged
            if json_lines:
                for line in logged.splitlines():
                    json.loads(line)  # redaction keeps every line valid JSON
    finally:
        root.handlers, root.level = saved[0], saved[1]

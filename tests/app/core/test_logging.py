"""Logs keep a customer's media URL without its query string (presigned tokens), in both formats."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from app.core.fetch import fetch_to_file
from app.core.logging import bind_log_fields, configure_logging, log_fields, redact, redact_urls
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


def test_redact_keeps_no_key_or_secret() -> None:
    key = "rdb_0a1b2c3d4e5f_Q2xhc3NpZmllZC1rZXktbWF0ZXJpYWw"
    secret = "whsec_c2VjcmV0LXNpZ25pbmcta2V5LW1hdGVyaWFs+/=="
    text = redact(f"key={key} secret={secret} Authorization: Bearer abc.def-ghi")
    assert text == (
        "key=rdb_0a1b2c3d4e5f_[redacted] secret=whsec_[redacted] Authorization: Bearer [redacted]"
    )


def test_json_lines_carry_the_context_fields_and_extra_wins(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging("INFO", json_lines=True)
        log = logging.getLogger("test")
        with log_fields(request_id="req_1", job_id="job-a"):
            bind_log_fields(account_id="acct-1")
            # A field the context already has, given again in `extra`: no clash, and `extra` wins.
            log.info("job started", extra={"job_id": "job-b"})
            log.info("with the key rdb_0a1b2c3d4e5f_c2VjcmV0 inside")
        log.info("outside")
        first, second, outside = (json.loads(line) for line in capsys.readouterr().err.splitlines())
        assert (first["request_id"], first["job_id"], first["account_id"]) == ("req_1", "job-b", "acct-1")
        assert second["job_id"] == "job-a" and "c2VjcmV0" not in second["message"]
        assert "request_id" not in outside and "account_id" not in outside
    finally:
        root.handlers, root.level = saved[0], saved[1]

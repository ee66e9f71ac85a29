"""Typed errors from the real server's problem+json answers; 4xx answers are never retried."""

from __future__ import annotations

import uuid

import httpx
import pytest
import redub_client

from tests.conftest import Caller, MediaServer


def counting_client(api_url: str, key: str) -> tuple[redub_client.Redub, list[httpx.Request]]:
    sent: list[httpx.Request] = []
    http = httpx.Client(event_hooks={"request": [sent.append]})
    return redub_client.Redub(api_key=key, base_url=api_url, http_client=http), sent


def test_a_wrong_key_is_an_authentication_error(api_url: str) -> None:
    client, sent = counting_client(api_url, "rdb_not_a_real_key")
    with client, pytest.raises(redub_client.AuthenticationError) as caught:
        client.models.list()
    error = caught.value
    assert error.status == 401 and error.code == "unauthorized"
    assert error.detail and error.retryable is False
    assert len(sent) == 1


def test_another_id_is_not_found(api_url: str, account: Caller) -> None:
    client, sent = counting_client(api_url, account.key)
    with client:
        with pytest.raises(redub_client.NotFoundError) as caught:
            client.dubs.get(uuid.uuid4())
        assert caught.value.status == 404 and caught.value.code == "not_found"
        with pytest.raises(redub_client.NotFoundError):
            client.preflights.get(uuid.uuid4())
    assert len(sent) == 2


def test_a_bad_field_is_an_invalid_request_naming_the_param(
    api_url: str, account: Caller, media_server: MediaServer
) -> None:
    client, sent = counting_client(api_url, account.key)
    with client:
        with pytest.raises(redub_client.InvalidRequestError) as caught:
            client.dubs.create(
                video=media_server.url("video.mp4"),
                audio=media_server.url("audio.m4a"),
                speakers=[{"point": {"frame": 0, "x": -5, "y": 10}}],
            )
        error = caught.value
        assert error.status == 422 and error.code == "validation_error"
        assert error.param == "speakers.0.point.x"
        assert error.errors and error.errors[0]["loc"][:2] == ["body", "speakers"]
        assert not isinstance(error, redub_client.ServerError)

        with pytest.raises(redub_client.InvalidRequestError) as unknown:
            client.dubs.create(
                video=media_server.url("video.mp4"),
                audio=media_server.url("audio.m4a"),
                model="no-such-model",
            )
        assert unknown.value.code == "unknown_model" and unknown.value.status == 422
    assert len(sent) == 2  # neither was retried


def test_a_non_http_url_is_refused_locally(api_url: str, account: Caller) -> None:
    client, sent = counting_client(api_url, account.key)
    with client, pytest.raises(redub_client.InvalidRequestError) as caught:
        client.dubs.create(video="ftp://example.com/video.mp4", audio="ftp://example.com/audio.m4a")
    assert caught.value.code == "unsupported_url"
    assert sent == []


def test_no_api_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDUB_API_KEY", raising=False)
    with pytest.raises(redub_client.RedubError) as caught:
        redub_client.Redub()
    assert caught.value.code == "missing_api_key"

"""Signatures checked by the Standard Webhooks reference library, including during a secret rotation."""

from __future__ import annotations

import base64
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from app.keys.service import new_webhook_secret
from app.webhooks.signing import signature_header


def _headers(secrets: list[str], body: str, timestamp: int) -> dict[str, str]:
    return {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets, "msg_1", timestamp, body),
    }


def test_secret_format_and_signature_verify() -> None:
    secret = new_webhook_secret()
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    body = '{"type":"dub.succeeded","timestamp":"2026-01-01T00:00:00+00:00","data":{"id":"x"}}'
    assert Webhook(secret).verify(body, _headers([secret], body, int(time.time())))["data"] == {"id": "x"}


def test_both_secrets_verify_during_rotation_and_a_stranger_does_not() -> None:
    new, old = new_webhook_secret(), new_webhook_secret()
    body = '{"type":"dub.failed","timestamp":"t","data":{}}'
    headers = _headers([new, old], body, int(time.time()))
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(new).verify(body, headers)
    Webhook(old).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_webhook_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new).verify(body.replace("failed", "succeeded"), headers)

"""Standard Webhooks verification of Redub's deliveries: HMAC-SHA256 over `{id}.{timestamp}.{body}` with
the key's `whsec_` secret, any of several `v1,` signatures, and a timestamp no more than 5 minutes off."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from redub_client._errors import RedubError

TOLERANCE_S = 5 * 60
# The format's marker, not a secret.
SECRET_PREFIX = "whsec_"  # nosec B105


class WebhookVerificationError(RedubError):
    """The delivery is not authentic or not fresh; `code` says which check failed."""


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    raise WebhookVerificationError(f"missing {name} header", code="missing_header", param=name)


def _secret_bytes(secret: str | bytes) -> bytes:
    if isinstance(secret, bytes):
        return secret
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        # Secrets are sometimes written without base64 padding.
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError) as error:
        raise WebhookVerificationError(
            "the webhook secret is not base64 (expected whsec_…)", code="invalid_secret"
        ) from error
    if not key:
        raise WebhookVerificationError("the webhook secret is empty", code="invalid_secret")
    return key


def _digest(body: bytes, message_id: str, timestamp: int, secret: str | bytes) -> bytes:
    signed = message_id.encode() + b"." + str(timestamp).encode() + b"." + body
    return hmac.new(_secret_bytes(secret), signed, hashlib.sha256).digest()


def sign(body: bytes, message_id: str, timestamp: int, secret: str | bytes) -> str:
    """The `v1,<base64>` signature of one delivery."""
    return "v1," + base64.b64encode(_digest(body, message_id, timestamp, secret)).decode()


def verify(
    body: bytes,
    headers: Mapping[str, str],
    secret: str | bytes,
    *,
    tolerance_s: float = TOLERANCE_S,
    now: float | None = None,
) -> dict[str, Any]:
    """Checks a delivery (the raw request body, its headers, the `whsec_` secret) and returns the event
    (`{type, timestamp, data}`); raises `WebhookVerificationError` when it is forged, altered or stale."""
    message_id = _header(headers, "webhook-id")
    timestamp_text = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    try:
        timestamp = int(timestamp_text)
    except ValueError as error:
        raise WebhookVerificationError(
            "webhook-timestamp is not an integer", code="invalid_timestamp", param="webhook-timestamp"
        ) from error
    current = time.time() if now is None else now
    if timestamp < current - tolerance_s:
        raise WebhookVerificationError("the delivery's timestamp is too old", code="timestamp_too_old")
    if timestamp > current + tolerance_s:
        raise WebhookVerificationError("the delivery's timestamp is too new", code="timestamp_too_new")
    expected = _digest(body, message_id, timestamp, secret)
    # Several signatures while a secret rotates: any one of version v1 made with this secret passes.
    for candidate in signatures.split():
        version, _, encoded = candidate.partition(",")
        if version != "v1":
            continue
        try:
            given = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(given, expected):
            break
    else:
        raise WebhookVerificationError("no signature matches", code="invalid_signature")
    try:
        event = json.loads(body)
    except ValueError as error:
        raise WebhookVerificationError("the body is not JSON", code="invalid_body") from error
    if not isinstance(event, dict):
        raise WebhookVerificationError("the body is not a JSON object", code="invalid_body")
    return event

"""redub_client.webhooks.verify against the Standard Webhooks reference library, and on a real delivery."""

from __future__ import annotations

import base64
import json
import secrets
import time
from datetime import UTC, datetime

import pytest
import redub_client
import standardwebhooks
from redub_client import webhooks

from tests.conftest import Caller, MediaServer, WebhookReceiver, wait_until

SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
BODY = json.dumps(
    {"type": "dub.succeeded", "timestamp": "2026-12-03T10:00:00Z", "data": {"id": "x"}}
).encode()


def signed_by_reference(
    body: bytes, secret: str, timestamp: int, message_id: str = "msg_1"
) -> dict[str, str]:
    signature = standardwebhooks.Webhook(secret).sign(
        message_id, datetime.fromtimestamp(timestamp, tz=UTC), body.decode()
    )
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}


def both_verify(body: bytes, headers: dict[str, str], secret: str) -> tuple[bool, bool]:
    """(ours accepts, the reference accepts)."""
    try:
        webhooks.verify(body, headers, secret)
        ours = True
    except redub_client.WebhookVerificationError:
        ours = False
    try:
        standardwebhooks.Webhook(secret).verify(body, headers)
        reference = True
    except standardwebhooks.WebhookVerificationError:
        reference = False
    return ours, reference


def test_a_signature_made_by_the_reference_verifies_and_returns_the_event() -> None:
    now = int(time.time())
    headers = signed_by_reference(BODY, SECRET, now)
    assert webhooks.verify(BODY, headers, SECRET) == json.loads(BODY)
    # Our signature is byte for byte the reference's.
    assert webhooks.sign(BODY, "msg_1", now, SECRET) == headers["webhook-signature"]
    # Header names in any case; an unpadded secret as the reference accepts it.
    upper = {name.upper(): value for name, value in headers.items()}
    assert webhooks.verify(BODY, upper, SECRET.rstrip("=")) == json.loads(BODY)


def test_any_of_several_signatures_may_match() -> None:
    now = int(time.time())
    headers = signed_by_reference(BODY, SECRET, now)
    other = webhooks.sign(BODY, "msg_1", now, "whsec_" + base64.b64encode(b"another secret").decode())
    headers["webhook-signature"] = f"v2,abc {other} {headers['webhook-signature']}"
    assert both_verify(BODY, headers, SECRET) == (True, True)


@pytest.mark.parametrize(
    "case",
    ["altered_body", "wrong_secret", "other_id", "too_old", "too_new", "v2_only", "no_signature_header"],
)
def test_what_the_reference_refuses_is_refused(case: str) -> None:
    now = int(time.time())
    body, secret = BODY, SECRET
    headers = signed_by_reference(BODY, SECRET, now)
    if case == "altered_body":
        body = BODY.replace(b"succeeded", b"failed")
    elif case == "wrong_secret":
        secret = "whsec_" + base64.b64encode(b"not the secret").decode()
    elif case == "other_id":
        headers["webhook-id"] = "msg_2"
    elif case == "too_old":
        headers = signed_by_reference(BODY, SECRET, now - 301)
    elif case == "too_new":
        headers = signed_by_reference(BODY, SECRET, now + 301)
    elif case == "v2_only":
        headers["webhook-signature"] = headers["webhook-signature"].replace("v1,", "v2,")
    elif case == "no_signature_header":
        del headers["webhook-signature"]
    assert both_verify(body, headers, secret) == (False, False)


def test_failures_carry_stable_codes() -> None:
    now = 1_800_000_000
    headers = signed_by_reference(BODY, SECRET, now)
    codes = {}
    for name, call in {
        "old": lambda: webhooks.verify(BODY, headers, SECRET, now=now + 301),
        "new": lambda: webhooks.verify(BODY, headers, SECRET, now=now - 301),
        "forged": lambda: webhooks.verify(BODY + b" ", headers, SECRET, now=now),
        "missing": lambda: webhooks.verify(BODY, {}, SECRET, now=now),
        "secret": lambda: webhooks.verify(BODY, headers, "whsec_***", now=now),
    }.items():
        with pytest.raises(redub_client.WebhookVerificationError) as caught:
            call()
        codes[name] = caught.value.code
    assert codes == {
        "old": "timestamp_too_old",
        "new": "timestamp_too_new",
        "forged": "invalid_signature",
        "missing": "missing_header",
        "secret": "invalid_secret",
    }
    # Within the 5-minute tolerance on either side it passes.
    assert webhooks.verify(BODY, headers, SECRET, now=now + 299)["type"] == "dub.succeeded"
    assert webhooks.verify(BODY, headers, SECRET, now=now - 299)["type"] == "dub.succeeded"


def test_a_real_delivery_verifies_with_the_keys_secret(
    redub: redub_client.Redub, account: Caller, media_server: MediaServer, webhook_receiver: WebhookReceiver
) -> None:
    hook = f"client-hooks/{secrets.token_hex(4)}"
    dub = redub.dubs.create(
        video=media_server.url("video.mp4"),
        audio=media_server.url("audio.m4a"),
        webhook_url=webhook_receiver.url(hook),
    )
    dub.wait(timeout=180, poll_interval=0.2)
    assert dub.status == "succeeded", dub.error
    wait_until(lambda: bool(webhook_receiver.for_path(hook)), 60, "the webhook delivery")
    delivery = webhook_receiver.for_path(hook)[0]

    event = webhooks.verify(delivery.body, delivery.headers, account.webhook_secret)
    assert event["type"] == "dub.succeeded" and event["data"]["id"] == str(dub.id)
    with pytest.raises(redub_client.WebhookVerificationError):
        webhooks.verify(
            delivery.body.replace(b"succeeded", b"failed"), delivery.headers, account.webhook_secret
        )

"""The customer's webhook receiver down (connections refused) while dubs end, then back: every event is
delivered once it is back, under the `webhook-id` its delivery log shows, after the failed attempts."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from standardwebhooks.webhooks import Webhook

from tests.conftest import Caller, MediaServer, WebhookReceiver, serve_webhooks, wait_until
from tests.faults.conftest import Stack, dub_body, wait_all_terminal

DUBS = 4
DOWN_S = 20.0


def test_webhook_receiver_down_then_back(
    measured: Callable[[str], None], stack: Stack, caller: Caller, media_server: MediaServer
) -> None:
    # Retries after 1, 2, 4… 32 s (the default schedule spans three days).
    stack.run_workers(2, REDUB_WEBHOOK_RETRY_SCHEDULE_S="[1, 2, 4, 8, 16, 32]")
    receiver = WebhookReceiver(base_url="")
    server = serve_webhooks(receiver)
    port = server.server_address[1]
    server.shutdown()
    server.server_close()  # down: connections to it are refused
    down_at = time.monotonic()
    with stack.client(caller) as client:
        job_ids = [
            str(client.dubs.create(**dub_body(media_server), webhook_url=receiver.url("hooks")).id)
            for _ in range(DUBS)
        ]
    wait_all_terminal(job_ids, 300, stack)
    time.sleep(max(0.0, DOWN_S - (time.monotonic() - down_at)))
    assert receiver.received == []
    server = serve_webhooks(receiver, port)
    try:
        with httpx.Client(base_url=stack.api.url, headers=caller.headers, timeout=10) as http:

            def delivery_log() -> list[dict[str, object]]:
                logs = [
                    http.get(f"/v1/dubs/{job_id}/webhook_deliveries").json()["data"] for job_id in job_ids
                ]
                return [delivery for log in logs for delivery in log]

            wait_until(
                lambda: all(item["status"] != "pending" for item in delivery_log()), 120, "webhook deliveries"
            )
            deliveries = delivery_log()
    finally:
        server.shutdown()
        server.server_close()

    attempts = sorted(int(str(item["attempt_count"])) for item in deliveries)
    measured(f"{len(deliveries)} events; attempts each: {attempts}")
    assert {item["status"] for item in deliveries} == {"delivered"}
    assert min(attempts) >= 2  # failed while down, then sent
    received_ids = [item.headers["webhook-id"] for item in receiver.received]
    assert sorted(received_ids) == sorted(str(item["id"]) for item in deliveries)  # each once, same id
    for item in receiver.received:
        Webhook(caller.webhook_secret).verify(item.body, item.headers)
    events = {(item.json()["data"]["id"], item.json()["type"]) for item in receiver.received}
    assert {dub_id for dub_id, _ in events} == set(job_ids)
    assert {event for _, event in events} >= {"dub.succeeded"}

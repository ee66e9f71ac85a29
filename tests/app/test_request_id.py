"""Every answer carries an X-Request-Id (the client's when sane), and the logs of the request name it."""

from __future__ import annotations

import logging
import uuid

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Caller


def test_every_answer_has_a_request_id_and_the_client_can_choose_it(
    client: TestClient, caller: Caller, caplog: pytest.LogCaptureFixture
) -> None:
    made_up = client.get(f"/v1/dubs/{uuid.uuid4()}", headers=caller.headers)
    assert made_up.status_code == 404 and made_up.headers["x-request-id"].startswith("req_")
    assert client.get("/v1/dubs").headers["x-request-id"].startswith("req_")  # 401 too
    chosen = client.get("/healthz", headers={"X-Request-Id": "ticket-4711"})
    assert chosen.headers["x-request-id"] == "ticket-4711"
    hostile = client.get("/healthz", headers={"X-Request-Id": "a b;" * 100})
    assert hostile.headers["x-request-id"].startswith("req_")
    with caplog.at_level(logging.INFO):
        client.post("/v1/dubs", json={}, headers={**caller.headers, "X-Request-Id": "trace-me-1"})
        logging.getLogger("app.test").info("outside any request")
    tagged = [
        record
        for record in caplog.records
        if getattr(record, "log_context", {}).get("request_id") == "trace-me-1"
    ]
    assert tagged, [record.__dict__ for record in caplog.records]

"""`GET /v1/models` and the `model` of a dub: listed from the cards, checked at request time, rendered."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from model.catalog import PASSTHROUGH, SHIPPED_MODEL
from model.synth import make_pair, write_pair
from tests.conftest import Caller, MediaServer, wait_for_status


def _body(media_server: MediaServer, **extra: Any) -> dict[str, Any]:
    return {"video_url": media_server.url("video.mp4"), "audio_url": media_server.url("audio.m4a"), **extra}


def test_models_lists_passthrough_and_the_shipped_checkpoint(client: TestClient, caller: Caller) -> None:
    answer = client.get("/v1/models", headers=caller.headers)
    assert answer.status_code == 200, answer.text
    models = {item["id"]: item for item in answer.json()["data"]}
    assert models[PASSTHROUGH]["renderer"] == "passthrough" and models[PASSTHROUGH]["trained"] is None
    shipped = models[SHIPPED_MODEL]
    assert shipped["renderer"] == "dit" and shipped["trained"] is True and shipped["config"] == "mini"
    # The test server's REDUB_DEFAULT_MODEL is passthrough: exactly that one is marked default.
    assert [item["id"] for item in models.values() if item["default"]] == [PASSTHROUGH]
    assert client.get("/v1/models").status_code == 401


def test_a_dub_records_its_model_and_refuses_an_unknown_one(
    client: TestClient, caller: Caller, media_server: MediaServer
) -> None:
    default = client.post("/v1/dubs", json=_body(media_server), headers=caller.headers)
    assert default.status_code == 202 and default.json()["model"] == PASSTHROUGH
    chosen = client.post("/v1/dubs", json=_body(media_server, model=SHIPPED_MODEL), headers=caller.headers)
    assert chosen.status_code == 202 and chosen.json()["model"] == SHIPPED_MODEL
    unknown = client.post("/v1/dubs", json=_body(media_server, model="no-such-model"), headers=caller.headers)
    assert unknown.status_code == 422
    problem = unknown.json()
    assert problem["code"] == "unknown_model" and problem["param"] == "model"
    assert SHIPPED_MODEL in problem["detail"]


def test_the_shipped_model_dubs_a_talking_face_through_the_service(
    client: TestClient, caller: Caller, media_server: MediaServer, celery_worker: object
) -> None:
    pair = make_pair("clean", 11, "heldout", size=(256, 256), seconds=2.0)
    folder = media_server.directory / "talking"
    write_pair(pair, folder)
    body = {
        "video_url": media_server.url("talking/source.mp4"),
        "audio_url": media_server.url("talking/dub.wav"),
        "model": SHIPPED_MODEL,
    }
    created = client.post("/v1/dubs", json=body, headers=caller.headers)
    assert created.status_code == 202, created.text
    done = wait_for_status(client, caller, created.json()["id"], {"succeeded", "failed"}, timeout_s=300)
    assert done["status"] == "succeeded", done
    assert done["model"] == SHIPPED_MODEL and done["frames_rendered"] > 0

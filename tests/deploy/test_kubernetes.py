"""The Kubernetes manifests in deploy/, checked offline: schemas, images, references, probes, settings."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
import uuid
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from app.core.config import Settings
from tests.conftest import ROOT
from tests.deploy.compose_files import load

# The oldest Kubernetes release the manifests are written for (autoscaling/v2, batch/v1 and the rest), and the
# newest whose schemas kubernetes-validate carries.
KUBERNETES_VERSIONS = ["1.29.0", "latest"]
# Read from the environment by the engine rather than through Settings.
ENGINE_VARIABLES = {
    "REDUB_MODELS_DIR",
    "REDUB_MODEL_PATH",
    "REDUB_ALLOW_UNTRAINED_MODEL",
    "REDUB_DIT_WORKING_SIZE",
}
# Read by uvicorn itself: the proxy addresses whose X-Forwarded-For it trusts (the auth-failure limit counts
# per client address, so behind an ingress the real address must come through). Read by prometheus_client:
# the multiprocess mode's folder.
SERVER_VARIABLES = {"FORWARDED_ALLOW_IPS", "PROMETHEUS_MULTIPROC_DIR"}


# Prometheus' own configuration beside the manifests (tests/deploy/test_monitoring.py checks it).
NOT_MANIFESTS = {"prometheus-rules.yaml"}


def _documents() -> list[dict[str, Any]]:
    found = []
    for path in sorted((ROOT / "deploy").glob("*.yaml")):
        if path.name in NOT_MANIFESTS:
            continue
        found += [document for document in yaml.safe_load_all(path.read_text()) if document]
    return found


def _by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {document["metadata"]["name"]: document for document in _documents() if document["kind"] == kind}


def _pod_specs() -> dict[str, dict[str, Any]]:
    workloads = _by_kind("Deployment") | _by_kind("Job")
    return {name: workload["spec"]["template"]["spec"] for name, workload in workloads.items()}


def _containers() -> dict[str, dict[str, Any]]:
    return {
        f"{name}/{container['name']}": container
        for name, spec in _pod_specs().items()
        for container in spec["containers"]
    }


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_validates_against_the_kubernetes_schemas(version: str) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    release = kubernetes_validate.latest_version() if version == "latest" else version
    checked = []
    for document in _documents():
        if document["apiVersion"].startswith("keda.sh/"):
            continue  # a KEDA custom resource: checked below against what KEDA reads
        kubernetes_validate.validate(document, release, strict=True)
        checked.append(document["kind"])
    assert {"Deployment", "Job", "Service", "ConfigMap", "Secret", "PersistentVolumeClaim"} <= set(checked)


def test_the_images_are_the_versioned_ones_make_builds_and_pushes() -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    dry_run = subprocess.run(
        ["make", "-n", "push-images"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    built = set(re.findall(r"^docker build .*-t (\S+) \.$", dry_run.stdout, re.MULTILINE))
    pushed = set(re.findall(r"^docker push (\S+)$", dry_run.stdout, re.MULTILINE))
    named = {container["image"] for container in _containers().values()}
    assert named == built == pushed
    assert {image.rpartition(":")[2] for image in named} == {version}


def test_every_pod_runs_as_a_user_with_bounded_resources() -> None:
    for name, spec in _pod_specs().items():
        if name != "redub-migrate":
            assert spec["securityContext"] == {"runAsNonRoot": True, "runAsUser": 10001}, name
    for name, container in _containers().items():
        if not name.startswith("redub-migrate/"):
            assert {"requests", "limits"} <= set(container["resources"]), name
            assert "memory" in container["resources"]["limits"], name


def test_every_reference_names_an_object_the_manifests_create() -> None:
    config_maps, secrets, claims = (
        _by_kind("ConfigMap"),
        _by_kind("Secret"),
        _by_kind("PersistentVolumeClaim"),
    )
    for name, container in _containers().items():
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                assert source["configMapRef"]["name"] in config_maps, name
            if "secretRef" in source:
                assert source["secretRef"]["name"] in secrets, name
    for name, spec in _pod_specs().items():
        for volume in spec.get("volumes", []):
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims, name
    assert {document["metadata"].get("namespace", "redub") for document in _documents()} == {"redub"}


def test_every_setting_the_manifests_give_is_one_the_service_reads() -> None:
    settings = {f"REDUB_{name.upper()}" for name in Settings.model_fields}
    given = set(_by_kind("ConfigMap")["redub-config"]["data"]) | set(
        _by_kind("Secret")["redub-secrets"]["stringData"]
    )
    for container in _containers().values():
        given |= {variable["name"] for variable in container.get("env", [])}
    assert given - settings - ENGINE_VARIABLES - SERVER_VARIABLES == set()
    compose = load("docker-compose.yml")
    for service in compose["services"].values():
        given = set(service.get("environment") or {})
        assert {name for name in given if name.startswith("REDUB_")} - settings == set()


def test_the_database_password_is_kept_apart_from_the_url() -> None:
    secret = _by_kind("Secret")["redub-secrets"]["stringData"]
    assert make_url(secret["REDUB_DATABASE_URL"]).password is None
    assert "REDUB_DATABASE_PASSWORD" in secret


def test_the_gpu_workers_mount_other_checkpoints_read_only_and_scale_on_the_gpu_queue() -> None:
    worker = _by_kind("Deployment")["redub-worker-gpu"]
    spec = worker["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    mounts = {mount["name"]: mount for mount in container["volumeMounts"]}
    # The image sets REDUB_MODELS_DIR=/models.
    assert mounts["models"] == {"name": "models", "mountPath": "/models", "readOnly": True}
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    assert volumes["models"]["persistentVolumeClaim"]["readOnly"] is True
    assert "livenessProbe" not in container  # solo pool: no answer while it renders

    (scaler,) = _by_kind("ScaledObject").values()
    assert scaler["spec"]["scaleTargetRef"]["name"] == worker["metadata"]["name"]
    queues = container["command"][container["command"].index("--queues") + 1]
    assert queues == "gpu"
    redis = make_url(_by_kind("ConfigMap")["redub-config"]["data"]["REDUB_REDIS_URL"])
    for trigger in scaler["spec"]["triggers"]:
        assert trigger["type"] == "redis"
        assert trigger["metadata"]["address"] == f"{redis.host}:{redis.port}"
        assert trigger["metadata"]["databaseIndex"] == str(redis.database)


def test_the_gpu_scaler_sums_every_list_the_broker_queues_gpu_tasks_in(redis_url: str) -> None:
    """Tasks of every priority go to the `gpu` queue of a real Redis through kombu; the scaler's lists
    hold all of them, and its formula adds up every list (KEDA would otherwise take the largest)."""
    import redis as redis_client
    from celery import Celery

    from app.core.queue import QUEUE_GPU, TASK_RENDER_SEGMENT

    (scaler,) = _by_kind("ScaledObject").values()
    triggers = {trigger["name"]: trigger["metadata"] for trigger in scaler["spec"]["triggers"]}
    modifiers = scaler["spec"]["advanced"]["scalingModifiers"]
    assert re.split(r"\s*\+\s*", modifiers["formula"]) == list(triggers)
    assert modifiers["metricType"] == "AverageValue"
    assert {metadata["listLength"] for metadata in triggers.values()} == {modifiers["target"]}

    prefix = f"redub_scaler_{uuid.uuid4().hex}:"
    producer = Celery("scaler-test", broker=redis_url)
    producer.conf.broker_transport_options = {"global_keyprefix": prefix}
    sent = 0
    for priority in range(10):
        for _ in range(priority + 1):  # a different count per priority: a list counted twice would show
            producer.send_task(TASK_RENDER_SEGMENT, args=["x"], queue=QUEUE_GPU, priority=priority)
            sent += 1
    client = redis_client.Redis.from_url(redis_url)
    try:
        lengths = [client.llen(prefix + metadata["listName"]) for metadata in triggers.values()]
        assert sum(lengths) == sent and all(lengths)
        assert set(client.keys(prefix + QUEUE_GPU + "*")) == {
            (prefix + metadata["listName"]).encode() for metadata in triggers.values()
        }
    finally:
        client.delete(*client.keys(prefix + "*"))
        producer.close()


def test_the_cpu_workers_liveness_probe_is_the_compose_health_check() -> None:
    (container,) = _by_kind("Deployment")["redub-worker-cpu"]["spec"]["template"]["spec"]["containers"]
    probe = container["livenessProbe"]["exec"]["command"]
    kind, line = load("docker-compose.yml")["services"]["worker-cpu"]["healthcheck"]["test"]
    assert (kind, probe[:2]) == ("CMD-SHELL", ["sh", "-c"])
    assert probe[2] == line.replace("$$", "$")

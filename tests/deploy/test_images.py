"""What the images install: `pip install .` from exactly what a Dockerfile copies, run as installed."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from sqlalchemy import create_engine, inspect, text

from app.core.migrate import alembic_config
from model.catalog import SHIPPED_MODEL, shipped_model_path
from tests.conftest import ROOT
from tests.deploy.dockerfiles import assemble_workdir, copy_sources, ignore_patterns, ignored, instructions

FIRST_PARTY = {"app", "cli", "worker", "model", "migrations"}

# Run from the unpacked wheel only (no checkout on the path): migrate, then list the models it carries.
INSTALLED_RUN = """
import json, sys
from app.core.migrate import alembic_config, upgrade
upgrade()
found = {"migrations": alembic_config().get_main_option("script_location"), "models": {}}
if sys.argv[1] in ("models", "api"):
    if sys.argv[1] == "api":
        from app.main import create_app
        create_app()  # every router and what it imports, as `redub serve` loads them
    from model.catalog import available_models
    found["models"] = {name: str(entry.path) for name, entry in available_models().items() if entry.path}
print(json.dumps(found))
"""


@pytest.fixture(scope="module")
def image_wheel(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """The wheel `pip install .` builds inside an image, from that Dockerfile's COPY lines (one per file)."""
    built: dict[str, Path] = {}

    def build(dockerfile: str) -> Path:
        if dockerfile not in built:
            workdir = tmp_path_factory.mktemp("workdir")
            assemble_workdir(ROOT / dockerfile, workdir)
            out = tmp_path_factory.mktemp("wheel")
            # No build isolation: the venv's setuptools meets the build requirement; nothing is fetched.
            command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
            subprocess.run(
                [*command, str(workdir), "-w", str(out)],
                check=True,
                capture_output=True,
                timeout=600,
            )
            (built[dockerfile],) = out.glob("redub-*.whl")
        return built[dockerfile]

    return build


def _run_installed(wheel: Path, directory: Path, what: str) -> tuple[dict[str, object], str]:
    site = directory / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    database = f"sqlite:///{directory / 'installed.db'}"
    environment = {name: value for name, value in os.environ.items() if not name.startswith("REDUB_")}
    environment |= {"PYTHONPATH": str(site), "REDUB_DATABASE_URL": database}
    # -P and a folder without sources as cwd: only the unpacked wheel provides app, migrations and model.
    result = subprocess.run(
        [sys.executable, "-P", "-c", INSTALLED_RUN, what],
        cwd=directory,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1]), database


@pytest.mark.parametrize("dockerfile", ["Dockerfile.api", "Dockerfile.worker"])
def test_the_installed_package_migrates_without_the_source_tree(
    image_wheel: Callable[[str], Path], dockerfile: str, tmp_path: Path
) -> None:
    wheel = image_wheel(dockerfile)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    shipped = {"migrations/alembic.ini", "migrations/env.py", "migrations/script.py.mako"}
    revisions = {
        f"migrations/versions/{path.name}" for path in (ROOT / "migrations" / "versions").glob("*.py")
    }
    assert shipped | revisions <= names

    found, database = _run_installed(wheel, tmp_path, "migrations")

    assert Path(str(found["migrations"])).is_relative_to(tmp_path / "site")
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    engine = create_engine(database)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == head
            assert {"jobs", "api_keys"} <= set(inspect(connection).get_table_names())
    finally:
        engine.dispose()


# The API validates a dub's model against the same catalog the worker renders with (the cards, no weights
# loaded): an API image without it failed at import, and one without the checkpoint would refuse its id.
@pytest.mark.parametrize(("dockerfile", "what"), [("Dockerfile.worker", "models"), ("Dockerfile.api", "api")])
def test_the_image_carries_the_shipped_checkpoint(
    image_wheel: Callable[[str], Path], tmp_path: Path, dockerfile: str, what: str
) -> None:
    wheel = image_wheel(dockerfile)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    checkpoint = shipped_model_path()
    files = {path.relative_to(ROOT).as_posix() for path in checkpoint.rglob("*") if path.is_file()}
    assert files and files <= names

    found, _ = _run_installed(wheel, tmp_path, what)

    models = found["models"]
    assert isinstance(models, dict)
    assert Path(models[SHIPPED_MODEL]).is_relative_to(tmp_path / "site")


def _requirements(lines: list[str]) -> dict[str, Requirement]:
    parsed = [Requirement(line) for line in lines]
    return {canonicalize_name(requirement.name): requirement for requirement in parsed}


def _pyproject_requirements() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return _requirements(project["dependencies"])


def _api_image_requirements() -> dict[str, Requirement]:
    installs = [
        arguments
        for keyword, arguments in instructions(ROOT / "Dockerfile.api")
        if keyword == "RUN" and arguments.startswith("pip install") and '"' in arguments
    ]
    assert len(installs) == 1, "Dockerfile.api lists its dependencies in one `pip install`"
    return _requirements(re.findall(r'"([^"]+)"', installs[0]))


def _imported_modules(paths: list[Path]) -> set[str]:
    modules = set()
    for path in paths:
        for node in ast.parse(path.read_text()).body:  # module level: what importing the file needs
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return modules - FIRST_PARTY - set(sys.stdlib_module_names) - {"__future__"}


def _installed_closure(requirements: dict[str, Requirement]) -> set[str]:
    """The distributions pip installs for these requirements, read from this venv's metadata."""
    seen: set[str] = set()
    todo = [(name, set(requirement.extras)) for name, requirement in requirements.items()]
    while todo:
        name, extras = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            lines = metadata.requires(name) or []
        except metadata.PackageNotFoundError:  # an optional extra this venv does without
            continue
        for line in lines:
            requirement = Requirement(line)
            marker = requirement.marker
            if marker is None or any(marker.evaluate({"extra": extra}) for extra in extras or {""}):
                todo.append((canonicalize_name(requirement.name), set(requirement.extras)))
    return seen


def test_the_api_image_installs_what_its_code_imports_with_the_projects_floors() -> None:
    image = _api_image_requirements()
    project = _pyproject_requirements()
    # Same specifier and extras as pyproject: its security floors and celery's Redis extra hold here too.
    for name, requirement in image.items():
        assert name in project, f"Dockerfile.api installs {name}, which pyproject does not declare"
        assert (requirement.specifier, requirement.extras) == (
            project[name].specifier,
            project[name].extras,
        ), name
    copied = [
        path
        for sources, _ in copy_sources(ROOT / "Dockerfile.api")
        for source in sources
        for path in ([ROOT / source] if (ROOT / source).is_file() else sorted((ROOT / source).rglob("*.py")))
        if path.suffix == ".py"
    ]
    distributions = metadata.packages_distributions()
    needed = {canonicalize_name(distributions[module][0]) for module in _imported_modules(copied)}
    # `redub serve` imports its server lazily.
    needed.add("uvicorn")
    assert needed - _installed_closure(image) == set()
    assert "packaging" in _installed_closure({"celery": image["celery"]})


def test_the_worker_image_pins_torch_as_the_makefile_does() -> None:
    makefile_pin = re.search(r"^TORCH := torch==(\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert makefile_pin is not None
    build_arguments = dict(
        arguments.split("=", 1)
        for keyword, arguments in instructions(ROOT / "Dockerfile.worker")
        if keyword == "ARG" and "=" in arguments
    )
    assert build_arguments["TORCH_VERSION"] == makefile_pin.group(1)
    torch_installs = [
        arguments for keyword, arguments in instructions(ROOT / "Dockerfile.worker") if "torch==" in arguments
    ]
    assert torch_installs == ['pip install --index-url "$TORCH_INDEX_URL" "torch==$TORCH_VERSION"']


def test_the_build_context_leaves_out_the_venv_and_secrets_but_not_the_sources() -> None:
    patterns = ignore_patterns()
    for path in (".venv/lib/python3.11/site-packages/torch", ".git/objects", ".env", "models/other/vae"):
        assert ignored(path, patterns), path
    for dockerfile in ("Dockerfile.api", "Dockerfile.worker"):
        for sources, _ in copy_sources(ROOT / dockerfile):
            for source in sources:
                assert not ignored(source, patterns), (dockerfile, source)
    assert not ignored("model/weights/redub-mini-synth/model_index.json", patterns)
    assert not ignored("app/models/job.py", patterns)
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()

"""requirements.lock pins every package the project runs on: each dependency of pyproject (the dev extra
included) and everything those need in turn, at one exact version that the pyproject range admits."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
# Installed before everything else, from the CPU or the CUDA build (Makefile, Dockerfile.worker).
NOT_LOCKED = {"torch"}


def _lock() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, separator, version = line.partition("==")
        assert separator and version, f"not an exact pin: {line!r}"
        pins[canonicalize_name(name)] = Version(version)
    return pins


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + project["optional-dependencies"]["dev"]
    return [Requirement(line) for line in lines]


def _needed(requirement: Requirement) -> list[Requirement]:
    """What the installed distribution of `requirement` needs, with the extras asked for."""
    extras = requirement.extras or {""}
    needed = []
    for line in metadata.requires(requirement.name) or []:
        child = Requirement(line)
        if child.marker is None or any(child.marker.evaluate({"extra": extra}) for extra in extras):
            needed.append(child)
    return needed


def test_every_declared_dependency_is_pinned_within_its_range() -> None:
    pins = _lock()
    for requirement in _declared():
        name = canonicalize_name(requirement.name)
        if name in NOT_LOCKED:
            assert name not in pins
            continue
        assert name in pins, f"{requirement.name} is not in requirements.lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {name}=={pins[name]}, outside pyproject's {requirement}"
        )


def test_everything_the_dependencies_need_is_pinned_too() -> None:
    pins = _lock()
    missing = set()
    seen: set[str] = set()
    pending = [requirement for requirement in _declared() if requirement.name not in NOT_LOCKED]
    while pending:
        requirement = pending.pop()
        key = f"{canonicalize_name(requirement.name)}{sorted(requirement.extras)}"
        if key in seen:
            continue
        seen.add(key)
        if canonicalize_name(requirement.name) not in pins:
            missing.add(requirement.name)
            continue
        pending.extend(child for child in _needed(requirement) if child.name not in NOT_LOCKED)
    assert not missing, f"needed but not in requirements.lock: {sorted(missing)}"

"""Read the Dockerfiles and .dockerignore as Docker does, enough to redo an image's `pip install .` here."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from tests.conftest import ROOT


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in dockerfile.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    found = []
    for line in logical:
        keyword, _, arguments = line.strip().partition(" ")
        found.append((keyword.upper(), arguments.strip()))
    return found


def ignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip().strip("/") for line in lines if line.strip() and not line.startswith("#")]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    # Go's filepath.Match from the context root, plus `**` for any number of folders (Docker's rules).
    parts = re.split(r"(\*\*/?|\*|\?)", pattern)
    regex = "".join(
        ".*"
        if part.startswith("**")
        else "[^/]*"
        if part == "*"
        else "[^/]"
        if part == "?"
        else re.escape(part)
        for part in parts
    )
    return re.compile(regex + r"\Z")


def ignored(relative: str, patterns: list[str]) -> bool:
    """Whether .dockerignore keeps `relative` (or a folder above it) out of the build context."""
    assert not any(pattern.startswith("!") for pattern in patterns), "exceptions are not modelled here"
    pieces = relative.strip("/").split("/")
    prefixes = ["/".join(pieces[: index + 1]) for index in range(len(pieces))]
    return any(_pattern_regex(pattern).match(prefix) for pattern in patterns for prefix in prefixes)


def copy_sources(dockerfile: Path) -> list[tuple[list[str], str]]:
    """Each COPY's sources and destination (flags such as --chown dropped)."""
    copies = []
    for keyword, arguments in instructions(dockerfile):
        if keyword == "COPY":
            words = [word for word in arguments.split() if not word.startswith("--")]
            copies.append((words[:-1], words[-1]))
    return copies


def assemble_workdir(dockerfile: Path, target: Path) -> None:
    """The image's WORKDIR as its COPY lines leave it, from the context .dockerignore lets through."""
    patterns = ignore_patterns()

    def dropped(directory: str, names: list[str]) -> list[str]:
        relative = Path(directory).relative_to(ROOT)
        return [name for name in names if ignored(str(relative / name), patterns)]

    for sources, destination in copy_sources(dockerfile):
        into_folder = destination.endswith("/") or len(sources) > 1
        for source in sources:
            assert not ignored(source, patterns), (
                f"{dockerfile.name} copies {source}, which .dockerignore drops"
            )
            origin = ROOT / source
            place = target / destination
            if origin.is_dir():
                shutil.copytree(origin, place, ignore=dropped, dirs_exist_ok=True)
            else:
                if into_folder:
                    place = place / origin.name
                place.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, place)

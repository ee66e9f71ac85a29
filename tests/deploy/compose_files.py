"""Read docker-compose files as Compose does where the tests need it: `!reset`, `${VAR...}` interpolation."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.conftest import ROOT


class Reset:
    """Compose's `!reset` tag: the override removes the base file's value."""


class _ComposeLoader(yaml.SafeLoader):
    pass


_ComposeLoader.add_constructor("!reset", lambda loader, node: Reset())

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, and $$ for a literal $.
_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def load(name: str) -> dict[str, Any]:
    with (ROOT / name).open() as stream:
        document = yaml.load(stream, Loader=_ComposeLoader)
    assert isinstance(document, dict)
    return document


def variables(name: str) -> dict[str, bool]:
    """Every variable the file interpolates, and whether it is required (`:?`)."""
    found: dict[str, bool] = {}
    for match in _VARIABLE.finditer((ROOT / name).read_text()):
        if match.group("name"):
            found[match.group("name")] = found.get(match.group("name"), False) or "?" in (
                match.group("op") or ""
            )
    return found


def interpolate(value: Any, environment: dict[str, str]) -> Any:
    """`value` with every variable replaced from `environment`, as `docker compose config` prints it."""
    if isinstance(value, dict):
        return {key: interpolate(item, environment) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, environment) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, op, argument = match.group("name"), match.group("op") or "", match.group("arg") or ""
        if name is None:
            return "$"
        present = environment.get(name)
        usable = present is not None and (present != "" or not op.startswith(":"))
        if op.endswith("?") and not usable:
            raise KeyError(f"{name}: {argument}")
        if op.endswith("-") and not usable:
            return argument
        return present or ""

    return _VARIABLE.sub(substitute, value)


def services(name: str, environment: dict[str, str]) -> dict[str, dict[str, Any]]:
    document = interpolate(load(name), environment)
    return dict(document["services"])

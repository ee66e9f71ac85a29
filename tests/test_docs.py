"""The docs cannot drift from the code: the error page is the catalog rendered, the catalog holds exactly the
codes the code gives, and the pages name only endpoints of the OpenAPI document, settings that exist and the
defaults those settings have."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from app.core.config import Settings
from app.core.error_catalog import CATALOG, markdown
from tests.conftest import ROOT

DOCS = ROOT / "docs"
PAGES = [*sorted(DOCS.glob("*.md")), ROOT / "README.md"]
SOURCES = ("app", "worker", "cli", "model", "clients/python/redub_client")
# Modules whose module-level snake_case strings are error codes, by design.
CODE_MODULES = ("app/core/errors.py", "app/core/fetch.py", "worker/engine/errors.py")
_SNAKE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")


def _string(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and _SNAKE.match(node.value):
        return node.value
    return None


def _callee(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    return call.func.attr if isinstance(call.func, ast.Attribute) else None


def codes_in_code() -> dict[str, set[int | None]]:
    """Every error code the code can give, with the HTTP statuses it is raised with (None: not an answer)."""
    found: dict[str, set[int | None]] = defaultdict(set)
    for root in ("app", "worker", "cli"):
        for path in sorted((ROOT / root).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            relative = path.relative_to(ROOT).as_posix()
            if relative in CODE_MODULES:
                for statement in tree.body:
                    if isinstance(statement, ast.Assign):
                        values = (
                            statement.value.values
                            if isinstance(statement.value, ast.Dict)
                            else [statement.value]
                        )
                        for value in values:
                            if (code := _string(value)) is not None:
                                found[code].add(None)
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                callee = _callee(node)
                position = {"ApiError": 1, "problem_response": 1, "_fail": 1, "fail_job": 1, "fail": 0}.get(
                    callee or ""
                )
                if (
                    position is not None
                    and len(node.args) > position
                    and (code := _string(node.args[position])) is not None
                ):
                    status = node.args[0] if position == 1 else None
                    is_status = isinstance(status, ast.Constant) and isinstance(status.value, int)
                    found[code].add(status.value if is_status else None)  # type: ignore[union-attr]
                for keyword in node.keywords:
                    if keyword.arg == "error_code" and (code := _string(keyword.value)) is not None:
                        found[code].add(None)
    return found


def test_the_errors_page_is_the_catalog_rendered() -> None:
    assert (DOCS / "errors.md").read_text(encoding="utf-8") == markdown(), (
        "docs/errors.md is stale: run `python -m app.core.error_catalog > docs/errors.md`"
    )


def test_the_catalog_holds_exactly_the_codes_the_code_gives() -> None:
    found = codes_in_code()
    documented = {entry.code: entry for entry in CATALOG}
    assert len(documented) == len(CATALOG), "a code is in the catalog twice"
    assert set(found) - set(documented) == set(), "codes given by the code but not documented"
    assert set(documented) - set(found) == set(), "documented codes the code never gives"
    for code, statuses in found.items():
        answered = {status for status in statuses if status is not None}
        if answered:
            assert "request" in documented[code].where, code
            assert {str(status) for status in answered} == {documented[code].status}, code


def test_the_code_scan_sees_every_way_a_code_is_given() -> None:
    found = codes_in_code()
    # One of each: ApiError, problem_response, a module constant, a dict of codes, _fail, error_code=, fail().
    assert found["output_not_ready"] == {409}
    assert found["invalid_json"] == {400}
    assert None in found["speaker_not_found"] and None in found["fetch_timeout"]
    assert None in found["method_not_allowed"]
    assert None in found["internal_error"] and 500 in found["internal_error"]
    assert found["worker_lost"] == {None} and found["database_unreachable"] == {None}


def test_every_catalog_entry_says_what_to_do() -> None:
    places = {"request", "job", "cli"}
    for entry in CATALOG:
        assert entry.meaning and entry.action and entry.retryable, entry.code
        assert entry.where and set(entry.where) <= places, entry.code
        assert bool(entry.status) == ("request" in entry.where), entry.code


def _openapi() -> dict[str, Any]:
    from app.main import create_app

    return create_app().openapi()


def _segments_match(named: str, template: str) -> bool:
    named_parts, template_parts = named.strip("/").split("/"), template.strip("/").split("/")
    if len(named_parts) != len(template_parts):
        return False
    for part, expected in zip(named_parts, template_parts, strict=True):
        placeholder = any(mark in part for mark in ("{", "$", "<", "…"))
        if expected.startswith("{") and expected.endswith("}"):
            continue
        if placeholder or part != expected:
            return False
    return True


_METHOD_PATH = re.compile(r"\b(GET|POST|DELETE|PUT|PATCH) (/v1/[^\s`'\"?)|,]*)")
_ANY_PATH = re.compile(r"(/v1/[A-Za-z0-9_{}$<>…./-]*)")


def named_endpoints(text: str) -> tuple[set[tuple[str, str]], set[str]]:
    """(method, path) pairs written as `POST /v1/dubs`, and every /v1/ path a page or example names."""
    pairs = {(method.lower(), path.rstrip(".")) for method, path in _METHOD_PATH.findall(text)}
    paths = {path.rstrip(".") for path in _ANY_PATH.findall(text)}
    return pairs, paths


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_pages_name_only_endpoints_of_the_openapi_document(page: Path) -> None:
    operations = _openapi()["paths"]
    pairs, paths = named_endpoints(page.read_text(encoding="utf-8"))
    for path in paths:
        if path.endswith(("…", "/")):  # a prefix: `/v1/…`
            assert any(template.startswith(path.rstrip("…")) for template in operations), (page.name, path)
        else:
            assert any(_segments_match(path, template) for template in operations), (page.name, path)
    for method, path in pairs:
        templates = [template for template in operations if _segments_match(path, template)]
        assert any(method in operations[template] for template in templates), (page.name, method, path)


def test_the_endpoint_check_catches_a_wrong_one() -> None:
    pairs, paths = named_endpoints(
        "`DELETE /v1/dubs/{id}/cancel` and curl $BASE/v1/dub/$ID then `GET /v1/dubs/preflight/{id}/frame`"
    )
    operations = _openapi()["paths"]
    assert ("delete", "/v1/dubs/{id}/cancel") in pairs and "/v1/dub/$ID" in paths
    assert not any(_segments_match("/v1/dub/$ID", template) for template in operations)
    cancel = [template for template in operations if _segments_match("/v1/dubs/{id}/cancel", template)]
    assert cancel and not any("delete" in operations[template] for template in cancel)
    assert any(_segments_match("/v1/dubs/preflight/{id}/frame", template) for template in operations)


def _source_text() -> str:
    return "\n".join(
        path.read_text(encoding="utf-8") for root in SOURCES for path in sorted((ROOT / root).rglob("*.py"))
    )


def _compose_variables() -> set[str]:
    """The ${REDUB_...} variables the compose files read (host-side settings such as bind addresses)."""
    text = "\n".join(path.read_text(encoding="utf-8") for path in ROOT.glob("docker-compose*.yml"))
    return set(re.findall(r"\$\{(REDUB_[A-Z0-9_]+)", text))


def test_pages_name_only_settings_that_exist() -> None:
    source = _source_text()
    compose = _compose_variables()
    unknown = [
        (page.name, name)
        for page in PAGES
        for name in sorted(set(re.findall(r"\bREDUB_[A-Z0-9_]*[A-Z0-9]\b", page.read_text(encoding="utf-8"))))
        if name.removeprefix("REDUB_").lower() not in Settings.model_fields
        and f'"{name}"' not in source
        and name not in compose
    ]
    assert unknown == []


def test_the_limits_page_states_the_defaults_the_settings_have() -> None:
    rows = re.findall(r"^\| `REDUB_([A-Z0-9_]+)` \| `([^`]*)` \|", (DOCS / "limits.md").read_text(), re.M)
    assert len(rows) >= 10
    for name, stated in rows:
        field = Settings.model_fields[name.lower()]
        default = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
        assert stated == str(default), (name, stated, default)
    named = set(
        re.findall(r"`REDUB_(DEFAULT_[A-Z_]+|READ_RATE_LIMIT_MULTIPLIER)`", (DOCS / "limits.md").read_text())
    )
    assert {"DEFAULT_RATE_LIMIT_PER_MINUTE", "DEFAULT_MAX_CONCURRENT", "DEFAULT_MAX_DURATION_S"} <= named


def test_links_between_pages_resolve() -> None:
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if target.startswith(("http://", "https://")):
                continue
            assert (page.parent / target).exists(), (page.name, target)

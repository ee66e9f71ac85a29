"""The renderers package has no import cycle: each module imports alone, and only `dit` loads torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import worker.engine.renderers

PACKAGE = "worker.engine.renderers"
PACKAGE_DIR = Path(worker.engine.renderers.__file__).parent
ROOT = PACKAGE_DIR.parents[2]


def sibling_imports(module_path: Path) -> set[str]:
    """The modules of this package that a module imports anywhere (on-demand imports inside functions too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(module_path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            if name == PACKAGE:
                found.add("__init__")
            elif name.startswith(f"{PACKAGE}.") and (PACKAGE_DIR / f"{name.rsplit('.', 1)[1]}.py").is_file():
                found.add(name.rsplit(".", 1)[1])
    return found


def test_the_modules_import_each_other_in_one_direction_only() -> None:
    graph = {path.stem: sibling_imports(path) for path in PACKAGE_DIR.glob("*.py")}
    assert set(graph) == {"__init__", "base", "passthrough", "registry", "dit"}
    assert graph["base"] == set()
    assert graph["passthrough"] == {"base"} and graph["dit"] == {"base"}
    assert graph["registry"] == {"base", "passthrough", "dit"}
    # No cycle: repeatedly drop modules that import nothing left in the graph.
    remaining = dict(graph)
    while remaining:
        leaves = [name for name, imports in remaining.items() if not imports & set(remaining)]
        assert leaves, f"import cycle among {sorted(remaining)}"
        for leaf in leaves:
            del remaining[leaf]


@pytest.mark.parametrize("module", ["base", "passthrough", "registry", "dit"])
def test_each_module_imports_alone_in_a_fresh_interpreter(module: str) -> None:
    check = (
        f"import sys, {PACKAGE}.{module}\n"
        f"assert ('torch' in sys.modules) == ({module!r} == 'dit'), 'torch loaded: ' + {module!r}\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr

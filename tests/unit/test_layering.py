"""The layering is a contract CI checks: the packages form layers (no cycle), the
pipeline logic and the handler SDK never import the runner, the stack manager or
the CLI (pyproject.toml's [tool.importlinter]); and a function's own files import
only the SDK and pipeline logic, so the same files deploy to Nuclio."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUNCTION_FILES = sorted(p for p in (ROOT / "functions").rglob("*.py") if "tests" not in p.parts)
NOT_FOR_FUNCTIONS = ("triptych.runtime", "triptych.stack", "triptych.cli", "triptych.api", "triptych.benchmark")


def test_the_import_contracts_hold():
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "BROKEN" not in proc.stdout and proc.stdout.count("KEPT") >= 3


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("path", FUNCTION_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_function_imports_neither_the_runner_nor_the_stack_nor_the_cli(path):
    wrong = [name for name in _imports(path) if name.startswith(NOT_FOR_FUNCTIONS)]
    assert not wrong, f"{path.name} imports {wrong}: a function may import triptych.sdk and pipeline logic only"

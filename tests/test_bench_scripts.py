"""The benchmark scripts under pipelines/bench run where no test runs them (a GPU session, `dvc repro
pipelines/bench/dvc.yaml`): every name they import from ``ld`` must still exist there, also the imports inside
their functions (a GPU check once imported ``NMS_TYPES`` from the module it had moved out of)."""
from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "pipelines" / "bench"


def _ld_imports(script: Path) -> list[tuple[str, str, int]]:
    """``(module, name, line)`` of every ``from ld... import name`` in ``script``, at any depth."""
    return [(node.module, alias.name, node.lineno) for node in ast.walk(ast.parse(script.read_text()))
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "ld"
            for alias in node.names]


@pytest.mark.parametrize("script", sorted(BENCH.glob("*.py")), ids=lambda p: p.name)
def test_every_name_a_bench_script_imports_from_ld_exists(script):
    missing = [f"{script.name}:{line}: {module}.{name}" for module, name, line in _ld_imports(script)
               if not hasattr(importlib.import_module(module), name)
               and importlib.util.find_spec(f"{module}.{name}") is None]
    assert not missing, missing


def test_the_check_finds_a_moved_name(tmp_path):
    script = tmp_path / "old.py"
    script.write_text("def main():\n    from ld.ops.voting_cluster_diou_nms import NMS_TYPES\n")
    (module, name, line), = _ld_imports(script)
    assert line == 2 and not hasattr(importlib.import_module(module), name)

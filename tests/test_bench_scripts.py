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


def test_the_gpu_checks_nms_agreement_step_compares_the_kernels_that_run(monkeypatch):
    """On the CPU the kernels that run are mmcv's and the pure one (no torchvision here): both keep the pure
    kernel's boxes in every case; a kernel that drops a box is counted as disagreeing."""
    import sys

    import ld.models  # noqa: F401  (installs the fallbacks, as the script's imports do)
    import ld.models.mmcv_cuda

    monkeypatch.syspath_prepend(str(BENCH))
    monkeypatch.setattr(ld.models.mmcv_cuda, "chosen_nms_kernel", lambda: (None, "pure"))
    try:
        gpu_check = importlib.import_module("gpu_check")
        assert gpu_check.nms_kernels_agree("cpu", cases=4) == {"cases": 4, "equal_to_pure_kernel": {
            "ld.ops.nms": 4, "mmcv": 4}}
        monkeypatch.setattr(ld.models.mmcv_cuda, "chosen_nms_kernel",
                            lambda: (lambda b, s, t: ld.models.mmcv_cuda._mmcv_nms(b, s, t)[1][1:], "dropping"))
        assert gpu_check.nms_kernels_agree("cpu", cases=4)["equal_to_pure_kernel"]["torchvision"] == 0
    finally:
        for name in ("gpu_check", "nms"):  # the scripts' modules, out of the way of any later import
            sys.modules.pop(name, None)

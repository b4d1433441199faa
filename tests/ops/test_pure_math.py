"""The paper's math lives in pure torch modules (``ld/ops``): no mmcv, mmdet or mmengine import; and
``import ld`` is light: it loads none of them and patches nothing."""
import ast
import subprocess
import sys

import pytest

from tests.conftest import REPO

PURE = sorted(path.stem for path in (REPO / "ld" / "ops").glob("*.py"))


def test_the_pure_math_package_holds_the_papers_math():
    assert {"ld_loss", "distillation", "vlr", "box_ops", "dgqp", "ambiguity", "voting_cluster_diou_nms",
            "nms"} <= set(PURE)


@pytest.mark.parametrize("name", PURE)
def test_module_imports_no_openmmlab_package(name):
    tree = ast.parse((REPO / "ld" / "ops" / f"{name}.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"mmcv", "mmdet", "mmengine"}, imported
    assert imported <= {"__future__", "torch", "ld", "math", "numpy", "typing", "dataclasses"}, imported


def test_import_ld_loads_no_openmmlab_package_and_patches_nothing():
    code = ("import sys, ld; "
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'mmcv', 'mmdet', 'mmengine', 'pandas'}); "
            "print(heavy, ld.ld_loss.__module__, ld.vlr_region.__module__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "ld.ops.ld_loss", "ld.ops.vlr"], out.stdout + out.stderr

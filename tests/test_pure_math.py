"""The paper's math lives in pure torch modules: no mmcv, mmdet or mmengine import."""
import ast

import pytest

from tests.conftest import REPO

PURE = ["box_ops", "ld_loss", "vlr", "dgqp", "voting_cluster_diou_nms", "ambiguity"]


@pytest.mark.parametrize("name", PURE)
def test_module_imports_no_openmmlab_package(name):
    tree = ast.parse((REPO / "ld" / f"{name}.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"mmcv", "mmdet", "mmengine"}, imported
    assert imported <= {"__future__", "torch", "ld", "math", "typing", "dataclasses"}, imported

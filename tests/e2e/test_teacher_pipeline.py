"""End to end: a released teacher listed under `teachers` is imported and distilled from by `dvc repro`.
(A module of its own, beside `test_pipeline.py`'s smoke repro: it needs none of that repro's outputs, so
`make test`'s second worker runs it meanwhile.)"""
import json

import pytest
import yaml

from tests.conftest import REPO
from tests.e2e.test_pipeline import PARAMS, _clone, _run, fork_server  # noqa: F401  (fixture)

# pytest-timeout: an import, a teacher evaluation, a distillation and its evaluation through `dvc repro`
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def test_a_released_teacher_is_imported_and_distilled_from_through_dvc_repro(tmp_path, fork_server):  # noqa: F811
    """An mmdet-2.x-layout R-101 checkpoint (random weights, the smoke-size stand-in of mmdet's
    gfl_r101_fpn_mstrain_2x_coco) listed under `teachers` replaces the teacher's train stage."""
    import hashlib

    import torch
    from mmdet.registry import MODELS
    from mmengine.config import Config

    from ld.data.synth import CLASSES
    from ld.profiles import apply_profile, get_profile

    root, env = _clone(tmp_path / "clone")
    cfg = Config.fromfile(str(REPO / "pipelines/configs/gfl_r101_2x.py"))
    apply_profile(cfg, get_profile(PARAMS, "smoke"), data_root=root / "data" / "smoke")
    torch.manual_seed(0)
    state = MODELS.build(cfg.model).state_dict()
    released = tmp_path / "gfl_r101_fpn_mstrain_2x_coco.pth"
    torch.save({"meta": {"mmdet_version": "2.10.0", "CLASSES": CLASSES, "epoch": 24},
                "state_dict": state, "optimizer": {"state": {}, "param_groups": []}}, released)
    sha = hashlib.sha256(released.read_bytes()).hexdigest()
    # smoke's recipe on 8 training and 4 validation images: 2 iterations an epoch is all an import needs
    smoke = PARAMS["profiles"]["smoke"]
    profiles = {**PARAMS["profiles"], "smoke": {**smoke, "data": {**smoke["data"], "num_train": 8, "num_val": 4}}}
    teacher = {"checkpoint": str(released), "sha256": sha[:8], "published_ap": 44.7}
    params = {**PARAMS, "profiles": profiles, "train": [], "teachers": {"gfl_r101_2x": teacher},
              "distill": {"ld_r18_gfl_r101_1x": {"teacher": "gfl_r101_2x"}}}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    targets = ["eval_teacher@gfl_r101_2x", "eval_distill@ld_r18_gfl_r101_1x"]
    env = fork_server(root, env)
    out = _run(["dvc", "repro", *targets], root, env)
    assert "Running stage 'teacher@gfl_r101_2x'" in out and "train@" not in out
    models = root / "models" / "smoke"
    source = json.loads((models / "gfl_r101_2x" / "source.json").read_text())
    assert source["format"] == "mmdet2" and source["sha256"] == sha and source["published"] == {"AP": 44.7}
    imported = torch.load(models / "gfl_r101_2x" / "model.pth")["state_dict"]
    assert all(torch.equal(imported[k], v) for k, v in state.items())
    teacher = json.loads((root / "results" / "smoke" / "metrics" / "gfl_r101_2x.json").read_text())
    assert teacher["published"] == {"AP": 44.7} and 0.0 <= teacher["coco"]["AP"] <= 1.0
    student = json.loads((root / "results" / "smoke" / "metrics" / "ld_r18_gfl_r101_1x.json").read_text())
    assert 0.0 <= student["coco"]["AP"] <= 1.0
    assert "Running stage" not in _run(["dvc", "repro", *targets], root, env)


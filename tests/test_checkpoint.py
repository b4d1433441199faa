import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import ld.engine.live
from ld.checkpoint import load_checkpoint
from ld.errors import BadFileError


class _Arbitrary:
    def __init__(self):
        self.payload = "anything"


def _mmengine_like_checkpoint():
    from mmengine.logging import MessageHub

    hub = MessageHub.get_instance("ld-test-ckpt")
    for i in range(5):
        hub.update_scalar("train/loss", 1.0 / (i + 1))
    hub.update_info("iter", 5)
    return {"meta": {"epoch": 1, "iter": 5, "seed": 0, "message_hub": hub.state_dict(),
                     "dataset_meta": {"classes": ("a", "b")}},
            "state_dict": {"w": torch.arange(6.0).reshape(2, 3)},
            "optimizer": {"state": {}, "param_groups": [{"lr": 0.01, "params": [0]}]}}


def test_mmengine_checkpoint_round_trips_with_weights_only(tmp_path):
    path = tmp_path / "ckpt.pth"
    torch.save(_mmengine_like_checkpoint(), path)
    ckpt = load_checkpoint(path)
    assert torch.equal(ckpt["state_dict"]["w"], torch.arange(6.0).reshape(2, 3))
    buffer = ckpt["meta"]["message_hub"]["log_scalars"]["train/loss"]
    assert isinstance(buffer._log_history, np.ndarray)
    assert buffer.current() == pytest.approx(0.2)
    # plain torch.load with the default weights_only=True accepts it too once ld is imported
    assert torch.load(path)["meta"]["iter"] == 5


def test_weights_only_is_not_switched_off(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {}, "meta": {"obj": _Arbitrary()}}, path)
    with pytest.raises(BadFileError, match=r"evil\.pth.*refused"):
        load_checkpoint(path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)


def test_missing_checkpoint_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found: give an existing file"):
        load_checkpoint(tmp_path / "nope.pth")


def test_import_registers_project_modules():
    from mmengine.registry import VISBACKENDS

    assert VISBACKENDS.get("DVCLiveCurves") is ld.engine.live.DVCLiveCurves


class _ReachesForAttribute:
    """Pickles as getattr(numpy.ndarray, 'tofile'): what a hostile file would do with a free getattr."""

    def __reduce__(self):
        return (getattr, (np.ndarray, "tofile"))


def test_getattr_is_allowed_only_for_history_buffer_statistics(tmp_path):
    path = tmp_path / "reach.pth"
    torch.save({"meta": {"x": _ReachesForAttribute()}}, path)
    with pytest.raises(BadFileError, match="refused"):
        load_checkpoint(path)


def test_a_missing_model_names_the_stage_that_makes_it(tmp_path, monkeypatch):
    import yaml

    from ld.checkpoint import require_exported
    from ld.errors import MissingFileError
    from ld.layout import making_stage

    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("train: [gfl_r18_1x]\nteachers: {gfl_r101_2x: {checkpoint: x}}\n"
                                          "distill: {ld_r18_gfl_r50_1x: {teacher: gfl_r50_2x}}\n"
                                          "study: {baselines: [gfl_r18_1x], students: {ld_r18_gfl_r50_1x: {}},\n"
                                          "        imitation: {im_fitnet_r18_gfl_r50_1x: {teacher: gfl_r50_2x}}}\n")
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    assert making_stage("models/smoke/gfl_r18_1x", params) == "train@gfl_r18_1x"
    assert making_stage("models/mini/ld_r18_gfl_r50_1x", params) == "distill@ld_r18_gfl_r50_1x"
    assert making_stage("models/coco/gfl_r101_2x", params) == "teacher@gfl_r101_2x"
    assert making_stage("models/smoke/seeds/ld_r18_gfl_r50_1x/seed1", params) == "seeds_distill@ld_r18_gfl_r50_1x"
    assert making_stage("models/smoke/seeds/gfl_r18_1x/seed1", params) == "seeds_train@gfl_r18_1x"
    assert making_stage("models/mini/seeds/im_fitnet_r18_gfl_r50_1x/seed0", params) == \
        "seeds_imitation@im_fitnet_r18_gfl_r50_1x"  # a run of the study only: every seed, the main one too
    assert making_stage("models/smoke/seeds/gfl_r50_2x/seed1", params) is None  # not a study run
    assert making_stage("models/smoke/unknown", params) is None and making_stage("/elsewhere/run", params) is None
    with pytest.raises(MissingFileError) as err:
        require_exported("models/smoke/gfl_r18_1x")
    message = str(err.value)
    assert message == ("config models/smoke/gfl_r18_1x/config.py not found: get it with `dvc pull "
                       "models/smoke/gfl_r18_1x` (from the DVC remote) or `dvc repro train@gfl_r18_1x`")
    run = tmp_path / "models" / "smoke" / "gfl_r18_1x"
    run.mkdir(parents=True)
    (run / "config.py").write_text("")
    with pytest.raises(MissingFileError, match="model.pth not found"):
        require_exported("models/smoke/gfl_r18_1x")
    (run / "model.pth").write_bytes(b"")
    assert require_exported("models/smoke/gfl_r18_1x") == (Path("models/smoke/gfl_r18_1x/config.py"),
                                                          Path("models/smoke/gfl_r18_1x/model.pth"))
    with pytest.raises(MissingFileError, match=r"config /nowhere/config.py not found: give an existing file"):
        require_exported("/nowhere")

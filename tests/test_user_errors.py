"""What a user gets wrong on the command line is one line naming the flag or key and what to do, exit 2,
before any work: ``--cfg-options`` keys nothing would read, outputs that cannot be written, seeds numpy
refuses, a teacher folder holding a model zoo's config."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ld.cli import main

REPO = Path(__file__).resolve().parents[1]


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("option, says", [
    ("model.bbox_head.nosuch_key=3", "model.bbox_head has no key 'nosuch_key' and its GFLHead takes no such argument"),
    ("optim_wrapper.optimizer.lrr=0.1", "its SGD takes no such argument (did you mean 'lr'?)"),
    ("model.test_cfg.nosuch=1", "model.test_cfg has no key 'nosuch' (it has: max_per_img, min_bbox_size, nms"),
    ("train_dataloader.dataset.pipeline.9.type=Resize", "pipeline is a list of 5: give an index 0..4"),
    ("model.bbox_head.reg_max.bins=3", "model.bbox_head.reg_max is 16, not a dict"),
    ("model.bbox_head", "--cfg-options model.bbox_head: give KEY=VALUE"),
])
def test_a_cfg_option_nothing_reads_is_refused_before_training(option, says, repo_root, tmp_path, capsys):
    argv = ["--profile", "smoke", "train", "pipelines/configs/gfl_r18_1x.py", "--out", str(tmp_path / "out"),
            "--work-root", str(tmp_path / "work"), "--cfg-options", option]
    if "=" not in option:
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
    else:
        assert main(argv) == 2
    assert says in _one_line_error(capsys)
    assert list(tmp_path.iterdir()) == []  # no work folder, no export


@pytest.mark.parametrize("key", ["model.bbox_head.loss_dfl.loss_weight", "optim_wrapper.clip_grad",
                                 "optim_wrapper.paramwise_cfg", "train_dataloader.pin_memory",
                                 "model.bbox_head.init_cfg", "model.neck.relu_before_extra_convs",
                                 "train_dataloader.dataset.pipeline.2.scale", "param_scheduler.1.gamma"])
def test_keys_the_config_has_or_its_classes_take_are_accepted(key, params, tmp_path):
    """A key the config lacks is accepted where its dict's class takes it (mmdet's registries), or the
    builder reads it (an optimizer wrapper's paramwise_cfg, a dataloader's DataLoader arguments)."""
    from ld.engine import option_problem
    from ld.engine.train import build_train_config

    cfg = build_train_config("pipelines/configs/gfl_r18_1x.py", params, profile="smoke", work_root=tmp_path)
    assert option_problem(cfg, key) is None


def test_keywords_follow_kwargs_up_the_classes():
    """An LD head takes its own arguments, GFLHead's, AnchorHead's and BaseModule's; SGD takes no others."""
    import torch

    import ld.models  # noqa: F401
    from ld.engine import keywords_taken
    from ld.models.ld_head import LDGFLHead

    taken = keywords_taken(LDGFLHead)
    assert {"ld_main", "ld_vlr", "kd_main", "reg_max", "loss_dfl", "anchor_generator", "train_cfg", "init_cfg"} <= taken
    assert "nosuch" not in taken and "lr" in keywords_taken(torch.optim.SGD)


def test_eval_refuses_an_option_nothing_reads(tiny_run, tmp_path, capsys, monkeypatch):
    import ld.engine.evaluate as evaluate

    monkeypatch.setattr(evaluate, "predict_coco", lambda *a, **k: pytest.fail("inference ran"))
    model = tiny_run / "model"
    assert main(["eval", str(model / "config.py"), str(model / "model.pth"), "--out", str(tmp_path / "m.json"),
                 "--cfg-options", "model.test_cfg.nosuch=1"]) == 2
    assert "--cfg-options model.test_cfg.nosuch" in _one_line_error(capsys)


@pytest.mark.parametrize("flag, target, says", [
    ("--out", "blocker/m.json", "--out {tmp}/blocker/m.json: its folder {tmp}/blocker is not writable"),
    ("--out", ".", "--out . is a folder: give the file to write"),
    ("--results-out", "blocker/dets.json", "--results-out {tmp}/blocker/dets.json: its folder"),
    ("--tables", "blocker", "--tables {tmp}/blocker is a file"),
])
def test_eval_checks_its_outputs_before_inference(flag, target, says, tiny_run, tmp_path, capsys, monkeypatch):
    import ld.engine.evaluate as evaluate

    monkeypatch.setattr(evaluate, "predict_coco", lambda *a, **k: pytest.fail("inference ran before the check"))
    (tmp_path / "blocker").write_text("a file where a folder is expected")
    model = tiny_run / "model"
    target = target if target == "." else str(tmp_path / target)
    argv = ["eval", str(model / "config.py"), str(model / "model.pth"), "--out", str(tmp_path / "m.json")]
    argv = argv[:-2] + [flag, target] if flag == "--out" else argv + [flag, target]
    assert main(argv) == 2
    assert says.format(tmp=tmp_path) in _one_line_error(capsys)


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_a_seed_numpy_refuses_is_refused_on_the_flag_before_any_work(seed, repo_root, tmp_path, capsys):
    assert main(["--profile", "smoke", "train", "pipelines/configs/gfl_r18_1x.py", "--out", str(tmp_path / "out"),
                 "--work-root", str(tmp_path / "work"), "--seed", str(seed)]) == 2
    assert f"--seed {seed}: give an integer from 0 to 4294967295" in _one_line_error(capsys)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where, text", [("seed: 0", "seed: 4294967296"), ("mini: [0, 1, 2]", "mini: [0, 1, -1]")])
def test_a_seed_numpy_refuses_is_refused_in_params(where, text, repo_root, tmp_path):
    from ld.errors import ConfigError
    from ld.profiles import load_params

    source = (REPO / "params.yaml").read_text()
    assert where in source
    (tmp_path / "params.yaml").write_text(source.replace(where, text, 1))
    with pytest.raises(ConfigError, match=r"seeds?.* must be an integer in \[0, 4294967295\]"):
        load_params(tmp_path / "params.yaml")
    assert load_params(REPO / "params.yaml")["seed"] == 0


def test_a_teacher_folder_with_a_model_zoo_config_says_to_import_it(repo_root, tmp_path, capsys):
    """mmdet's configs inherit from ``../_base_/...`` files beside them: copied alone, they cannot be read."""
    teacher = tmp_path / "gfl_r50_2x"
    teacher.mkdir()
    (teacher / "config.py").write_text("_base_ = ['../_base_/models/gfl_r50_fpn.py']\n")
    shutil.copy(REPO / "params.yaml", teacher / "model.pth")  # never read: the config is refused first
    assert main(["--profile", "smoke", "train", "pipelines/configs/ld_r18_gfl_r50_1x.py", "--teacher", str(teacher),
                 "--out", str(tmp_path / "out"), "--work-root", str(tmp_path / "work")]) == 2
    err = _one_line_error(capsys)
    assert f"teacher config {teacher / 'config.py'} cannot be read as an mmdet config (FileNotFoundError" in err
    assert "`ld teacher import CHECKPOINT --run <its row>`" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gfl_r50_2x"]

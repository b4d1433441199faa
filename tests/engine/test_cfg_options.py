"""``build_train_config(..., cfg_options=...)`` (``ld train --cfg-options KEY=VALUE``): merged after the
profile, so it wins; part of the run's digest; a key the config lacks is refused."""
from __future__ import annotations

import pytest

from ld.engine.train import build_train_config
from ld.errors import ConfigError


def test_options_win_over_the_profile(params, tmp_path):
    plain = build_train_config("pipelines/configs/gfl_r18_1x.py", params, profile="smoke", work_root=tmp_path)
    assert plain.optim_wrapper.optimizer.lr == pytest.approx(0.0125) and plain.train_dataloader.batch_size == 4
    cfg = build_train_config("pipelines/configs/gfl_r18_1x.py", params, profile="smoke", work_root=tmp_path,
                             cfg_options={"optim_wrapper.optimizer.lr": 0.001, "train_dataloader.batch_size": 2,
                                          "model.bbox_head.loss_dfl.loss_weight": 0.5, "randomness.seed": 3})
    assert cfg.optim_wrapper.optimizer.lr == 0.001 and cfg.train_dataloader.batch_size == 2
    assert cfg.model.bbox_head.loss_dfl.loss_weight == 0.5
    assert cfg.randomness.seed == 3 and {"type": "EpochSeedHook", "seed": 3} in cfg.custom_hooks
    assert cfg.work_dir != plain.work_dir  # another run: it does not resume the plain run's checkpoints


def test_options_win_over_params_ld_settings_of_a_student(params, tmp_path):
    from ld.engine.train import export_initial

    teacher = export_initial("pipelines/configs/gfl_r50_2x.py", params, tmp_path / "gfl_r50_2x", profile="smoke")
    cfg = build_train_config("pipelines/configs/ld_r18_gfl_r50_1x.py", params, profile="smoke", teacher_dir=teacher,
                             work_root=tmp_path, cfg_options={"model.bbox_head.ld_main.T": 5})
    assert params["ld"]["temperature"] == 10 and cfg.model.bbox_head.ld_main.T == 5


@pytest.mark.parametrize("key, hint", [("optim_warpper.optimizer.lr", "did you mean 'optim_wrapper'"),
                                       ("no_such_key", "check the spelling")])
def test_a_key_the_config_lacks_is_refused_in_one_line(params, tmp_path, key, hint):
    with pytest.raises(ConfigError) as err:
        build_train_config("pipelines/configs/gfl_r18_1x.py", params, profile="smoke", work_root=tmp_path,
                           cfg_options={key: 0.001})
    message = str(err.value)
    assert "\n" not in message and f"--cfg-options {key}" in message and "gfl_r18_1x.py" in message and hint in message


def test_the_cli_passes_the_flag_through_mmengines_dict_action(params, tmp_path):
    from ld.cli import build_parser

    args = build_parser().parse_args(["train", "pipelines/configs/gfl_r18_1x.py", "--out", "x", "--cfg-options",
                                      "optim_wrapper.optimizer.lr=0.001", "train_dataloader.batch_size=2"])
    cfg = build_train_config(args.config, params, profile="smoke", work_root=tmp_path, cfg_options=args.cfg_options)
    assert cfg.optim_wrapper.optimizer.lr == 0.001 and cfg.train_dataloader.batch_size == 2

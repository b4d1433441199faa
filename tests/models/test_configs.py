"""Row configs resolve against every profile, and the profile does what it says."""
import ast
import functools
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from ld.data.synth import CLASSES
from ld.engine.train import build_train_config, is_distiller
from ld.errors import ConfigError
from ld.models.distiller import student_only
from ld.profiles import get_profile, scaled_lr

CONFIG_DIR = Path(__file__).resolve().parents[2] / "pipelines" / "configs"
CONFIGS = sorted(p.stem for p in CONFIG_DIR.glob("*.py"))


def _bases(config: Path) -> list[str]:
    """The ``_base_`` a config names (a str or a list of them), read from its source without running it."""
    for node in ast.parse(config.read_text()).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_base_" for t in node.targets):
            bases = ast.literal_eval(node.value)
            return [bases] if isinstance(bases, str) else list(bases)
    return []


def test_every_row_stands_alone_on_base_parts():
    """A row inherits only from parts under ``_base_/`` (a package's config, ``mmdet::``, only through
    them), and no config inherits a row: each row reads as its table line, and an edit of one row
    changes no other."""
    rows = sorted(CONFIG_DIR.glob("*.py"))
    parts = sorted((CONFIG_DIR / "_base_").rglob("*.py"))
    assert len(rows) == len(CONFIGS) and parts
    outside = {row.name: _bases(row) for row in rows
               if not _bases(row) or any(not b.startswith("./_base_/") for b in _bases(row))}
    assert not outside, f"rows inheriting other than ./_base_/ parts: {outside}"
    row_files = {row.resolve() for row in rows}
    for config in rows + parts:
        for base in _bases(config):
            if "::" in base:
                assert config in parts, f"{config.name}: a package's config {base!r} outside _base_/"
                continue
            file = (config.parent / base).resolve()
            assert file.is_file(), f"{config.relative_to(CONFIG_DIR)}: {base} does not exist"
            assert file not in row_files, f"{config.relative_to(CONFIG_DIR)} inherits the row {file.name}"
            assert file.is_relative_to((CONFIG_DIR / "_base_").resolve()), f"{config.name}: {base}"



def _teacher_dir(tmp_path):
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "config.py").write_text("")
    (tmp_path / "model.pth").write_bytes(b"weights")
    return tmp_path


def test_lr_rule_is_the_papers():
    assert scaled_lr(2, 8, 0.01) == pytest.approx(0.01)  # the paper's 8 GPUs x 2 images
    assert scaled_lr(6, 1, 0.01) == pytest.approx(0.00375)
    with pytest.raises(ValueError, match="base_lr"):
        scaled_lr(2, 8, -0.01)


def test_unknown_profile_lists_known_ones(params):
    with pytest.raises(ConfigError, match="unknown profile 'huge'.*smoke"):
        get_profile(params, "huge")


@functools.cache
def _teacher_run(name: str) -> str | None:
    """The teacher a row config names (read once per config, for both profiles)."""
    from mmengine.config import Config

    return Config.fromfile(f"pipelines/configs/{name}.py").get("teacher")


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("profile", ["smoke", "mini"])
def test_every_config_resolves_under_every_profile(params, name, profile, tmp_path):
    teacher_run = _teacher_run(name)
    teacher = _teacher_dir(tmp_path / teacher_run) if teacher_run else None
    cfg = build_train_config(f"pipelines/configs/{name}.py", params, profile=profile, teacher_dir=teacher,
                             work_root=tmp_path / "work")
    prof = get_profile(params, profile)
    size = prof["data"]["image_size"]
    assert cfg.train_dataloader.dataset.data_root == f"data/{profile}"
    assert cfg.val_evaluator.ann_file == f"data/{profile}/annotations/instances_val.json"
    assert tuple(cfg.train_dataloader.dataset.metainfo.classes) == CLASSES
    assert cfg.model.bbox_head.num_classes == len(CLASSES)
    test_resize = [s for s in cfg.test_dataloader.dataset.pipeline if s.type == "Resize"]
    assert len(test_resize) == 1 and tuple(test_resize[0].scale) == (size, size)
    train_resize = [s for s in cfg.train_dataloader.dataset.pipeline if "Resize" in s.type]
    if cfg.multiscale is None:
        assert [(s.type, tuple(s.scale)) for s in train_resize] == [("Resize", (size, size))]
    else:  # upstream's ms-2x rows: short edges lo..hi at 800 px, scaled to the profile's size
        lo, hi = cfg.multiscale
        assert [(s.type, [tuple(x) for x in s.scale]) for s in train_resize] == [
            ("RandomResize", [(size, round(size * lo / 800)), (size, round(size * hi / 800))])]
    assert cfg.model.neck.out_channels == cfg.model.bbox_head.feat_channels == prof["model"]["channels"]
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(prof["batch_size"] / 16 * prof["base_lr"])
    assert cfg.train_cfg.max_epochs == prof["schedules"][cfg.schedule]["epochs"]
    assert cfg.param_scheduler[1].milestones == prof["schedules"][cfg.schedule]["steps"]
    assert cfg.model.backbone.init_cfg is None  # nothing is downloaded: the profiles train from scratch
    assert Path(cfg.work_dir).parent == tmp_path / "work" / profile / name


def test_every_distillation_run_names_the_teacher_its_config_names(params):
    from mmengine.config import Config

    for run, spec in params["distill"].items():
        assert Config.fromfile(f"pipelines/configs/{run}.py").teacher == spec["teacher"], run
        assert spec["teacher"] in params["train"] or spec["teacher"] in params["distill"], run


def test_distillation_config_points_at_the_trained_teacher(params, tmp_path):
    teacher = _teacher_dir(tmp_path / "gfl_r50_2x")
    params = {**params, "ld": {"temperature": 4.0, "loss_weight": 0.5}}
    cfg = build_train_config("pipelines/configs/ld_full_r18_gfl_r50_1x.py", params, teacher_dir=teacher,
                             work_root=tmp_path / "work")
    assert is_distiller(cfg)
    assert cfg.model.teacher_ckpt == str(teacher / "model.pth")
    head = cfg.model.bbox_head
    assert head.ld_main.T == head.ld_vlr.T == 4.0 and head.ld_main.loss_weight == head.ld_vlr.loss_weight == 0.5
    assert head.kd_main.T == 2 and head.kd_main.loss_weight == 10.0  # KD keeps its own recipe
    student = student_only(cfg)
    assert student.model.type == "GFL" and student.model.bbox_head.type == "GFLHead"
    assert "teacher_config" not in student.model and "ld_main" not in student.model.bbox_head


def test_paper_rows_are_distinguishable_configs(params, tmp_path):
    teacher = _teacher_dir(tmp_path / "gfl_r50_2x")
    flags = {}
    for row in ("ld_r18_gfl_r50_1x", "ld_vlr_r18_gfl_r50_1x", "ld_full_r18_gfl_r50_1x"):
        head = build_train_config(f"pipelines/configs/{row}.py", params, teacher_dir=teacher,
                                  work_root=tmp_path).model.bbox_head
        flags[row] = (head.ld_main.enabled, head.ld_vlr.enabled, head.kd_main.enabled)
    assert flags == {"ld_r18_gfl_r50_1x": (True, False, False), "ld_vlr_r18_gfl_r50_1x": (True, True, False),
                     "ld_full_r18_gfl_r50_1x": (True, True, True)}


def test_teacher_folder_must_be_the_configs_teacher(params, tmp_path):
    with pytest.raises(ConfigError, match="distils from 'gfl_r50_2x'"):
        build_train_config("pipelines/configs/ld_r18_gfl_r50_1x.py", params,
                           teacher_dir=_teacher_dir(tmp_path / "gfl_r18_1x"), work_root=tmp_path)


def test_distillation_without_teacher_is_a_clear_error(params, tmp_path):
    with pytest.raises(ValueError, match="--teacher"):
        build_train_config("pipelines/configs/ld_r18_gfl_r50_1x.py", params, work_root=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"teacher .*config.py not found: give an existing file"):
        build_train_config("pipelines/configs/ld_r18_gfl_r50_1x.py", params, teacher_dir=tmp_path / "gfl_r50_2x",
                           work_root=tmp_path)


def test_changed_teacher_weights_give_a_new_run_folder(params, tmp_path):
    teacher = _teacher_dir(tmp_path / "gfl_r50_2x")
    first = build_train_config("pipelines/configs/ld_r18_gfl_r50_1x.py", params, teacher_dir=teacher,
                               work_root=tmp_path)
    (teacher / "model.pth").write_bytes(b"other weights")
    second = build_train_config("pipelines/configs/ld_r18_gfl_r50_1x.py", params, teacher_dir=teacher,
                                work_root=tmp_path)
    assert first.work_dir != second.work_dir


@pytest.mark.parametrize("change,message", [
    (lambda p: p["ld"].update(temperature=0), "ld.temperature must be > 0"),
    (lambda p: p["ld"].update(temperature=-2.0), "ld.temperature must be > 0"),
    (lambda p: p["profiles"]["smoke"].update(base_lr=-0.01), "base_lr must be > 0"),
    (lambda p: p["profiles"]["smoke"].update(batch_size=0), "profiles.smoke.batch_size must be an integer >= 1"),
    (lambda p: p["profiles"]["smoke"]["data"].update(image_size=[96]), "data.image_size must be an int or"),
    (lambda p: p["profiles"]["smoke"]["data"].update(layout="kitti"), "data.layout must be one of"),
    (lambda p: p["profiles"]["smoke"]["schedules"].update({"1x": 3}), "schedules.1x must be {epochs: N, steps"),
    (lambda p: p["profiles"]["smoke"]["schedules"].update({"1x": {"epochs": 3, "steps": [2, 4]}}),
     "steps increasing epochs in [1, epochs]"),
])
def test_out_of_range_values_stop_the_cli_with_the_field_named(params, tmp_path, capsys, change, message):
    import copy

    import yaml

    from ld.cli import main

    bad = copy.deepcopy(params)
    change(bad)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(bad))
    _teacher_dir(tmp_path / "gfl_r50_2x")
    code = main(["--params", str(tmp_path / "params.yaml"), "train", "pipelines/configs/ld_r18_gfl_r50_1x.py",
                 "--teacher", str(tmp_path / "gfl_r50_2x"), "--out", str(tmp_path / "out"),
                 "--work-root", str(tmp_path / "work")])
    assert code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("flag,kept", [([], True), (["--resume"], True), (["--no-resume"], False)])
def test_train_resumes_by_default_and_no_resume_starts_afresh(params, tmp_path, monkeypatch, flag, kept):
    from mmengine.runner import Runner

    from ld.cli import main

    class Trained:
        rank = 1  # nothing to export
        logger = SimpleNamespace(log_file="run.log")

        def train(self):
            pass

    seen = []
    monkeypatch.setattr(Runner, "from_cfg", staticmethod(lambda cfg: seen.append(cfg.work_dir) or Trained()))
    args = ["train", "pipelines/configs/gfl_r18_1x.py", "--out", str(tmp_path / "out"), "--work-root",
            str(tmp_path / "work")]
    assert main(args) == 0  # the run's work dir, as the first call names it
    (Path(seen[0]) / "epoch_1.pth").parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {}}, Path(seen[0]) / "epoch_1.pth")  # a complete checkpoint, as mmengine names it
    (Path(seen[0]) / "last_checkpoint").write_text(str(Path(seen[0]) / "epoch_1.pth"))
    assert main(args + flag) == 0 and seen[1] == seen[0]
    assert (Path(seen[0]) / "epoch_1.pth").exists() == kept


def test_the_runners_config_text_skips_yapf_and_says_the_same(params):
    """mmengine's Runner formats its config text (log, run folder, every checkpoint's meta): ``unformatted``
    hands it a copy whose text skips yapf and still reads back as the same config."""
    from mmengine.config import Config

    from ld.engine import unformatted

    cfg = build_train_config("pipelines/configs/gfl_r18_1x.py", params, profile="smoke")
    fast = unformatted(cfg)
    assert fast._format_python_code is False and cfg._format_python_code is True  # the original keeps it
    assert fast.pretty_text != cfg.pretty_text
    assert Config.fromstring(fast.pretty_text, ".py").to_dict() == Config.fromstring(cfg.pretty_text, ".py").to_dict()

"""Importing released teacher checkpoints (mmdet 2.x GFL, GFocalV2, DDP-saved) as exported teacher folders.

The checkpoints are written here, in each codebase's layout, from smoke-size models with random weights.
"""
import hashlib
import json
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from ld.engine.teacher_import import (
    EXPORT_FILES,
    class_mismatch,
    detect_format,
    import_teacher,
    map_keys,
    split_checkpoint,
)
from ld.errors import BadFileError, ConfigError, MissingFileError

REPO = Path(__file__).resolve().parents[2]
SYNTH_CLASSES = ("disc", "square", "triangle")


def _config(name: str, tmp_path_factory, **head):
    from mmengine.config import Config

    from ld.profiles import apply_profile, get_profile, load_params

    cfg = Config.fromfile(str(REPO / "pipelines/configs" / f"{name}.py"))
    apply_profile(cfg, get_profile(load_params(REPO / "params.yaml"), "smoke"),
                  data_root=tmp_path_factory.mktemp("data"))
    cfg.model.bbox_head.update(head)
    return cfg


def _random_weights(cfg, seed: int = 0) -> "OrderedDict[str, torch.Tensor]":
    """The model's state dict with every parameter drawn at random (buffers as built)."""
    from mmdet.registry import MODELS

    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    params = dict(model.named_parameters())
    return OrderedDict((k, torch.randn_like(v) if k in params else v.clone()) for k, v in model.state_dict().items())


def _mmdet2_checkpoint(state, classes, version="2.10.0"):
    """What mmdet 2.x's runner saves (mmcv 1.x ``save_checkpoint``), optimizer state included."""
    return {"meta": {"mmdet_version": version, "CLASSES": tuple(classes), "config": "model = dict(type='GFL')",
                     "epoch": 24, "iter": 100, "mmcv_version": "1.2.7", "time": "Mon Jun 29 20:01:26 2020",
                     "hook_msgs": {"last_ckpt": "work_dirs/gfl/epoch_24.pth"}},
            "state_dict": state,
            "optimizer": {"state": {0: {"momentum_buffer": torch.zeros(3)}},
                          "param_groups": [{"lr": 0.01, "momentum": 0.9, "params": [0]}]}}


@pytest.fixture(scope="module")
def gfl(tmp_path_factory):
    cfg = _config("gfl_r18_1x", tmp_path_factory)
    return cfg, _random_weights(cfg)


@pytest.fixture(scope="module")
def gflv2(tmp_path_factory):
    cfg = _config("gflv2_r18_1x", tmp_path_factory)
    return cfg, _random_weights(cfg, seed=1)


def _assert_exported_teacher_loads_exactly(out_dir: Path, state) -> None:
    from ld.models.distiller import build_teacher

    assert sorted(p.name for p in out_dir.iterdir()) == sorted(EXPORT_FILES)
    teacher = build_teacher(out_dir / "config.py", out_dir / "model.pth")  # the pipeline's own loading path
    loaded = teacher.state_dict()
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())


def test_mmdet2_checkpoint_becomes_a_teacher_folder_that_loads_exactly(gfl, tmp_path):
    cfg, state = gfl
    ckpt = tmp_path / "gfl_r18_mmdet2.pth"
    # 2020's mmdet 2.x checkpoints predate torch's zip format
    torch.save(_mmdet2_checkpoint(state, SYNTH_CLASSES), ckpt, _use_new_zipfile_serialization=False)
    sha = hashlib.sha256(ckpt.read_bytes()).hexdigest()

    summary = import_teacher(ckpt, cfg, tmp_path / "teacher", sha256=sha.upper(), published={"AP": 44.7})

    source = json.loads((tmp_path / "teacher" / "source.json").read_text())
    assert source == summary
    assert source == {"checkpoint": str(ckpt.resolve()), "sha256": sha, "format": "mmdet2",
                      "mapped_keys": len(state), "mmdet_version": "2.10.0", "classes": list(SYNTH_CLASSES),
                      "published": {"AP": 44.7}}
    _assert_exported_teacher_loads_exactly(tmp_path / "teacher", state)
    assert (tmp_path / "teacher" / "config.py").read_text() == cfg.pretty_text
    meta = torch.load(tmp_path / "teacher" / "model.pth")["meta"]
    assert meta == {"epoch": 24, "iter": 100, "dataset_meta": {"classes": list(SYNTH_CLASSES)}}


def test_gfocalv2_checkpoint_keeps_its_dgqp_keys(gflv2, tmp_path):
    cfg, state = gflv2
    # implus/GFocalV2's GFocalHead: reg_conf = Sequential(Conv2d, ReLU, Conv2d, Sigmoid), as ours
    assert {k for k in state if k.startswith("bbox_head.reg_conf.")} == {
        f"bbox_head.reg_conf.{i}.{p}" for i in (0, 2) for p in ("weight", "bias")}
    ckpt = tmp_path / "gfocal_r18.pth"
    torch.save(_mmdet2_checkpoint(state, SYNTH_CLASSES, version="2.6.0+bfcc2b9"), ckpt)

    summary = import_teacher(ckpt, cfg, tmp_path / "teacher")

    assert summary["format"] == "gfocalv2" and summary["mapped_keys"] == len(state)
    _assert_exported_teacher_loads_exactly(tmp_path / "teacher", state)


def test_ddp_saved_bare_state_dict_loses_its_module_prefix(gfl, tmp_path):
    cfg, state = gfl
    ckpt = tmp_path / "ddp.pth"
    torch.save(OrderedDict((f"module.{k}", v) for k, v in state.items()), ckpt)

    summary = import_teacher(ckpt, cfg, tmp_path / "teacher")

    assert summary["format"] == "mmdet3" and summary["mmdet_version"] is None
    assert summary["classes"] == list(SYNTH_CLASSES)  # the file names none: the config's, that its shapes fit
    _assert_exported_teacher_loads_exactly(tmp_path / "teacher", state)


@pytest.mark.parametrize("meta, keys, expected", [
    ({"mmdet_version": "2.10.0"}, ["bbox_head.gfl_cls.weight"], "mmdet2"),
    ({"mmdet_version": "2.6.0+bfcc2b9"}, ["module.bbox_head.reg_conf.0.weight"], "gfocalv2"),
    ({"mmdet_version": "3.3.0"}, ["bbox_head.reg_conf.0.weight"], "mmdet3"),
    ({"dataset_meta": {"classes": ("a",)}, "epoch": 3}, ["bbox_head.gfl_cls.weight"], "mmdet3"),
    ({}, ["bbox_head.gfl_cls.weight"], "mmdet3"),
])
def test_detect_format_reads_mmdet_version_and_dgqp_keys(meta, keys, expected):
    assert detect_format(dict.fromkeys(keys, torch.zeros(1)), meta) == expected


def test_detect_format_refuses_mmdet_1x():
    with pytest.raises(BadFileError, match="mmdet 1.1.0"):
        detect_format({"bbox_head.x": torch.zeros(1)}, {"mmdet_version": "1.1.0"})


def test_map_keys_strips_only_the_ddp_prefix():
    state = {"module.backbone.conv1.weight": torch.ones(1), "bbox_head.scales.0.scale": torch.zeros(())}
    assert map_keys(state, "mmdet2") == {"backbone.conv1.weight": state["module.backbone.conv1.weight"],
                                         "bbox_head.scales.0.scale": state["bbox_head.scales.0.scale"]}
    with pytest.raises(ValueError, match="unknown checkpoint format"):
        map_keys(state, "detectron2")


def test_split_checkpoint_refuses_what_is_not_a_state_dict(tmp_path):
    state, meta = split_checkpoint({"state_dict": {"w": torch.ones(1)}, "meta": {"epoch": 1}}, "a.pth")
    assert list(state) == ["w"] and meta == {"epoch": 1}
    with pytest.raises(BadFileError, match=r"b\.pth.*'lr'"):
        split_checkpoint({"lr": 0.1, "w": torch.ones(1)}, "b.pth")


def test_weights_of_another_backbone_are_refused_naming_keys(gfl, tmp_path_factory, tmp_path):
    _, r18_state = gfl
    r50_cfg = _config("gfl_r50_2x", tmp_path_factory)
    ckpt = tmp_path / "r18.pth"
    torch.save(_mmdet2_checkpoint(r18_state, SYNTH_CLASSES), ckpt)

    with pytest.raises(BadFileError, match=r"r18\.pth \(mmdet2\) does not fit its config \(ResNet-50.*"
                                           r"missing keys \['backbone\.layer1\.0\.bn3\.bias'") as err:
        import_teacher(ckpt, r50_cfg, tmp_path / "teacher")
    assert "keys of another shape" in str(err.value) and "Wrong architecture" in str(err.value)
    assert not (tmp_path / "teacher").exists()


def test_gfocalv1_weights_for_a_gfocalv2_config_are_refused(gfl, gflv2, tmp_path):
    ckpt = tmp_path / "gfl.pth"
    torch.save(_mmdet2_checkpoint(gfl[1], SYNTH_CLASSES), ckpt)
    with pytest.raises(BadFileError, match=r"4 missing keys \['bbox_head\.reg_conf\.0\.bias'"):
        import_teacher(ckpt, gflv2[0], tmp_path / "teacher")


def test_checkpoint_for_another_class_count_is_refused_naming_the_shape(gfl, tmp_path_factory, tmp_path):
    cfg, _ = gfl
    coco_sized = _random_weights(_config("gfl_r18_1x", tmp_path_factory, num_classes=80))
    ckpt = tmp_path / "coco80.pth"
    torch.save({"state_dict": coco_sized}, ckpt)  # no class names: the shapes must tell
    with pytest.raises(BadFileError, match=r"coco80\.pth.*3 classes\).*keys of another shape "
                                           r"\['bbox_head\.gfl_cls\.bias', 'bbox_head\.gfl_cls\.weight'\]") as err:
        import_teacher(ckpt, cfg, tmp_path / "teacher")
    assert ("bbox_head.gfl_cls.weight: (80, 64, 3, 3) in the checkpoint, (3, 64, 3, 3) in the model"
            in str(err.value))


def test_checkpoint_of_other_class_names_is_refused(gfl, tmp_path):
    cfg, state = gfl
    ckpt = tmp_path / "other_order.pth"
    torch.save(_mmdet2_checkpoint(state, ("disc", "triangle", "square")), ckpt)
    with pytest.raises(BadFileError, match=r"other_order\.pth.*other classes.*#1 'triangle' \(config: 'square'\)"):
        import_teacher(ckpt, cfg, tmp_path / "teacher")


def test_class_mismatch_names_count_or_positions():
    assert class_mismatch(("a", "b"), ("a", "b")) == ""
    assert class_mismatch(("a", "b"), ("a",)) == "1 classes where the config has 2"
    assert class_mismatch(("a", "b"), ("b", "a")) == \
        "2 classes differ or are in another order: #0 'b' (config: 'a'), #1 'a' (config: 'b')"


def test_sha256_mismatch_is_refused_naming_both(gfl, tmp_path):
    cfg, state = gfl
    ckpt = tmp_path / "gfl.pth"
    torch.save({"state_dict": state}, ckpt)
    actual = hashlib.sha256(ckpt.read_bytes()).hexdigest()
    with pytest.raises(BadFileError, match=f"gfl.pth has SHA-256 {actual}, not the expected {'0' * 64}"):
        import_teacher(ckpt, cfg, tmp_path / "teacher", sha256="0" * 64)
    with pytest.raises(BadFileError, match="not the expected 00000000"):  # mmdet's 8-digit file-name suffix
        import_teacher(ckpt, cfg, tmp_path / "teacher", sha256="0" * 8)
    with pytest.raises(BadFileError, match="not a hex SHA-256"):
        import_teacher(ckpt, cfg, tmp_path / "teacher", sha256=actual[:6])
    assert not (tmp_path / "teacher").exists()
    assert import_teacher(ckpt, cfg, tmp_path / "teacher", sha256=actual[:8])["sha256"] == actual


def test_folder_with_an_unrelated_file_is_not_written(gfl, tmp_path):
    cfg, state = gfl
    ckpt = tmp_path / "gfl.pth"
    torch.save({"state_dict": state}, ckpt)
    out = tmp_path / "teacher"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"teacher holds files that are not a run's export \(notes\.txt\)"):
        import_teacher(ckpt, cfg, out)
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and (out / "notes.txt").read_text() == "mine"


def test_reimport_replaces_a_previous_export_and_leaves_no_staging_folders(gfl, tmp_path):
    cfg, state = gfl
    first, second = tmp_path / "a.pth", tmp_path / "b.pth"
    torch.save({"state_dict": state}, first)
    torch.save({"state_dict": OrderedDict((k, v + 1 if v.is_floating_point() else v) for k, v in state.items())},
               second)
    import_teacher(first, cfg, tmp_path / "out" / "teacher")
    summary = import_teacher(second, cfg, tmp_path / "out" / "teacher")
    assert summary["checkpoint"] == str(second.resolve())
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["teacher"]
    model = torch.load(tmp_path / "out" / "teacher" / "model.pth")["state_dict"]
    assert torch.equal(model["bbox_head.gfl_cls.weight"], state["bbox_head.gfl_cls.weight"] + 1)


def test_url_is_downloaded_once_into_the_cache(gfl, tmp_path, monkeypatch):
    cfg, state = gfl
    served = tmp_path / "served.pth"
    torch.save(_mmdet2_checkpoint(state, SYNTH_CLASSES), served)
    downloads = []

    def fake_download(url, dst, *args, **kwargs):  # no network in tests: "serve" a local file
        downloads.append(url)
        Path(dst).write_bytes(served.read_bytes())

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    url = "https://download.example.org/gfl/gfl_r18_20200629-0123abcd.pth"
    for name in ("t1", "t2"):
        summary = import_teacher(url, cfg, tmp_path / name, cache_dir=tmp_path / "cache")
    assert downloads == [url]
    assert (tmp_path / "cache" / "gfl_r18_20200629-0123abcd.pth").is_file()
    assert summary["checkpoint"] == url and summary["sha256"] == hashlib.sha256(served.read_bytes()).hexdigest()


def test_missing_or_non_checkpoint_files_are_refused(gfl, tmp_path):
    cfg, _ = gfl
    with pytest.raises(MissingFileError, match="nope.pth does not exist"):
        import_teacher(tmp_path / "nope.pth", cfg, tmp_path / "teacher")
    page = tmp_path / "page.pth"
    page.write_text("<!DOCTYPE html><html>Google Drive can't scan this file</html>")
    with pytest.raises(BadFileError, match="page.pth is not a PyTorch checkpoint .*DOCTYPE html"):
        import_teacher(page, cfg, tmp_path / "teacher")
    truncated = tmp_path / "truncated.pth"
    torch.save({"state_dict": {"w": torch.ones(1000)}}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:300])
    with pytest.raises(BadFileError, match="truncated.pth cannot be read as a PyTorch checkpoint: truncated"):
        import_teacher(truncated, cfg, tmp_path / "teacher")

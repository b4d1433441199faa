"""The `coco` and `voc` profiles resolve to upstream's recipes, line for line.

One row per paper table is resolved the way `dvc repro` resolves it (`build_train_config`, the GPU
count of the upstream run) and compared with the values of the upstream config that produced the
paper's number. Sources (read with `git show <commit>:<path>`):
  LD@80faf136  HikariTJU/LD at the README commit of the paper's tables (mmdet 2.5)
  LD@4287990c  HikariTJU/LD v2 (mmdet 2.10), where the VOC teacher config lives
  mmdet        open-mmlab/mmdetection configs/gfl (the released GFL teachers)
  GFocalV2     implus/GFocalV2 configs/gfocal
"""
from __future__ import annotations

import copy

import pytest

from tests.models.test_configs import _teacher_dir

# run -> (profile, GPUs, expected values, source)
UPSTREAM = {
    "ld_r18_gfl_r101_1x": ("coco", 2, dict(
        images_per_gpu=3, lr=0.00375, epochs=12, steps=[8, 11], train_scale=("Resize", (1333, 800)), repeat=1,
        num_classes=80, loss_bbox=("GIoULoss", 2.0), ld_main=(0.25, 10), ld_vlr=False, kd_main=False),
        "LD@80faf136 configs/ld/ld_gflv1_r101_r18_fpn_coco_1x.py (samples_per_gpu=3, lr=0.00375, 1x)"),
    "ld_r101_gfl_r101_dcn_2x": ("coco", 2, dict(
        images_per_gpu=3, lr=0.00375, epochs=24, steps=[16, 22],
        train_scale=("RandomResize", [(1333, 480), (1333, 800)]), repeat=1, num_classes=80,
        loss_bbox=("GIoULoss", 2.0), ld_main=(0.25, 10), ld_vlr=False, kd_main=False),
        "LD@80faf136 configs/ld/ld_gflv1_r101dcn_r101_fpn_coco_2x.py (on gfl_r101_fpn_mstrain_2x_coco.py)"),
    "gfl_r101_2x": ("coco", 8, dict(
        images_per_gpu=2, lr=0.01, epochs=24, steps=[16, 22],
        train_scale=("RandomResize", [(1333, 480), (1333, 800)]), repeat=1, num_classes=80,
        loss_bbox=("GIoULoss", 2.0)),
        "mmdet configs/gfl/gfl_r101_fpn_mstrain_2x_coco.py (the released teacher ...-dd12f847.pth)"),
    "selfld_r18_1x": ("coco", 2, dict(
        images_per_gpu=3, lr=0.00375, epochs=12, steps=[8, 11], train_scale=("Resize", (1333, 800)), repeat=1,
        num_classes=80, ld_main=(0.25, 10)),
        "LD@80faf136 README: Self-LD rows, mini-batch 6 = 2 GPUs x 3 at lr 0.00375 (no config upstream)"),
    "ld_gflv2_r101_gflv2_r101_dcn_2x": ("coco", 8, dict(
        images_per_gpu=2, lr=0.01, epochs=24, steps=[16, 22],
        train_scale=("RandomResize", [(1333, 480), (1333, 960)]), repeat=1, num_classes=80,
        loss_bbox=("GIoULoss", 2.0), ld_main=(0.25, 10), head="LDGFLv2Head"),
        "LD@80faf136 configs/ld/ld_gflv2_r101dcn_r101_fpn_coco_2x.py (samples_per_gpu=2, lr=0.01, ms 480-960)"),
    "ld_full_r18_gfl_r101_1x": ("coco", 2, dict(
        images_per_gpu=3, lr=0.00375, epochs=12, steps=[8, 11], train_scale=("Resize", (1333, 800)), repeat=1,
        num_classes=80, ld_main=(0.25, 10), ld_vlr=(0.25, 10, "upstream"), kd_main=(10.0, 2)),
        "LD@4287990c mmdet/models/dense_heads/ld_head.py defaults (loss_ld_vlr 0.25/T10, loss_kd 10/T2)"),
    "ld_vlr_r18_gfl_r50_1x": ("coco", 2, dict(ld_vlr=(0.25, 10, "upstream")),
        "LD@4287990c atss_assigner.py get_vlr_region: bbox_overlaps(mode='diou') (union = the anchor's area)"),
    "gfl_r101_dcn_2x": ("coco", 8, dict(
        images_per_gpu=2, lr=0.01, train_scale=("RandomResize", [(1333, 480), (1333, 800)]),
        dcn=("DCN", (False, True, True, True))),
        "mmdet configs/gfl/gfl_r101_fpn_dconv_c3-c5_mstrain_2x_coco.py (dcn type='DCN', c3-c5)"),
    "gflv2_r2_101_dcn_2x": ("coco", 8, dict(
        images_per_gpu=2, lr=0.01, train_scale=("RandomResize", [(1333, 480), (1333, 960)]),
        dcn=("DCN", (False, False, True, True)), head="GFLv2Head"),
        "GFocalV2 configs/gfocal/gfocal_r2n101_dcn_fpn_ms2x.py (dcn type='DCN', c4-c5)"),
    ("voc", "ld_r18_gfl_r101_1x"): ("voc", 2, dict(
        images_per_gpu=3, lr=0.00375, epochs=4, steps=[3], train_scale=("Resize", (1333, 800)), repeat=3,
        num_classes=20, loss_bbox=("GIoULoss", 2.0), ld_main=(0.25, 10)),
        "LD@80faf136 configs/ld/ld_gflv1_r101_r18_fpn_voc.py (RepeatDataset x3, step=[3], total_epochs=4)"),
    ("voc", "gfl_r101_2x"): ("voc", 2, dict(
        images_per_gpu=3, lr=0.00375, epochs=16, steps=[12], train_scale=("Resize", (1333, 800)), repeat=3,
        num_classes=20, loss_bbox=("GIoULoss", 2.0)),
        "LD@4287990c configs/gfl/gfl_r101_fpn_voc.py (the VOC teacher: 16 epochs, step=[12], x3)"),
}


def _resolve(params, run, profile, gpus, tmp_path):
    from mmengine.config import Config

    from ld.engine.train import build_train_config

    params = copy.deepcopy(params)
    params["num_gpus"] = gpus
    teacher = Config.fromfile(f"pipelines/configs/{run}.py").get("teacher")
    return build_train_config(f"pipelines/configs/{run}.py", params, profile=profile, work_root=tmp_path / "work",
                              data_root=tmp_path / "data",
                              teacher_dir=_teacher_dir(tmp_path / teacher) if teacher else None)


@pytest.mark.parametrize("key", list(UPSTREAM), ids=lambda k: "/".join(k) if isinstance(k, tuple) else k)
def test_resolved_recipe_equals_upstream(key, params, tmp_path, repo_root):  # noqa: F811  (the fixture)
    from ld.profiles import train_pipeline

    run = key[1] if isinstance(key, tuple) else key
    profile, gpus, expected, source = UPSTREAM[key]
    cfg = _resolve(params, run, profile, gpus, tmp_path)
    head = cfg.model.bbox_head
    dataset = cfg.train_dataloader.dataset
    resize = next(s for s in train_pipeline(cfg) if "Resize" in s.type)
    scale = tuple(resize.scale) if resize.type == "Resize" else [tuple(s) for s in resize.scale]
    test_resize = next(s for s in cfg.test_dataloader.dataset.pipeline if s.type == "Resize")
    resolved = {
        "images_per_gpu": cfg.train_dataloader.batch_size, "lr": round(cfg.optim_wrapper.optimizer.lr, 8),
        "epochs": cfg.train_cfg.max_epochs, "steps": list(cfg.param_scheduler[1].milestones),
        "train_scale": (resize.type, scale), "repeat": dataset.times if dataset.get("type") == "RepeatDataset" else 1,
        "num_classes": head.num_classes, "loss_bbox": (head.loss_bbox.type, head.loss_bbox.loss_weight),
        "head": head.type,
        "dcn": ((cfg.model.backbone.dcn.type, tuple(cfg.model.backbone.stage_with_dcn))
                if cfg.model.backbone.get("dcn") else None),
    }
    for term in ("ld_main", "ld_vlr", "kd_main"):
        if term in head:
            t = head[term]
            settings = (t.loss_weight, t.T, t.overlap) if term == "ld_vlr" else (t.loss_weight, t.T)
            resolved[term] = t.enabled and settings
    assert {k: resolved[k] for k in expected} == expected, source
    # common to every upstream GFL / LD config: SGD momentum 0.9, weight decay 1e-4, linear warmup 500 iters
    # from 0.001, test at 1333x800 keep-ratio, DFL 0.25, reg_max 16, ATSS top-9, normalize='upstream' for LD
    assert (cfg.optim_wrapper.optimizer.momentum, cfg.optim_wrapper.optimizer.weight_decay) == (0.9, 1e-4)
    assert (cfg.param_scheduler[0].start_factor, cfg.param_scheduler[0].end) == (0.001, 500)
    assert tuple(test_resize.scale) == (1333, 800) and test_resize.keep_ratio and resize.keep_ratio
    assert head.loss_dfl.loss_weight == 0.25 and head.reg_max == 16 and cfg.model.train_cfg.assigner.topk == 9
    if "ld_main" in head:
        assert head.normalize == "upstream"


# LD into other detectors and feature imitation (issue 19): run -> (GPUs, expected, source); the common
# GFocal checks above (DFL, ATSS top-9) do not apply to these heads.
UPSTREAM_DETECTORS = {
    "ld_atss_r50_atss_r101_1x": (8, dict(
        images_per_gpu=2, lr=0.01, epochs=12, steps=[8, 11], train_scale=("Resize", (1333, 800)),
        loss_bbox=("GIoULoss", 2.0), head="LDATSSGFLHead", assigner="ATSSAssigner", ld_main=(0.25, 10),
        ld_vlr=(0.15 * 0.25, 10), kd_main=(10.0, 2), anchors=(8, 1, [1.0])),
        "LD@4287990c configs/ld/ld_r50_atss_r101_1x.py (2 per GPU, lr 0.01) and ld_atss.py (VLR 0.15 * loss_ld)"),
    "ld_fcos_r50_fcos_r101_1x": (8, dict(
        images_per_gpu=2, lr=0.01, epochs=12, steps=[8, 11], loss_bbox=("GIoULoss", 1.0), head="LDFCOSGFLHead",
        ld_main=(0.25, 10), ld_vlr=(0.25 * 0.25, 10), kd_main=(10.0, 2),
        fcos=(True, True, False)),
        "LD@4287990c configs/ld/ld_r50_fcos_r101_1x.py (center_sampling, centerness_on_reg, norm_on_bbox=False) "
        "and ld_fcos_head.py (VLR 0.25 * loss_ld)"),
    "ld_retina_r50_retina_r101_1x": (2, dict(
        images_per_gpu=2, lr=0.0025, epochs=12, steps=[8, 11], loss_bbox=("GIoULoss", 2.0), head="LDRetinaGFLHead",
        assigner="MaxIoUAssigner", ld_main=(5.0, 10), ld_vlr=(0.03 * 5.0, 10), kd_main=(10.0, 8),
        anchors=(4, 3, [0.5, 1.0, 2.0])),
        "LD@4287990c configs/ld/ld_retina_r50_1x.py (loss_ld 5/T10, loss_kd 10/T8, lr 0.0025) and ld_retina.py"),
    "retina_r101_2x": (2, dict(
        epochs=24, steps=[16, 22], train_scale=("RandomResize", [(1333, 480), (1333, 800)]), head="RetinaGFLHead",
        assigner="MaxIoUAssigner", anchors=(4, 3, [0.5, 1.0, 2.0])),
        "LD@4287990c configs/gfl/retinagfl_r101_2x_coco.py"),
    "atss_r101_2x": (8, dict(
        epochs=24, steps=[16, 22], train_scale=("RandomResize", [(1333, 480), (1333, 800)]), head="ATSSGFLHead"),
        "LD@4287990c configs/gfl/atss_gfl_r101_2x.py"),
    "ld_full_gi_r50_gfl_r101_1x": (2, dict(
        images_per_gpu=3, lr=0.00375, head="LDGFLHead", ld_main=(0.25, 10), ld_vlr=(0.25, 10), kd_main=(10.0, 2),
        imitation=(2.0, "gibox")),
        "LD@4287990c configs/ld/ld_r50_gflv1_r101_fpn_coco_1x.py (loss_im 2.0) and README ('+ GI imitation')"),
}


@pytest.mark.parametrize("run", list(UPSTREAM_DETECTORS))
def test_other_detectors_resolve_to_upstreams_recipes(run, params, tmp_path, repo_root):  # noqa: F811
    from ld.profiles import train_pipeline

    gpus, expected, source = UPSTREAM_DETECTORS[run]
    cfg = _resolve(params, run, "coco", gpus, tmp_path)
    head = cfg.model.bbox_head
    resize = next(s for s in train_pipeline(cfg) if "Resize" in s.type)
    anchors = head.get("anchor_generator")
    resolved = {
        "images_per_gpu": cfg.train_dataloader.batch_size, "lr": round(cfg.optim_wrapper.optimizer.lr, 8),
        "epochs": cfg.train_cfg.max_epochs, "steps": list(cfg.param_scheduler[1].milestones),
        "train_scale": (resize.type, tuple(resize.scale) if resize.type == "Resize" else
                        [tuple(s) for s in resize.scale]),
        "loss_bbox": (head.loss_bbox.type, head.loss_bbox.loss_weight), "head": head.type,
        "assigner": cfg.model.train_cfg.get("assigner", {}).get("type"),
        "anchors": anchors and (anchors.octave_base_scale, anchors.scales_per_octave, list(anchors.ratios)),
        "fcos": (head.get("center_sampling"), head.get("centerness_on_reg"), head.get("norm_on_bbox")),
        "imitation": head.get("imitation") and (head.imitation.loss_weight, head.imitation.method),
    }
    for term in ("ld_main", "ld_vlr", "kd_main"):
        if term in head:
            resolved[term] = head[term].enabled and (head[term].loss_weight, head[term].T)
    assert {k: resolved[k] for k in expected} == expected, source
    gfocal = run.startswith("ld_full")
    assert head.reg_max == 16 and head.loss_cls.type == ("QualityFocalLoss" if gfocal else "FocalLoss")
    assert head.get("box_prior") is None  # the paper rows start uniform, as upstream

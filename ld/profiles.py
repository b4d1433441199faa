"""Profiles: one pipeline, several sizes. A profile (``params.yaml: profiles.<name>``) sets the data,
image size, widths, schedules and batch of every config; the learning rate follows the paper's rule
``lr = batch_size * num_gpus / 16 * base_lr``.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from ld.errors import ConfigError, MissingFileError

PARAMS_FILE = "params.yaml"


def load_params(path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    """Read ``params.yaml``; a missing file or key is an error that names it."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path} not found: run from the repository root or pass --params")
    params = yaml.safe_load(path.read_text()) or {}
    for key in ("profile", "profiles"):
        if key not in params:
            raise ConfigError(f"{path}: missing top-level key '{key}'")
    return params


def get_profile(params: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    """The settings of profile ``name`` (default: ``params['profile']``)."""
    name = name or params["profile"]
    profiles = params["profiles"]
    if name not in profiles:
        raise ConfigError(f"params.yaml: unknown profile '{name}'; known profiles: {sorted(profiles)}")
    return profiles[name]


def scaled_lr(batch_size: int, num_gpus: int, base_lr: float) -> float:
    """The paper's LR rule: ``lr = samples_per_gpu * num_gpus / 16 * base_lr`` (base_lr 0.01)."""
    if batch_size < 1 or num_gpus < 1:
        raise ConfigError(f"batch_size and num_gpus must be >= 1, got {batch_size} and {num_gpus}")
    if not base_lr > 0:
        raise ConfigError(f"base_lr must be > 0, got {base_lr}")
    return batch_size * num_gpus / 16 * base_lr


def schedule_epochs(profile: dict[str, Any], schedule: str) -> int:
    """Epochs of a named schedule ('1x', '2x', ...) in this profile."""
    schedules = profile["schedules"]
    if schedule not in schedules:
        raise ConfigError(f"params.yaml: the profile has no schedule '{schedule}' (it has {sorted(schedules)})")
    return int(schedules[schedule])


def _pipelines(cfg) -> list[list]:
    return [cfg[k].dataset.pipeline for k in ("train_dataloader", "val_dataloader", "test_dataloader")]


def image_scale(size) -> tuple[int, int]:
    """A profile's ``image_size``: an int (square images, the embedded dataset) or ``[long, short]``
    edges (the paper's ``[1333, 800]`` on COCO, ``[1000, 600]`` on VOC), as mmdet's Resize ``scale``."""
    if isinstance(size, int):
        return size, size
    if isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size):
        return int(size[0]), int(size[1])
    raise ConfigError(f"params.yaml: data.image_size must be an int or [long, short] edges, got {size!r}")


def _apply_data(cfg, profile: dict[str, Any], data_root: Path) -> None:
    """Point the dataloaders and evaluators at the profile's data (see :mod:`ld.data.prepare`): the
    generated dataset in ``data_root``, or the user's COCO / VOC tree at ``data.root`` with, for VOC,
    the COCO annotations the data stage converted into ``data_root``."""
    from ld.data.check import VOC_CLASSES
    from ld.data.prepare import ANN_FILES, IMAGE_PREFIXES, layout_of, voc_devkit

    layout = layout_of(profile)
    scale = image_scale(profile["data"]["image_size"])
    for pipeline in _pipelines(cfg):
        for step in pipeline:
            if step["type"] == "Resize":
                step["scale"] = scale
    if layout == "synth":
        images_root, ann_files = data_root, ANN_FILES[layout]
    elif layout == "coco":
        images_root, ann_files = Path(profile["data"]["root"]), ANN_FILES[layout]
    else:  # the converted annotations, by absolute path: mmengine joins relative ones to the images' root
        images_root = voc_devkit(profile["data"]["root"])
        ann_files = tuple(str((data_root / name).resolve()) for name in ANN_FILES[layout])
    if layout != "synth":
        if layout == "coco":
            from mmdet.datasets import CocoDataset

            cfg.classes = tuple(CocoDataset.METAINFO["classes"])
        else:
            cfg.classes = VOC_CLASSES
        cfg.model.bbox_head.num_classes = len(cfg.classes)
    splits = {"train_dataloader": 0, "val_dataloader": 1, "test_dataloader": 1}
    for key, split in splits.items():
        dataset = cfg[key].dataset
        dataset.data_root = str(images_root)
        dataset.ann_file = ann_files[split]
        dataset.data_prefix = dict(img=IMAGE_PREFIXES[layout][split])
        dataset.metainfo = dict(classes=tuple(cfg.classes))
    for key in ("val_evaluator", "test_evaluator"):
        cfg[key].ann_file = str(images_root / ann_files[1])  # an absolute second part stays as it is


def apply_profile(cfg, profile: dict[str, Any], *, data_root: str | Path, num_gpus: int = 1) -> None:
    """Set the profile's data, sizes, widths, schedule, batch and LR on an mmengine ``Config`` in place.

    ``cfg`` is one of ``pipelines/configs``; for a distillation config only the student is changed
    here (its teacher keeps the config it was trained with).
    """
    _apply_data(cfg, profile, Path(data_root))

    batch_size = int(profile["batch_size"])
    workers = int(profile.get("workers", 0))
    cfg.train_dataloader.batch_size = batch_size
    for key in ("train_dataloader", "val_dataloader", "test_dataloader"):
        cfg[key].num_workers = workers
        cfg[key].persistent_workers = workers > 0

    model = cfg.model
    channels = int(profile["model"]["channels"])
    model.neck.out_channels = channels
    model.bbox_head.in_channels = channels
    model.bbox_head.feat_channels = channels
    model.bbox_head.stacked_convs = int(profile["model"]["stacked_convs"])
    if "anchor_scale" in profile["model"]:
        model.bbox_head.anchor_generator.octave_base_scale = int(profile["model"]["anchor_scale"])
    if not profile.get("pretrained", False):
        # Trained from scratch: no pretrained weights, BN statistics learnt, nothing frozen.
        model.backbone.init_cfg = None
        model.backbone.frozen_stages = -1
        model.backbone.norm_eval = False

    epochs = schedule_epochs(profile, cfg.get("schedule", "1x"))
    cfg.train_cfg.max_epochs = epochs
    cfg.train_cfg.val_interval = epochs
    lr = scaled_lr(batch_size, num_gpus, float(profile["base_lr"]))
    cfg.optim_wrapper.optimizer.lr = lr
    cfg.auto_scale_lr = dict(enable=False, base_batch_size=16)  # the rule is applied here, once
    warmup = int(profile["warmup_iters"])
    cfg.param_scheduler = [
        dict(type="LinearLR", start_factor=0.001, by_epoch=False, begin=0, end=warmup),
        # the 1x recipe's steps at epochs 8 and 11 of 12, scaled to this schedule
        dict(type="MultiStepLR", begin=0, end=epochs, by_epoch=True, gamma=0.1,
             milestones=sorted({max(1, math.floor(epochs * 8 / 12)), max(1, math.floor(epochs * 11 / 12))})),
    ]
    cfg.default_hooks.logger.interval = max(1, int(profile.get("log_interval", 5)))
    # Checkpoints every `checkpoint_interval` epochs: a killed run resumes from the last one and redoes
    # only the epoch it was in, so it ends with the same number of iterations as an uninterrupted run.
    cfg.default_hooks.checkpoint = dict(type="CheckpointHook", interval=int(profile.get("checkpoint_interval", 1)),
                                        max_keep_ckpts=2, save_last=True)
    cfg.lr_rule = dict(batch_size=batch_size, num_gpus=num_gpus, base_lr=float(profile["base_lr"]), lr=lr)

"""Profiles: one pipeline, several sizes. A profile (``params.yaml: profiles.<name>``) sets the data,
image size, widths, schedules and batch of every config; the learning rate follows the paper's rule
``lr = batch_size * num_gpus / 16 * base_lr``.
"""
from __future__ import annotations

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
    from ld.params_check import validate_params

    try:
        params = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from err
    # the whole file, against its schema, before anything runs; `ld paper run` experiments replace the
    # runs while `analysis` and `study` keep naming the main ones, so those are checked where they are used
    return validate_params(params, path, analysis_runs=False)


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


def schedule(profile: dict[str, Any], name: str) -> tuple[int, list[int]]:
    """``(epochs, lr steps)`` of a named schedule ('1x', '2x') in this profile: the epochs after which
    the LR drops tenfold (mmdet's ``step`` / ``MultiStepLR`` milestones, e.g. 1x = 12 epochs, [8, 11])."""
    schedules = profile["schedules"]
    if name not in schedules:
        raise ConfigError(f"params.yaml: the profile has no schedule '{name}' (it has {sorted(schedules)})")
    spec = schedules[name]
    if not (isinstance(spec, dict) and set(spec) == {"epochs", "steps"}):
        raise ConfigError(f"params.yaml: schedules.{name} must be {{epochs: N, steps: [...]}}, got {spec!r}")
    epochs, steps = int(spec["epochs"]), [int(s) for s in spec["steps"]]
    if epochs < 1 or steps != sorted(set(steps)) or any(not 0 < s <= epochs for s in steps):
        raise ConfigError(f"params.yaml: schedules.{name}: epochs must be >= 1 and steps increasing epochs in "
                          f"[1, epochs], got {spec!r}")
    return epochs, steps


def _pipelines(cfg) -> list[list]:
    return [cfg[k].dataset.pipeline for k in ("train_dataloader", "val_dataloader", "test_dataloader")]


def inner_dataset(dataset: dict) -> dict:
    """A dataset config, unwrapped from its ``RepeatDataset`` if it has one (the VOC recipe's x3)."""
    return dataset.dataset if dataset.get("type") == "RepeatDataset" else dataset


def train_pipeline(cfg) -> list:
    """The training pipeline of ``cfg``, inside a ``RepeatDataset`` wrapper if there is one."""
    return list(inner_dataset(cfg.train_dataloader.dataset).pipeline)


def image_scale(size) -> tuple[int, int]:
    """A profile's ``image_size``: an int (square images, the embedded dataset) or ``[long, short]``
    edges (upstream's ``[1333, 800]`` on COCO and VOC), as mmdet's Resize ``scale``."""
    if isinstance(size, int):
        return size, size
    if isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size):
        return int(size[0]), int(size[1])
    raise ConfigError(f"params.yaml: data.image_size must be an int or [long, short] edges, got {size!r}")


def _apply_data(cfg, profile: dict[str, Any], data_root: Path) -> None:
    """Point the dataloaders and evaluators at the profile's data (see :mod:`ld.data.prepare`): the
    generated dataset in ``data_root``, or the user's COCO / VOC tree at ``data.root`` with, for VOC,
    the COCO annotations the data stage converted into ``data_root``."""
    from ld.data.prepare import dataset_files

    files = dataset_files(profile, data_root)
    scale = image_scale(profile["data"]["image_size"])
    for pipeline in _pipelines(cfg):
        for step in pipeline:
            if step["type"] == "Resize":
                step["scale"] = scale
    if files.classes is not None:  # the dataset's own classes (the embedded dataset's are the configs')
        cfg.classes = files.classes
        cfg.model.bbox_head.num_classes = len(cfg.classes)
    splits = {"train_dataloader": 0, "val_dataloader": 1, "test_dataloader": 1}
    for key, split in splits.items():
        dataset = cfg[key].dataset
        dataset.data_root = str(files.images_root)
        dataset.ann_file = files.ann_files[split]
        dataset.data_prefix = dict(img=files.image_prefixes[split])
        dataset.metainfo = dict(classes=tuple(cfg.classes))
    for key in ("val_evaluator", "test_evaluator"):
        cfg[key].ann_file = str(files.images_root / files.ann_files[1])  # an absolute second part stays as it is
    # VOC metrics (mmdet's eval_map, as the paper's VOC table) beside COCO's, of the same annotations
    cfg.voc_metrics = files.layout in ("synth", "voc")


def multiscale_range(size, short_edges: tuple[int, int]) -> list[tuple[int, int]]:
    """mmdet's ``RandomResize`` scales of an upstream multi-scale recipe at this profile's size.

    Upstream's ranges are short edges at the 1333x800 size (mmdet's GFL ms-2x: 480-800, GFocalV2's
    ms2x: 480-960), scaled by ``short / 800`` with the long edge kept: the ``coco`` profile gets
    upstream's ``[(1333, 480), (1333, 960)]``; on the square embedded images the long edge caps the
    size, so 480-960 becomes 0.6-1.0 of the profile's size with the upper part at 1.0.
    """
    long, short = image_scale(size)
    return [(long, round(short * e / 800)) for e in short_edges]


def _apply_multiscale(cfg, profile: dict[str, Any]) -> None:
    """A row with ``multiscale = (lo, hi)`` (upstream's ms-2x rows) trains with a random resize, unless
    the profile says ``multiscale: false`` (VOC: every upstream VOC config trains single-scale)."""
    if cfg.get("multiscale") is None or not profile.get("multiscale", True):
        return
    size = profile["data"]["image_size"]
    for step in cfg.train_dataloader.dataset.pipeline:
        if step["type"] == "Resize":
            step.update(type="RandomResize", scale=multiscale_range(size, tuple(cfg.multiscale)), keep_ratio=True)


GFL_ANCHOR_SCALE = 8  # GFocal's octave_base_scale, which a profile's `anchor_scale` replaces


def _apply_anchor_scale(head, anchor_scale: int) -> None:
    """A profile's ``anchor_scale`` is GFocal's anchor size in strides (8 at 1333x800, 4 on the small
    embedded images); other heads' sizes follow in proportion: RetinaNet's anchors (base 4) and FCOS's
    regression ranges (64-512 pixels between levels) scale by ``anchor_scale / 8``."""
    ratio = anchor_scale / GFL_ANCHOR_SCALE
    if "anchor_generator" in head:
        size = head.anchor_generator.octave_base_scale * ratio
        head.anchor_generator.octave_base_scale = int(size) if float(size).is_integer() else size
    if "regress_ranges" in head:  # an FCOS head's (its config's: pipelines/configs/_base_/fcos.py)
        head.regress_ranges = [tuple(v if v in (-1, 1e8) else v * ratio for v in r) for r in head.regress_ranges]


def apply_profile(cfg, profile: dict[str, Any], *, data_root: str | Path, num_gpus: int = 1) -> None:
    """Set the profile's data, sizes, widths, schedule, batch and LR on an mmengine ``Config`` in place.

    ``cfg`` is one of ``pipelines/configs``; for a distillation config only the student is changed
    here (its teacher keeps the config it was trained with). Images per GPU are the row's
    ``samples_per_gpu`` (upstream's, which also sets the per-GPU sums of ``normalize='upstream'``)
    unless the profile fixes ``batch_size`` (the CPU profiles do).
    """
    _apply_data(cfg, profile, Path(data_root))
    _apply_multiscale(cfg, profile)

    batch_size = int(profile["batch_size"] if profile.get("batch_size") is not None else cfg.samples_per_gpu)
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
        _apply_anchor_scale(model.bbox_head, int(profile["model"]["anchor_scale"]))
    if not profile.get("pretrained", False):
        # Trained from scratch: no pretrained weights, BN statistics learnt, nothing frozen.
        model.backbone.init_cfg = None
        model.backbone.frozen_stages = -1
        model.backbone.norm_eval = False

    epochs, steps = schedule(profile, cfg.get("schedule", "1x"))
    cfg.train_cfg.max_epochs = epochs
    # No validation pass in training: the eval stage evaluates the exported model on the same split (with
    # VOC metrics too); a pass at the end of training would be the same work twice. Lower `val_begin`
    # (and `val_interval`) in a config for validation curves.
    cfg.train_cfg.val_interval = epochs
    cfg.train_cfg.val_begin = epochs + 1
    lr = scaled_lr(batch_size, num_gpus, float(profile["base_lr"]))
    cfg.optim_wrapper.optimizer.lr = lr
    cfg.auto_scale_lr = dict(enable=False, base_batch_size=16)  # the rule is applied here, once
    warmup = int(profile["warmup_iters"])
    cfg.param_scheduler = [
        dict(type="LinearLR", start_factor=0.001, by_epoch=False, begin=0, end=warmup),
        dict(type="MultiStepLR", begin=0, end=epochs, by_epoch=True, gamma=0.1, milestones=steps),
    ]
    cfg.default_hooks.logger.interval = max(1, int(profile.get("log_interval", 5)))
    # Checkpoints every `checkpoint_interval` epochs: a killed run resumes from the last one and redoes
    # only the epoch it was in, so it ends with the same number of iterations as an uninterrupted run.
    cfg.default_hooks.checkpoint = dict(type="CheckpointHook", interval=int(profile.get("checkpoint_interval", 1)),
                                        max_keep_ckpts=2, save_last=True)
    cfg.lr_rule = dict(batch_size=batch_size, num_gpus=num_gpus, base_lr=float(profile["base_lr"]), lr=lr)
    repeat = int(profile.get("repeat", 1))
    if repeat > 1:  # upstream's VOC recipe: RepeatDataset x3 of VOC07+12 trainval, so an "epoch" is three passes
        cfg.train_dataloader.dataset = dict(type="RepeatDataset", times=repeat, dataset=cfg.train_dataloader.dataset)


def resolve_config(config: str | Path, params: dict[str, Any], profile: str | None = None, *,
                   data_root: str | Path | None = None, num_gpus: int = 1):
    """A row config (``pipelines/configs/<run>.py``) with a profile applied, as its stage resolves it:
    the profile's data (at ``data_root``, default ``data/<profile>``), sizes, schedule, batch and LR."""
    from mmengine.config import Config

    config = Path(config)
    if not config.is_file():
        raise MissingFileError(f"config {config} not found (configs live in pipelines/configs/)")
    profile = profile or params["profile"]
    cfg = Config.fromfile(str(config))
    apply_profile(cfg, get_profile(params, profile), data_root=data_root or Path("data") / profile, num_gpus=num_gpus)
    return cfg

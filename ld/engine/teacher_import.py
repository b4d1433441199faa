"""Importing a released teacher checkpoint as an exported teacher folder, so distillation can start
from mmdet's or GFocalV2's published COCO weights instead of training the teacher first.

The folder written is the one a trained run exports (:func:`ld.engine.train.export_model`):
``config.py`` (the run's resolved config) and ``model.pth`` (its weights), plus ``source.json``
saying where the weights came from (path or URL, SHA-256, layout detected, mmdet version, classes).

Key names. The released checkpoints need no renaming, only DDP's ``module.`` prefix stripped:

* mmdet 2.x GFL (``gfl_r101_fpn_mstrain_2x_coco_20200629_200126-dd12f847.pth`` and its siblings):
  ResNet / ResNeXt / FPN, ``bbox_head.{cls_convs,reg_convs}.N.{conv,gn}``, ``bbox_head.gfl_cls``,
  ``bbox_head.gfl_reg``, ``bbox_head.scales.N.scale`` and the ``bbox_head.integral.project`` buffer
  have the same names in mmdet 3.x; mmdet 3's own ``configs/ld/ld_r18-gflv1-r101_fpn_1x_coco.py``
  distils from that 2.x file as it is.
* GFocalV2 (implus/GFocalV2, ``mmdet/models/dense_heads/gfocal_head.py``, ``GFocalHead._init_layers``):
  ``self.reg_conf = nn.Sequential(nn.Conv2d(4 * total_dim, reg_channels, 1), self.relu,
  nn.Conv2d(reg_channels, 1, 1), nn.Sigmoid())``, i.e. ``bbox_head.reg_conf.{0,2}.{weight,bias}``,
  which is :class:`ld.models.gflv2_head.GFLv2Head`'s layout (its ``gfl_head.py`` is GFocalV1's head).

Whatever the layout, the weights must then fit the model built from the config exactly (same keys,
same shapes) and carry the config's classes, or nothing is written.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from mmdet.registry import MODELS

from ld.checkpoint import file_digest, load_checkpoint, save_weights, state_dict_mismatch
from ld.errors import BadFileError, MissingFileError
from ld.io import atomic_write_bytes, atomic_write_json, check_export_dir, current_umask
from ld.layout import CONFIGS, config_file
from ld.models.distiller import student_only

FORMATS = ("mmdet2", "mmdet3", "gfocalv2")
EXPORT_FILES = ("config.py", "model.pth", "source.json")
CACHE_DIR = Path("~/.cache/ld-workspace/teachers")
DDP_PREFIX = "module."
TORCH_MAGIC = (b"PK", b"\x80")  # torch.save's zip archive (torch >= 1.6), or its legacy pickle stream
GFOCALV2_KEY = "bbox_head.reg_conf."  # DGQP's MLP: only GFocalV2 heads have it


def is_url(checkpoint: str | os.PathLike) -> bool:
    """Whether ``checkpoint`` is an http(s) URL rather than a local path."""
    return urlparse(str(checkpoint)).scheme in ("http", "https")


def fetch_checkpoint(url: str, cache_dir: str | os.PathLike = CACHE_DIR) -> Path:
    """The local copy of ``url`` in ``cache_dir`` (``~/.cache/ld-workspace/teachers``), downloaded once."""
    name = Path(urlparse(url).path).name
    if not name:
        raise BadFileError(f"checkpoint URL {url} names no file: give a URL that ends in the file's name, "
                           "or download it and give its path")
    path = Path(cache_dir).expanduser() / name
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(url, str(path))  # writes a temporary file, then renames
    return path


def split_checkpoint(ckpt: Any, path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(state_dict, meta)`` of a loaded checkpoint: ``{'state_dict': ..., 'meta': ...}`` (mmdet,
    mmengine) or a bare state dict (then ``meta`` is empty)."""
    if not isinstance(ckpt, dict):
        raise BadFileError(f"checkpoint {path} holds a {type(ckpt).__name__}, not a dict of weights")
    state = ckpt.get("state_dict", ckpt)
    meta = ckpt.get("meta") if "state_dict" in ckpt else None
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors or len(tensors) != len(state):
        others = sorted(k for k, v in state.items() if not isinstance(v, torch.Tensor))[:5]
        raise BadFileError(f"checkpoint {path} is not a detector's weights: its state dict has "
                           f"{len(tensors)} tensors and non-tensor entries {others}")
    return tensors, dict(meta or {})


def detect_format(state_dict: dict[str, torch.Tensor], meta: dict[str, Any]) -> str:
    """Which codebase wrote the checkpoint: 'mmdet2' (mmdet 2.x, ``meta['mmdet_version']`` 2.*),
    'gfocalv2' (implus/GFocalV2, an mmdet 2.x fork, recognised by its DGQP keys ``bbox_head.reg_conf.*``)
    or 'mmdet3' (mmdet 3.x / mmengine, including this project's exports and bare state dicts)."""
    version = str(meta.get("mmdet_version", ""))
    if version.startswith("2."):
        dgqp = any(k.removeprefix(DDP_PREFIX).startswith(GFOCALV2_KEY) for k in state_dict)
        return "gfocalv2" if dgqp else "mmdet2"
    if version and not version.startswith("3."):
        raise BadFileError(f"checkpoint written by mmdet {version}: only mmdet 2.x and 3.x checkpoints are "
                           "imported (convert older ones with mmdet's tools/model_converters first)")
    return "mmdet3"


def map_keys(state_dict: dict[str, torch.Tensor], fmt: str) -> dict[str, torch.Tensor]:
    """``state_dict`` with this project's key names, for a checkpoint of layout ``fmt`` (:data:`FORMATS`).

    mmdet 2.x, GFocalV2 and mmdet 3.x name every GFL / GFocalV2 weight alike (see the module
    docstring for the sources), so the keys come back unchanged apart from DDP's ``module.`` prefix.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown checkpoint format {fmt!r}: one of {FORMATS}")
    return {k.removeprefix(DDP_PREFIX): v for k, v in state_dict.items()}


def checkpoint_classes(meta: dict[str, Any]) -> tuple[str, ...] | None:
    """The class names a checkpoint was trained on: ``meta['CLASSES']`` (mmdet 2.x) or
    ``meta['dataset_meta']['classes']`` (mmdet 3.x); None if it does not say."""
    classes = meta.get("CLASSES") or (meta.get("dataset_meta") or {}).get("classes")
    return tuple(str(c) for c in classes) if classes else None


def class_mismatch(expected: tuple[str, ...], given: tuple[str, ...]) -> str:
    """How two class lists differ (count, then the first positions that differ); '' if equal."""
    if expected == given:
        return ""
    if len(expected) != len(given):
        return f"{len(given)} classes where the config has {len(expected)}"
    diffs = [f"#{i} {g!r} (config: {e!r})" for i, (e, g) in enumerate(zip(expected, given)) if e != g]
    return f"{len(diffs)} classes differ or are in another order: {', '.join(diffs[:5])}"


def _write_folder(out_dir: Path, config_text: str, state_dict: dict[str, torch.Tensor],
                  meta: dict[str, Any], source: dict[str, Any]) -> None:
    """Write the three files into a staging folder next to ``out_dir``, then swap it in by renames."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.", suffix=".tmp"))
    old = None
    try:
        atomic_write_bytes(staging / "config.py", config_text.encode())
        save_weights(staging / "model.pth", state_dict, meta)
        atomic_write_json(staging / "source.json", source)
        staging.chmod(0o777 & ~current_umask())  # mkdtemp creates 0700; the export is an ordinary folder
        if out_dir.exists():  # only our files (checked): move them aside, swap, then drop them
            old = out_dir.with_name(f"{staging.name}.old")
            os.replace(out_dir, old)
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if old is not None and not out_dir.exists():
            os.replace(old, out_dir)
        raise
    if old is not None:
        shutil.rmtree(old)


def check_sha256(path: Path, digest: str, expected: str | None) -> None:
    """Refuse a file whose SHA-256 ``digest`` does not start with ``expected``: the whole hex digest, or a
    prefix of at least 8 digits (mmdet's file names end in the first 8, e.g. ``...-dd12f847.pth``)."""
    if expected is None:
        return
    expected = str(expected).strip().lower()
    if len(expected) < 8 or any(c not in "0123456789abcdef" for c in expected):
        raise BadFileError(f"sha256 {expected!r} for {path} is not a hex SHA-256 (or a prefix of at least 8 digits)")
    if not digest.startswith(expected):
        raise BadFileError(f"checkpoint {path} has SHA-256 {digest}, not the expected {expected}: a different or "
                           "corrupted file (delete a cached download to fetch it again)")


def import_teacher(checkpoint: str | os.PathLike, config, out_dir: str | os.PathLike, *,
                   sha256: str | None = None, published: dict[str, Any] | None = None,
                   cache_dir: str | os.PathLike = CACHE_DIR) -> dict[str, Any]:
    """Export a released checkpoint as the teacher folder of ``config`` (``config.py`` + ``model.pth``
    + ``source.json``), after checking that it is the file asked for and fits the config exactly.

    Args:
        checkpoint: a local file, or an http(s) URL downloaded once into ``cache_dir``.
        config: the run's resolved mmengine ``Config`` (profile applied; a distillation config is
            reduced to its student).
        out_dir: the exported teacher folder; refused if it holds other files than those three.
        sha256: the file's expected SHA-256 (or its first 8+ hex digits); refused if it differs.
        published: what the checkpoint's publisher reports (e.g. ``{"AP": 44.7}``), kept in
            ``source.json`` so that evaluation shows it beside ours.
        cache_dir: where URLs are downloaded (``~/.cache/ld-workspace/teachers``).

    Returns:
        What ``source.json`` records: ``checkpoint``, ``sha256``, ``format`` (:data:`FORMATS`),
        ``mapped_keys``, ``mmdet_version``, ``classes``, ``published``.

    Raises:
        BadFileError: another SHA-256, a file that is not a detector checkpoint, weights that do not fit
            the config (keys and shapes named), other classes, or an ``out_dir`` holding other files.
        MissingFileError: a local checkpoint that does not exist.
    """
    out_dir = Path(out_dir)
    check_export_dir(out_dir, EXPORT_FILES)
    path = fetch_checkpoint(str(checkpoint), cache_dir) if is_url(checkpoint) else Path(checkpoint)
    if not path.is_file():
        raise MissingFileError(f"checkpoint {path} does not exist: give the path of the released checkpoint "
                               "file, or its http(s) URL")
    digest = file_digest(path)  # before unpickling anything
    check_sha256(path, digest, sha256)
    with open(path, "rb") as f:
        magic = f.read(32)
    if not magic.startswith(TORCH_MAGIC):
        raise BadFileError(f"checkpoint {path} is not a PyTorch checkpoint (it starts with {magic!r}: a web "
                           "page or an interrupted download?): give the .pth file itself")
    ckpt = load_checkpoint(path)  # weights_only=True, mmengine's and mmdet 2.x's meta allowed; damage named
    state, meta = split_checkpoint(ckpt, path)
    fmt = detect_format(state, meta)
    state = map_keys(state, fmt)

    config = student_only(config)
    config_classes = tuple(config.classes) if config.get("classes") else None
    classes = checkpoint_classes(meta)
    if config_classes and classes:
        problem = class_mismatch(config_classes, classes)
        if problem:
            raise BadFileError(f"checkpoint {path} was trained on other classes than its config's: {problem}. "
                               "Give a checkpoint trained on this dataset (COCO's 80 classes for --profile coco)")
    expected = MODELS.build(config.model).state_dict()
    problem = state_dict_mismatch(expected, state)
    if problem:
        head = config.model.bbox_head
        raise BadFileError(
            f"teacher checkpoint {path} ({fmt}) does not fit its config ({config.model.backbone.type}-"
            f"{config.model.backbone.get('depth', '?')}, {head.type}, {head.num_classes} classes): {problem}"
            ". Wrong architecture, or a checkpoint for another number "
            "of classes (COCO's 80)? Give the checkpoint released for this config, or import it for the run "
            "whose config it matches.")

    source = {"checkpoint": str(checkpoint) if is_url(checkpoint) else str(path.resolve()),
              "sha256": digest, "format": fmt, "mapped_keys": len(state),
              "mmdet_version": meta.get("mmdet_version"),
              "classes": list(classes or config_classes or []) or None, "published": published or {}}
    export_meta = {k: meta[k] for k in ("epoch", "iter") if isinstance(meta.get(k), int)}
    if classes or config_classes:
        export_meta["dataset_meta"] = {"classes": list(classes or config_classes)}
    _write_folder(out_dir, config.pretty_text, state, export_meta, source)
    return source


def import_run(checkpoint: str | os.PathLike, run: str, params: dict[str, Any], profile: str,
               out_dir: str | os.PathLike, *, sha256: str | None = None, published: dict[str, Any] | None = None,
               configs_dir: str | os.PathLike = CONFIGS) -> dict[str, Any]:
    """:func:`import_teacher` for the run ``run`` of ``params.yaml`` (its row config with the profile
    applied, as its train stage would resolve it)."""
    from ld.profiles import resolve_config

    config = config_file(run, configs_dir)
    if not config.is_file():
        raise MissingFileError(f"run {run!r} has no config {config}: name a run of pipelines/configs/")
    cfg = resolve_config(config, params, profile)
    return import_teacher(checkpoint, cfg, out_dir, sha256=sha256, published=published)

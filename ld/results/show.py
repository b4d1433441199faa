"""``ld show``: the box distributions of an exported model's detections on any image file.

The model's own test pipeline (its config's, as mmdet's ``inference_detector`` builds it) resizes and
normalises the image; the figure is :func:`ld.results.ambiguity_figure.draw_object_distributions`.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ld.errors import BadFileError, ConfigError, MissingFileError
from ld.results.ambiguity_figure import box_distributions, draw_object_distributions, match_detection, save_figure
from ld.results.analysis import class_names, predict_with_distributions


def load_exported(config: str | Path, checkpoint: str | Path) -> nn.Module:
    """The detector of ``config`` with the weights of ``checkpoint`` (:func:`ld.models.distiller.build_student`).

    An exported run's pair (``<run>/config.py``, ``<run>/model.pth``) that is missing is a one-line
    :class:`MissingFileError` naming the stage that makes it (:func:`ld.checkpoint.require_files`); a
    config that mmengine cannot read, or whose head predicts no edge distributions, a :class:`BadFileError`.
    """
    from ld.checkpoint import read_config, require_files
    from ld.models.distiller import build_student

    config, checkpoint = Path(config), Path(checkpoint)
    require_files(config, checkpoint)
    model = build_student(read_config(config), checkpoint)
    if not hasattr(model.bbox_head, "reg_max"):
        raise BadFileError(f"config {config}: its head {type(model.bbox_head).__name__} predicts no edge "
                           "distributions; show works on the heads of ld.models (GFocal, GFocalV2, the "
                           "general-distribution ATSS, FCOS and RetinaNet, and their LD students)")
    return model


def read_image(image: str | Path) -> np.ndarray:
    """The image file as mmcv reads it for a model (``(H, W, 3)`` BGR uint8); a :class:`MissingFileError` if
    it does not exist, a :class:`BadFileError` if it is not an image."""
    import mmcv

    image = Path(image)
    if not image.is_file():
        raise MissingFileError(f"image {image} not found: give the path of an image file (jpg, png)")
    pixels = mmcv.imread(str(image))
    if pixels is None:
        raise BadFileError(f"image {image} cannot be decoded as an image: give a jpg or png file")
    return pixels


@torch.no_grad()
def preprocess_image(model: nn.Module, pixels: np.ndarray) -> dict:
    """A preprocessed batch of one BGR image through the model's test pipeline (its loader of image files
    replaced by mmdet's loader of arrays, annotations dropped), ready for its ``extract_feat``."""
    from mmcv.transforms import Compose
    from mmdet.utils import get_test_pipeline_cfg
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope

    init_default_scope(model.cfg.get("default_scope", "mmdet"))
    steps = [t for t in get_test_pipeline_cfg(model.cfg.copy()) if not str(t["type"]).endswith("LoadAnnotations")]
    steps[0].type = "mmdet.LoadImageFromNDArray"
    data = Compose(steps)(dict(img=pixels, img_id=0))
    return model.data_preprocessor(pseudo_collate([data]), False)


def show_image(config: str | Path, checkpoint: str | Path, image: str | Path, out: str | Path, *,
               box: Sequence[float] | None = None, score_thr: float = 0.3, top_k: int = 1) -> Path:
    """Draw an exported model's box distributions on ``image`` (any jpg or png) into the PNG ``out``.

    Without ``box``: its ``top_k`` highest-scoring detections (after NMS, score >= ``score_thr``), a panel
    each. With ``box`` (x1, y1, x2, y2 in the image's pixels): the detection that overlaps it most, drawn
    against it. Class names come from the model's config (or checkpoint). The PNG is written atomically;
    returns its path.

    Errors (one line, naming the file or value and what to do): a missing config, checkpoint or image is a
    :class:`MissingFileError`; an unreadable one a :class:`BadFileError`; a bad ``box``/``top_k``, or no
    detection to draw, a :class:`ConfigError`.
    """
    if Path(out).is_dir():
        raise ConfigError(f"out {out} is a folder: give the PNG file to write (e.g. {Path(out) / 'show.png'})")
    if top_k < 1:
        raise ConfigError(f"top_k {top_k}: give at least 1 detection to draw")
    if box is not None and (len(box) != 4 or not (box[2] > box[0] and box[3] > box[1])):
        raise ConfigError(f"box {list(box)}: give x1 y1 x2 y2 in the image's pixels, with x2 > x1 and y2 > y1")
    pixels = read_image(image)
    model = load_exported(config, checkpoint)
    det = predict_with_distributions(model, preprocess_image(model, pixels), score_thr=score_thr)[0]
    names = class_names(model.cfg, checkpoint, model.bbox_head.num_classes)
    reg_max, rgb, image = model.bbox_head.reg_max, np.ascontiguousarray(pixels[..., ::-1]), Path(image)
    run = Path(config).parent.name if Path(config).name == "config.py" else Path(config).stem
    if box is not None:
        k = match_detection(det, box, score_thr=score_thr, min_iou=1e-6)
        if k is None:
            raise ConfigError(f"no detection of {run} scoring >= {score_thr} overlaps box {list(box)} in {image}: "
                              "lower the score threshold (--score-thr) or check the box (x1 y1 x2 y2, pixels)")
        label = names[int(det["labels"][k])]
        fig = draw_object_distributions(rgb, {f"{run}: {label}": box_distributions(det, k, reg_max)}, box,
                                        subtitle=image.name, reference_label="given box")
    else:
        if not len(det["scores"]):
            raise ConfigError(f"no detection of {run} scores >= {score_thr} in {image}: lower the score threshold "
                              "(--score-thr)")
        panels = {f"#{k + 1} {names[int(det['labels'][k])]}": box_distributions(det, k, reg_max)
                  for k in range(min(top_k, len(det["scores"])))}
        fig = draw_object_distributions(rgb, panels, subtitle=f"{image.name}: top {len(panels)} of {run}")
    return save_figure(fig, out)

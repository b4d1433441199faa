"""Box distributions of trained detectors: what the ambiguity notebook computes (its figure of single
objects is :mod:`ld.results.ambiguity_figure`).

For each detection of a model we keep the anchor it came from and its four edge distributions, so the
same location can be read in a teacher (teacher vs student KL per edge), and match it to a ground
truth to know the object's class, size and occlusion.
"""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ld.errors import ConfigError
from ld.ops.ambiguity import entropy, kl_divergence, normalized_entropy, top_gap
from ld.ops.box_ops import box_iou, distances_to_boxes, prior_centers
from ld.ops.distribution import EDGES, edge_probabilities, expected_offset, flatten_levels

if TYPE_CHECKING:
    from mmengine.config import Config


def load_model(run_dir: str | Path) -> nn.Module:
    """The detector of an exported run (its student alone), in eval mode on the CPU, its config as ``model.cfg``
    (:func:`ld.models.distiller.build_student`). A missing ``config.py`` or ``model.pth`` is a one-line
    :class:`~ld.errors.MissingFileError` naming the stage that makes it (:func:`ld.checkpoint.require_exported`)."""
    from ld.checkpoint import require_exported
    from ld.models.distiller import build_student

    return build_student(*require_exported(run_dir))


def class_names(cfg: Config | str | Path, checkpoint: str | Path | None = None,
                num_classes: int | None = None) -> tuple[str, ...]:
    """A model's class names in label order, from its own files (never from the embedded dataset's list).

    Read from the config's test dataset ``metainfo.classes``, else the checkpoint's
    ``meta.dataset_meta.classes``, else the dataset type's own ``METAINFO`` (mmdet's ``CocoDataset``: the 80
    COCO classes). ``cfg``: an mmengine Config (``model.cfg``) or a path to a ``config.py``. With
    ``num_classes`` (``model.bbox_head.num_classes``), a list of another length is a :class:`BadFileError`.
    """
    from mmengine.config import Config

    from ld.checkpoint import load_checkpoint
    from ld.errors import BadFileError

    source = cfg if isinstance(cfg, (str, Path)) else "the model's config"
    cfg = Config.fromfile(str(cfg)) if isinstance(cfg, (str, Path)) else cfg
    dataset = cfg.test_dataloader.dataset
    while "dataset" in dataset and "metainfo" not in dataset:  # wrappers (RepeatDataset, ...)
        dataset = dataset.dataset
    classes = (dataset.get("metainfo") or {}).get("classes")
    if classes is None and checkpoint is not None:
        source = checkpoint
        classes = (load_checkpoint(checkpoint, mmap=True).get("meta", {}).get("dataset_meta") or {}).get("classes")
    if classes is None:
        from mmdet.registry import DATASETS

        source = f"{dataset.type}.METAINFO"
        classes = DATASETS.get(dataset.type).METAINFO["classes"]
    if num_classes is not None and len(classes) != num_classes:
        raise BadFileError(f"{source} names {len(classes)} classes but the model predicts {num_classes}: give the "
                           "config the model was trained with (its test_dataloader.dataset.metainfo.classes)")
    return tuple(classes)


def val_loader(model: nn.Module):
    """The model's test dataloader (its config's validation split), one image per batch."""
    from mmengine.runner import Runner

    loader_cfg = model.cfg.test_dataloader.copy()
    loader_cfg.batch_size = 1
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its loading time
        return Runner.build_dataloader(loader_cfg)


def val_batches(model: nn.Module, num_images: int | None = None):
    """The first ``num_images`` (None: all) images of :func:`val_loader`, each a batch of one, preprocessed
    by the model's data preprocessor."""
    for n, batch in enumerate(val_loader(model)):
        if num_images is not None and n >= num_images:
            return
        yield model.data_preprocessor(batch, False)


@torch.no_grad()
def head_outputs(model: nn.Module, data: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flattened head outputs of a preprocessed batch, one row per prior, in mmdet's prior order.

    Returns ``scores (B, A, C)``, ``logits (B, A, 4 * (reg_max + 1))`` the edge logits, ``centers (A, 2)``
    (where the edges are measured from: an anchor's centre, or the point) and ``strides (A,)`` of the
    priors. ``A`` counts priors, not locations: RetinaNet has 9 a location, each with its own
    distributions. ``scores``: what the head's predictions rank by, the sigmoid of the class logits
    (GFocal's: the joint score) times, for a head with centre-ness (ATSS, FCOS), its sigmoid (mmdet's
    score factor). Any head of :mod:`ld.models` (GFocal, GFocalV2, the general-distribution ATSS, FCOS and
    RetinaNet, their LD students).
    """
    head = model.bbox_head
    cls_scores, bbox_preds, *centerness = head(model.extract_feat(data["inputs"]))
    B = cls_scores[0].shape[0]

    priors = head.prior_generator.grid_priors([c.shape[-2:] for c in cls_scores], device=cls_scores[0].device)
    centers = prior_centers(torch.cat(priors))
    strides = torch.cat([torch.full((len(p),), float(st[0]), device=p.device)
                         for p, st in zip(priors, head.prior_generator.strides)])
    scores = flatten_levels(cls_scores).reshape(B, len(centers), -1).sigmoid()  # a location's priors, in order
    if centerness:
        scores = scores * flatten_levels(centerness[0]).sigmoid()
    return scores, flatten_levels(bbox_preds).reshape(B, len(centers), -1), centers, strides


def teacher_prior_index(anchor: torch.Tensor, student_priors: int, teacher_priors: int) -> torch.Tensor:
    """The teacher's prior whose distributions LD gives a student's prior ``anchor (K,)``: the same one
    where both have as many priors a location, else the location's one (a GFocal teacher of a RetinaNet
    student: ``anchor // 9``), as :meth:`ld.models.ld_head.LDHeadMixin.set_teacher` pairs them."""
    if teacher_priors not in (1, student_priors):
        raise ConfigError(f"the teacher has {teacher_priors} priors a location and the model {student_priors}: "
                          "KL to the teacher pairs them one to one, or one teacher location to all its priors")
    return anchor // (student_priors // teacher_priors)


def edge_bin_positions(centers: torch.Tensor, strides: torch.Tensor, scale: torch.Tensor,
                       reg_max: int = 16) -> torch.Tensor:
    """Where each bin of each edge distribution puts that edge, in original image pixels: ``(K, 4, reg_max + 1)``.

    Bin ``b`` of edge ``e`` is the distance ``b * stride`` from the anchor centre, decoded as the head
    decodes its boxes (:func:`distances_to_boxes`) and divided by the ``(w, h)`` resize ``scale``: an x
    coordinate for the left and right edges, a y coordinate for the top and bottom ones. ``centers (K, 2)``
    and ``strides (K,)`` as :func:`predict_with_distributions` returns them (resized input's pixels).

    Example: an anchor at (40, 24) of stride 8 on an image resized by 2: the left edge's bins lie at
    x = 20, 16, 12, ... and the bottom edge's at y = 12, 16, 20, ...
    """
    bins = torch.arange(reg_max + 1, dtype=centers.dtype, device=centers.device)
    k = len(centers)
    distances = (bins[None, :] * strides[:, None]).reshape(-1, 1).expand(-1, 4)  # (K * bins, 4)
    boxes = distances_to_boxes(centers.repeat_interleave(reg_max + 1, dim=0), distances)
    return (boxes / scale.to(boxes.dtype).repeat(2)).reshape(k, reg_max + 1, 4).transpose(1, 2)


@torch.no_grad()
def predict_with_distributions(model: nn.Module, data: dict, score_thr: float = 0.3, iou_threshold: float = 0.6,
                               max_per_img: int = 100) -> list[dict[str, Any]]:
    """Detections of a preprocessed batch with the anchor and edge logits each came from.

    Per image: ``bboxes (K, 4)`` xyxy in original image pixels, ``scores (K,)``, ``labels (K,)``,
    ``anchor (K,)`` indices into the flattened anchors, ``logits (K, 4 * (reg_max + 1))``, ``stride (K,)``
    and ``center (K, 2)`` of the anchor in the resized input's pixels, ``scale (2,)`` the (w, h) resize
    factor of the image. :func:`edge_bin_positions` places each edge's bins in original image pixels.
    """
    from mmcv.ops import batched_nms

    scores, logits, centers, strides = head_outputs(model, data)
    reg_max = model.bbox_head.reg_max
    out = []
    for i, sample in enumerate(data["data_samples"]):
        best, labels = scores[i].max(dim=1)
        idx = torch.nonzero(best > score_thr).squeeze(1)
        idx = idx[best[idx].argsort(descending=True)[:1000]]
        offsets = expected_offset(edge_probabilities(logits[i, idx], reg_max)) * strides[idx, None]  # (N, 4)
        h, w = sample.metainfo["img_shape"]
        boxes = distances_to_boxes(centers[idx], offsets)
        boxes = torch.stack([boxes[:, 0].clamp(0, w), boxes[:, 1].clamp(0, h),
                             boxes[:, 2].clamp(0, w), boxes[:, 3].clamp(0, h)], dim=1)  # as GFL's decoder
        if len(idx):
            _, keep = batched_nms(boxes, best[idx], labels[idx], dict(type="nms", iou_threshold=iou_threshold))
            keep = keep[:max_per_img]
        else:
            keep = idx
        scale = torch.tensor(sample.metainfo["scale_factor"], dtype=boxes.dtype)
        kept = idx[keep]
        out.append({"img_id": sample.metainfo["img_id"], "img_path": sample.metainfo["img_path"],
                    "bboxes": boxes[keep] / scale.repeat(2), "scores": best[kept], "labels": labels[kept],
                    "anchor": kept, "logits": logits[i, kept], "stride": strides[kept], "center": centers[kept],
                    "scale": scale})
    return out


def ground_truth_by_image(ann_file: str | Path) -> dict[int, list[dict[str, Any]]]:
    """A COCO annotation file's objects by image id, each with ``label``: its category's index in id order."""
    coco = json.loads(Path(ann_file).read_text())
    by_image: dict[int, list[dict[str, Any]]] = {img["id"]: [] for img in coco["images"]}
    cat_index = {c["id"]: i for i, c in enumerate(sorted(coco["categories"], key=lambda c: c["id"]))}
    for a in coco["annotations"]:
        by_image[a["image_id"]].append({**a, "label": cat_index[a["category_id"]]})
    return by_image


def size_range(area: float) -> str:
    """COCO's size ranges: small < 32^2 <= medium < 96^2 <= large (pixels)."""
    return "small" if area < 32**2 else "medium" if area < 96**2 else "large"


def ambiguity_table(models: dict[str, nn.Module], teacher: str | None = None, num_images: int | None = None,
                    score_thr: float = 0.3, match_iou: float = 0.5) -> pd.DataFrame:
    """One row per (model, detection, edge) on the validation split of the first model.

    Columns: ``model, img_id, label, score, edge, entropy, norm_entropy, top_gap, kl_to_teacher`` and, for
    detections matched to a ground truth of the same class (IoU >= ``match_iou``), ``iou, size,
    occlusion, edge_width`` of that object (NaN otherwise). ``kl_to_teacher`` is KL(teacher || model)
    of the edge distributions at the detection's own prior, or its location's where the teacher has one
    prior a location and the model several (:func:`teacher_prior_index`; the models share the grid of
    locations).
    """
    first = next(iter(models.values()))
    reg_max = first.bbox_head.reg_max
    gts = ground_truth_by_image(first.cfg.test_evaluator.ann_file)
    rows = []
    for data in val_batches(first, num_images):
        teacher_logits = head_outputs(models[teacher], data)[1][0] if teacher else None
        for name, model in models.items():
            det = predict_with_distributions(model, data, score_thr=score_thr)[0]
            probs = edge_probabilities(det["logits"], reg_max)  # (K, 4, bins)
            at = (teacher_prior_index(det["anchor"], model.bbox_head.num_base_priors,
                                      models[teacher].bbox_head.num_base_priors) if teacher else None)
            kl = (kl_divergence(edge_probabilities(teacher_logits[at], reg_max), probs)
                  if teacher_logits is not None else torch.full(probs.shape[:2], float("nan")))
            image_gts = gts.get(det["img_id"], [])
            gt_boxes = torch.tensor([[g["bbox"][0], g["bbox"][1], g["bbox"][0] + g["bbox"][2],
                                      g["bbox"][1] + g["bbox"][3]] for g in image_gts]).reshape(-1, 4)
            ious = box_iou(det["bboxes"], gt_boxes) if len(image_gts) else torch.zeros(len(det["bboxes"]), 0)
            ent, nent, gap = entropy(probs), normalized_entropy(probs), top_gap(probs)
            for k in range(len(det["bboxes"])):
                label = int(det["labels"][k])
                same = [j for j, g in enumerate(image_gts) if g["label"] == label and ious[k, j] >= match_iou]
                gt = max(same, key=lambda j: ious[k, j]) if same else None
                info = ({"iou": float(ious[k, gt]), "size": size_range(image_gts[gt]["area"]),
                         "occlusion": image_gts[gt].get("occlusion", np.nan),
                         "edge_width": image_gts[gt].get("edge_width", np.nan)} if gt is not None else
                        {"iou": np.nan, "size": None, "occlusion": np.nan, "edge_width": np.nan})
                for e, edge in enumerate(EDGES):
                    rows.append({"model": name, "img_id": det["img_id"], "label": label,
                                 "score": float(det["scores"][k]), "edge": edge, "entropy": float(ent[k, e]),
                                 "norm_entropy": float(nent[k, e]), "top_gap": float(gap[k, e]),
                                 "kl_to_teacher": float(kl[k, e]), **info})
    return pd.DataFrame(rows)

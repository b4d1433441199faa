"""PASCAL VOC box metrics, computed by mmdet's own ``eval_map``.

The numbers are mmdet's (``mmdet.evaluation.functional.eval_map``: its matching, its float64 recall,
its 11-point and area integrals, its mean over the classes that have ground truth). What this module
adds is what ``eval_map`` lacks: the LD paper's VOC "AP" (the mean of the 11-point mAP at IoU 0.50,
0.55, ..., 0.95), a per-class table, and the conversion of COCO ground truth and COCO results (what
the pipeline trains on and predicts) into ``eval_map``'s inputs.

Every metric is named after what it is: ``mAP50_voc07_11pt`` (VOC2007 metric), ``mAP50_area``
(VOC2010+ metric), ``AP_by_iou_voc07_11pt`` and ``AP`` (their mean), ``AP50`` / ``AP75`` from it.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

# IoU thresholds of the LD paper's VOC "AP": 0.50, 0.55, ..., 0.95, and their names AP50 ... AP95.
VOC_IOU_THRS: tuple[float, ...] = tuple(round(0.5 + 0.05 * k, 2) for k in range(10))
VOC_IOU_NAMES: tuple[str, ...] = tuple(f"AP{round(100 * t):02d}" for t in VOC_IOU_THRS)

_TABLE_COLUMNS: tuple[str, ...] = ("class", "gts", "dets", "recall", "ap")


def _as_boxes(value: Any, what: str, cols: int) -> np.ndarray:
    arr = np.asarray(value if value is not None else np.empty((0, cols)), dtype=np.float32)
    if arr.size == 0:
        return arr.reshape(0, cols)
    if arr.ndim != 2 or arr.shape[1] != cols:
        raise ValueError(f"{what} must have shape (N, {cols}), got {arr.shape}")
    return arr


def _check_inputs(gt: list[dict], dets: list[list[np.ndarray]], num_classes: int
                  ) -> tuple[list[dict[str, np.ndarray]], list[list[np.ndarray]]]:
    """Validated copies: float32 boxes of shape (N, 4) / (D, 5), int64 labels in [0, num_classes)."""
    if len(gt) != len(dets):
        raise ValueError(f"gt has {len(gt)} images but dets has {len(dets)}; they must be in the same order")
    if not gt:
        raise ValueError("no images to evaluate")
    anns, results = [], []
    for i, (ann, img_dets) in enumerate(zip(gt, dets)):
        clean: dict[str, np.ndarray] = {}
        for boxes_key, labels_key in (("bboxes", "labels"), ("bboxes_ignore", "labels_ignore")):
            boxes = _as_boxes(ann.get(boxes_key), f"gt[{i}]['{boxes_key}']", 4)
            labels = np.asarray(ann.get(labels_key, np.empty(0)), dtype=np.int64).reshape(-1)
            if len(labels) != len(boxes):
                raise ValueError(f"gt[{i}] has {len(boxes)} {boxes_key} but {len(labels)} {labels_key}")
            if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
                raise ValueError(f"gt[{i}]['{labels_key}'] has labels outside [0, {num_classes}): "
                                 f"{sorted(set(labels.tolist()))}")
            clean[boxes_key], clean[labels_key] = boxes, labels
        if len(img_dets) != num_classes:
            raise ValueError(f"dets[{i}] has {len(img_dets)} per-class arrays, expected one per class "
                             f"({num_classes})")
        anns.append(clean)
        results.append([_as_boxes(d, f"dets[{i}][{c}]", 5) for c, d in enumerate(img_dets)])
    return anns, results


def _eval_map(results, anns, iou_thr: float, eval_mode: str, use_legacy_coordinate: bool, nproc: int):
    from mmdet.evaluation.functional import eval_map

    return eval_map(results, anns, iou_thr=iou_thr, eval_mode=eval_mode, use_legacy_coordinate=use_legacy_coordinate,
                    logger="silent", nproc=nproc)


def evaluate_voc(gt: list[dict], dets: list[list[np.ndarray]], class_names: list[str],
                 use_legacy_coordinate: bool = True, nproc: int = 2) -> dict[str, Any]:
    """VOC box metrics of ``dets`` against ``gt``, by mmdet's ``eval_map``.

    Args:
        gt: one dict per image: ``bboxes`` (G, 4) xyxy, ``labels`` (G,) class indices, optionally
            ``bboxes_ignore`` (Gi, 4) and ``labels_ignore`` (Gi,) for VOC 'difficult' objects, which
            are neither true positives nor misses (a detection on one is ignored).
        dets: ``dets[i][c]`` is a (D, 5) array ``x1, y1, x2, y2, score`` of class ``c`` in image ``i``
            (the format of mmdet's ``eval_map``); an empty array, or shape (0, 5), for none.
        class_names: the C class names; ``len(class_names)`` is the number of classes.
        use_legacy_coordinate: widths and heights as ``x2 - x1 + 1`` (what mmdet's ``VOCMetric``
            passes for VOC); False for ``x2 - x1``.
        nproc: processes of ``eval_map``'s matching pool.

    Returns:
        ``per_class``: rows ``{class, gts, dets, recall, ap}`` at IoU 0.5, ``ap`` the VOC2007
        11-point AP and ``recall`` the final recall (mmdet's printed table); ``gts`` counts
        non-difficult objects, ``dets`` all detections of the class.
        ``mAP50_voc07_11pt``: mean 11-point AP at IoU 0.5 (VOC2007 metric).
        ``mAP50_area``: mean AP at IoU 0.5 as the area under the PR curve (VOC2010+ metric).
        ``AP_by_iou_voc07_11pt``: ``{"AP50": ..., "AP55": ..., ..., "AP95"}``, the 11-point mAP at
        each IoU threshold.
        ``AP``: mean of ``AP_by_iou_voc07_11pt`` (the LD paper's VOC "AP"); ``AP50``, ``AP75`` from it.
        Values are floats in [0, 1], rounded to 6 decimals. Means are over the classes with ground
        truth, as in mmdet; a class without ground truth still has its row.
    """
    anns, results = _check_inputs(gt, dets, len(class_names))
    by_iou: dict[str, float] = {}
    for name, iou_thr in zip(VOC_IOU_NAMES, VOC_IOU_THRS):
        by_iou[name], per_class_results = _eval_map(results, anns, iou_thr, "11points", use_legacy_coordinate, nproc)
        if iou_thr == 0.5:
            per_class = [{"class": cls, "gts": int(r["num_gts"]), "dets": int(r["num_dets"]),
                          "recall": round(float(r["recall"][-1]) if r["recall"].size else 0.0, 6),
                          "ap": round(float(r["ap"]), 6)} for cls, r in zip(class_names, per_class_results)]
    map50_area, _ = _eval_map(results, anns, 0.5, "area", use_legacy_coordinate, nproc)
    return {
        "per_class": per_class,
        "mAP50_voc07_11pt": round(by_iou["AP50"], 6),
        "mAP50_area": round(float(map50_area), 6),
        "AP_by_iou_voc07_11pt": {k: round(v, 6) for k, v in by_iou.items()},
        "AP": round(float(np.mean(list(by_iou.values()))), 6),
        "AP50": round(by_iou["AP50"], 6),
        "AP75": round(by_iou["AP75"], 6),
    }


def voc_table(result: dict[str, Any]) -> pd.DataFrame:
    """The per-class table of :func:`evaluate_voc` (columns class, gts, dets, recall, ap) and a last
    'mAP' row whose ap is ``mAP50_voc07_11pt`` and whose other cells are empty (NA)."""
    rows = [*result["per_class"],
            {"class": "mAP", "gts": pd.NA, "dets": pd.NA, "recall": pd.NA, "ap": result["mAP50_voc07_11pt"]}]
    df = pd.DataFrame.from_records(rows, columns=list(_TABLE_COLUMNS))
    return df.astype({"gts": "Int64", "dets": "Int64", "recall": "Float64", "ap": "float64"})


def _xyxy(bbox: list[float]) -> list[float]:
    """COCO ``[x, y, w, h]`` -> ``[x, y, x + w, y + h]``: the box in the coordinates the model was
    trained on and predicts in (for VOC, mmdet's: the 1-based pixel indices minus one, see
    :func:`ld.data.prepare.voc_to_coco`), for ground truth and detections alike."""
    x, y, w, h = bbox
    return [x, y, x + w, y + h]


def voc_inputs(coco_gt: dict[str, Any], records: list[dict[str, Any]]
               ) -> tuple[list[dict[str, np.ndarray]], list[list[np.ndarray]], list[str]]:
    """``eval_map``'s inputs from a COCO ground-truth dict and COCO result records.

    Images in ``coco_gt['images']`` order; classes in category-id order. Ground truth marked
    ``iscrowd`` (VOC's *difficult* objects, as :func:`ld.data.prepare.voc_to_coco` writes them) goes to
    ``bboxes_ignore``. Both sides are converted by the same rule, so a detector that returns the
    ground truth scores 1.0 at every IoU.

    Returns:
        ``(gt, dets, class_names)`` as :func:`evaluate_voc` takes them.
    """
    categories = sorted(coco_gt["categories"], key=lambda c: c["id"])
    class_of_cat = {cat["id"]: i for i, cat in enumerate(categories)}
    index_of_image = {img["id"]: i for i, img in enumerate(coco_gt["images"])}
    num_images, num_classes = len(index_of_image), len(categories)
    boxes: list[dict[bool, list]] = [{False: [], True: []} for _ in range(num_images)]
    labels: list[dict[bool, list]] = [{False: [], True: []} for _ in range(num_images)]
    for ann in coco_gt["annotations"]:
        i, ignore = index_of_image[ann["image_id"]], bool(ann.get("iscrowd", 0))
        boxes[i][ignore].append(_xyxy(ann["bbox"]))
        labels[i][ignore].append(class_of_cat[ann["category_id"]])
    gt = [{"bboxes": np.array(b[False], dtype=np.float32).reshape(-1, 4),
           "labels": np.array(lab[False], dtype=np.int64),
           "bboxes_ignore": np.array(b[True], dtype=np.float32).reshape(-1, 4),
           "labels_ignore": np.array(lab[True], dtype=np.int64)} for b, lab in zip(boxes, labels)]
    per_image: list[list[list]] = [[[] for _ in range(num_classes)] for _ in range(num_images)]
    for r in records:
        per_image[index_of_image[r["image_id"]]][class_of_cat[r["category_id"]]].append(
            [*_xyxy(r["bbox"]), r["score"]])
    dets = [[np.array(c, dtype=np.float32).reshape(-1, 5) for c in img] for img in per_image]
    return gt, dets, [c["name"] for c in categories]

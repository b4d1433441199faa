"""PASCAL VOC box metrics, computed the way mmdet's ``VOCMetric``/``eval_map`` computes them.

Matching (``tpfp_default``) and the AP integrals (``average_precision``) are mmdet's own functions,
so the numbers are mmdet's; the per-class loop is done here, once per IoU threshold, so one matching
gives both the VOC2007 11-point AP and the VOC2010+ area AP, and no process pool is started.

Every metric is named after what it is: ``mAP50_voc07_11pt`` (VOC2007 metric), ``mAP50_area``
(VOC2010+ metric) and, as in the LD paper's VOC tables, ``AP`` = mean of the 11-point mAP at IoU
0.50, 0.55, ..., 0.95 (``AP_by_iou_voc07_11pt``), with ``AP50``/``AP75`` taken from that list.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ld.errors import BadFileError, MissingFileError

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


def _class_pr(cls_dets: list[np.ndarray], cls_gts: list[np.ndarray], cls_ignore: list[np.ndarray],
              iou_thr: float, use_legacy_coordinate: bool) -> tuple[int, int, np.ndarray, np.ndarray]:
    """(num_gts, num_dets, recall (D,), precision (D,)) of one class over all images, as eval_map does.

    Detections matched to an ignored (difficult) gt are neither TP nor FP; ignored gts are not counted.
    """
    from mmdet.evaluation.functional.mean_ap import tpfp_default

    tps, fps = [], []
    for d, g, ig in zip(cls_dets, cls_gts, cls_ignore):
        tp, fp = tpfp_default(d, g, ig, iou_thr, None, use_legacy_coordinate)
        tps.append(tp[0])
        fps.append(fp[0])
    num_gts = int(sum(g.shape[0] for g in cls_gts))
    all_dets = np.vstack(cls_dets) if cls_dets else np.empty((0, 5), dtype=np.float32)
    order = np.argsort(-all_dets[:, -1])
    tp = np.cumsum(np.concatenate(tps)[order]) if tps else np.empty(0)
    fp = np.cumsum(np.concatenate(fps)[order]) if fps else np.empty(0)
    eps = np.finfo(np.float32).eps
    recall = tp / max(num_gts, eps)
    precision = tp / np.maximum(tp + fp, eps)
    return num_gts, int(all_dets.shape[0]), recall, precision


def _mean_over_classes_with_gts(aps: list[float], num_gts: list[int]) -> float:
    """mmdet's mAP: the mean AP of the classes that have ground truth (0.0 if none has)."""
    kept = [ap for ap, n in zip(aps, num_gts) if n > 0]
    return float(np.mean(kept)) if kept else 0.0


def evaluate_voc(gt: list[dict], dets: list[list[np.ndarray]], class_names: list[str],
                 use_legacy_coordinate: bool = True) -> dict[str, Any]:
    """VOC box metrics of ``dets`` against ``gt``.

    Args:
        gt: one dict per image: ``bboxes`` (G, 4) xyxy, ``labels`` (G,) class indices, optionally
            ``bboxes_ignore`` (Gi, 4) and ``labels_ignore`` (Gi,) for VOC 'difficult' objects, which
            are neither true positives nor misses (a detection on one is ignored).
        dets: ``dets[i][c]`` is a (D, 5) array ``x1, y1, x2, y2, score`` of class ``c`` in image ``i``
            (the format of mmdet's ``eval_map``); an empty array, or shape (0, 5), for none.
        class_names: the C class names; ``len(class_names)`` is the number of classes.
        use_legacy_coordinate: widths and heights as ``x2 - x1 + 1`` (VOC's inclusive pixel boxes,
            what mmdet's VOCMetric uses); False for ``x2 - x1``.

    Returns:
        ``per_class``: rows ``{class, gts, dets, recall, ap}`` at IoU 0.5, ``ap`` the VOC2007
        11-point AP and ``recall`` the final recall (mmdet's printed table); ``gts`` counts
        non-difficult objects, ``dets`` all detections of the class.
        ``mAP50_voc07_11pt``: mean 11-point AP at IoU 0.5 (VOC2007 metric).
        ``mAP50_area``: mean AP at IoU 0.5 as the area under the PR curve (VOC2010+ metric).
        ``AP_by_iou_voc07_11pt``: ``{"AP50": ..., "AP55": ..., ..., "AP95"}``, the 11-point mAP at
        each IoU threshold.
        ``AP``: mean of ``AP_by_iou_voc07_11pt`` (the LD paper's VOC "AP"); ``AP50``, ``AP75`` from it.
        Values are floats in [0, 1]. Means are over the classes with ground truth, as in mmdet; a
        class without ground truth still has its row, with ap 0.
    """
    from mmdet.evaluation.functional.mean_ap import average_precision

    num_classes = len(class_names)
    anns, results = _check_inputs(gt, dets, num_classes)
    per_class: list[dict[str, Any]] = []
    by_iou: dict[str, float] = {}
    map50_area = 0.0
    for name, iou_thr in zip(VOC_IOU_NAMES, VOC_IOU_THRS):
        aps_11pt, aps_area, gts_per_class = [], [], []
        for c in range(num_classes):
            cls_dets = [img[c] for img in results]
            cls_gts = [a["bboxes"][a["labels"] == c] for a in anns]
            cls_ignore = [a["bboxes_ignore"][a["labels_ignore"] == c] for a in anns]
            num_gts, num_dets, recall, precision = _class_pr(cls_dets, cls_gts, cls_ignore, iou_thr,
                                                             use_legacy_coordinate)
            ap_11pt = float(average_precision(recall, precision, "11points"))
            aps_11pt.append(ap_11pt)
            gts_per_class.append(num_gts)
            if iou_thr == 0.5:
                aps_area.append(float(average_precision(recall, precision, "area")))
                per_class.append({"class": class_names[c], "gts": num_gts, "dets": num_dets,
                                  "recall": round(float(recall[-1]) if recall.size else 0.0, 6),
                                  "ap": round(ap_11pt, 6)})
        by_iou[name] = _mean_over_classes_with_gts(aps_11pt, gts_per_class)
        if iou_thr == 0.5:
            map50_area = _mean_over_classes_with_gts(aps_area, gts_per_class)
    return {
        "per_class": per_class,
        "mAP50_voc07_11pt": round(by_iou["AP50"], 6),
        "mAP50_area": round(map50_area, 6),
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


def _coord(bndbox: ET.Element, tag: str, xml_path: Path, index: int) -> float:
    text = bndbox.findtext(tag)
    try:
        return float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise BadFileError(f"{xml_path}: object {index} has no numeric <bndbox><{tag}> (got {text!r}); "
                           "fix or regenerate the annotation") from None


def _parse_xml(xml_path: Path, class_index: dict[str, int], minus_one: bool) -> dict[str, np.ndarray]:
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as err:
        raise BadFileError(f"{xml_path} is not valid XML ({err}); fix or regenerate the annotation") from err
    boxes: dict[bool, list[list[float]]] = {False: [], True: []}
    labels: dict[bool, list[int]] = {False: [], True: []}
    for index, obj in enumerate(root.findall("object")):
        name = (obj.findtext("name") or "").strip()
        if not name:
            raise BadFileError(f"{xml_path}: object {index} has no <name>; fix or regenerate the annotation")
        if name not in class_index:
            raise BadFileError(f"{xml_path}: object {index} has class {name!r}, which is not one of "
                               f"{list(class_index)}; pass class_names that include it or fix the file")
        difficult_text = (obj.findtext("difficult") or "0").strip()
        if difficult_text not in ("0", "1"):
            raise BadFileError(f"{xml_path}: object {index} has <difficult>{difficult_text}</difficult>; "
                               "it must be 0 or 1")
        bndbox = obj.find("bndbox")
        if bndbox is None:
            raise BadFileError(f"{xml_path}: object {index} ({name}) has no <bndbox>; fix or regenerate the "
                               "annotation")
        box = [_coord(bndbox, tag, xml_path, index) for tag in ("xmin", "ymin", "xmax", "ymax")]
        if minus_one:
            box = [v - 1.0 for v in box]
        difficult = difficult_text == "1"
        boxes[difficult].append(box)
        labels[difficult].append(class_index[name])

    def arrays(difficult: bool) -> tuple[np.ndarray, np.ndarray]:
        return (np.array(boxes[difficult], dtype=np.float32).reshape(-1, 4),
                np.array(labels[difficult], dtype=np.int64))

    bboxes, labels_ = arrays(False)
    bboxes_ignore, labels_ignore = arrays(True)
    return {"bboxes": bboxes, "labels": labels_, "bboxes_ignore": bboxes_ignore, "labels_ignore": labels_ignore}


def load_voc_annotations(root: str | Path, split: str, class_names: list[str],
                         minus_one: bool = True) -> list[dict[str, np.ndarray]]:
    """Ground truth of a VOC tree, in the order of ``root/ImageSets/Main/{split}.txt``.

    Each image's ``root/Annotations/<id>.xml`` gives ``{bboxes (G, 4) float32 xyxy, labels (G,) int64,
    bboxes_ignore (Gi, 4), labels_ignore (Gi,)}``, the ``_ignore`` pair holding the objects marked
    ``<difficult>1</difficult>``; labels index ``class_names``. The input of :func:`evaluate_voc`.

    ``minus_one`` subtracts 1 from every bndbox coordinate, turning VOC's 1-based inclusive pixel
    indices into the 0-based ones mmdet's VOC dataset loads (and so trains and predicts in);
    False keeps the file's 1-based values. mmdet also truncates to int; here the values stay float
    (identical for VOC's integer boxes).

    Raises MissingFileError for a missing split file or xml, BadFileError for an xml that does not
    parse, an object of a class not in ``class_names``, or a missing/non-numeric box.
    """
    root = Path(root)
    split_file = root / "ImageSets" / "Main" / f"{split}.txt"
    if not split_file.is_file():
        raise MissingFileError(f"{split_file} does not exist; expected a VOC tree under {root} with a "
                               f"'{split}' image list (one image id per line)")
    ids = [line.split()[0] for line in split_file.read_text().splitlines() if line.strip()]
    class_index = {name: i for i, name in enumerate(class_names)}
    annotations = []
    for image_id in ids:
        xml_path = root / "Annotations" / f"{image_id}.xml"
        if not xml_path.is_file():
            raise MissingFileError(f"{xml_path} does not exist but image '{image_id}' is listed in "
                                   f"{split_file}; add the annotation or remove the id from the list")
        annotations.append(_parse_xml(xml_path, class_index, minus_one))
    return annotations

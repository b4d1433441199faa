"""COCO box metrics through pycocotools, as the numbers the paper's COCO tables report."""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

from ld.errors import BadFileError

# Names of COCOeval.stats[0:9], in order.
COCO_METRICS: tuple[str, ...] = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100")


def load_results(results: str | Path | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of a COCO results file (or the records themselves); a clear error if it is not one."""
    if isinstance(results, list):
        return results
    path = Path(results)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise BadFileError(f"{path} is not a COCO results JSON file ({err}); expected a list of "
                         "{image_id, category_id, bbox, score} records") from err
    if not isinstance(data, list):
        raise BadFileError(f"{path}: a COCO results file is a JSON list of detections, got {type(data).__name__}")
    return data


COCO_BACKENDS = ("pycocotools", "faster_coco_eval")


def _no_detections(gt, coco_class):
    """An empty result set over ``gt``'s images (``loadRes`` refuses an empty list): evaluated like
    any other, so AP is 0 where there is ground truth and -1 where a size range has none."""
    dt = coco_class()
    dt.dataset = {"images": list(gt.dataset["images"]), "categories": list(gt.dataset["categories"]),
                  "annotations": []}
    dt.createIndex()
    return dt


def evaluate_coco(gt_json: str | Path, results: str | Path | list[dict[str, Any]],
                  backend: str = "pycocotools") -> dict[str, float]:
    """COCO bbox metrics of ``results`` (a results file or its records) against ``gt_json``.

    Returns ``{AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100}``, each in [0, 1]. pycocotools marks
    a size range with no ground truth as -1; that is reported as -1, not hidden, with or without
    detections. ``backend``
    'faster_coco_eval' computes the same metrics with faster-coco-eval's C++ COCOeval (the benchmark
    compares the two); the tables use pycocotools, the reference implementation.
    """
    if backend == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    elif backend == "faster_coco_eval":
        from faster_coco_eval import COCO
        from faster_coco_eval import COCOeval_faster as COCOeval
    else:
        raise ValueError(f"unknown COCO evaluation backend {backend!r}: use one of {COCO_BACKENDS}")

    records = load_results(results)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_json))
    unknown = {r["image_id"] for r in records} - set(gt.getImgIds())
    if unknown:
        raise BadFileError(f"detections refer to image ids not in {gt_json}: {sorted(unknown)[:5]}")
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        dt = gt.loadRes(records) if records else _no_detections(gt, COCO)
        ev = COCOeval(gt, dt, iouType="bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {name: round(float(v), 6) for name, v in zip(COCO_METRICS, ev.stats[:9])}

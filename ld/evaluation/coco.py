"""COCO box metrics through pycocotools, as the numbers the paper's COCO tables report."""
from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ld.errors import BadFileError, MissingFileError

# Names of COCOeval.stats[0:9], in order.
COCO_METRICS: tuple[str, ...] = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100")


RECORD_FORMAT = "{image_id: int, category_id: int, bbox: [x, y, width, height], score: number}"


class ResultRecords(list):
    """The records of a COCO results file, a plain list that also knows ``path``, the file they came
    from, so that :func:`evaluate_coco` can name it (pycocotools itself takes exact lists only)."""

    path: Path | None = None

    def __init__(self, records=(), path: str | Path | None = None):
        super().__init__(records)
        self.path = Path(path) if path is not None else None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_real(value: Any) -> bool:
    """A finite JSON number (not a bool)."""
    return type(value) in (int, float) and math.isfinite(value)


def _is_id(value: Any) -> bool:
    """An integer id, as COCO writes them (an integral float such as ``3.0`` compares equal, and is kept)."""
    return type(value) is int or (type(value) is float and value.is_integer())


def _record_problem(record: Any) -> str | None:
    """What is wrong with one results record, or None if it is a detection pycocotools can evaluate."""
    if not isinstance(record, dict):
        return f"is a {type(record).__name__} ({_short(record)}), not an object"
    for field in ("image_id", "category_id", "bbox", "score"):
        if field not in record:
            return f"field '{field}' is missing"
    for field in ("image_id", "category_id"):
        if not _is_id(record[field]):
            return f"field '{field}' is {_short(record[field])}, not an integer id"
    bbox = record["bbox"]
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_real(v) for v in bbox)):
        return f"field 'bbox' is {_short(bbox)}, not [x, y, width, height] (4 finite numbers)"
    if not _is_real(record["score"]):
        return f"field 'score' is {_short(record['score'])}, not a finite number"
    return None


def load_results(results: str | Path | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of a COCO results file (or the records themselves); a clear error if it is not one.

    A file's records are checked one by one: each must be an object with an integer ``image_id`` and
    ``category_id``, a ``bbox`` of 4 finite numbers and a finite ``score``; the first bad record is a
    :class:`BadFileError` naming the file, the record's index and the field. They come back as a
    :class:`ResultRecords` (a list that remembers the file). A list is returned as it is.
    """
    if isinstance(results, list):
        return results
    path = Path(results)
    if not path.is_file():
        raise MissingFileError(f"results file {path} not found: give a COCO results JSON file "
                               f"(a list of {RECORD_FORMAT} records), e.g. one written by `ld eval --results-out`")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BadFileError(f"{path} is not a COCO results JSON file ({err}); expected a list of "
                         "{image_id, category_id, bbox, score} records") from err
    if not isinstance(data, list):
        raise BadFileError(f"{path}: a COCO results file is a JSON list of detections, got {type(data).__name__}")
    for index, record in enumerate(data):
        problem = _record_problem(record)
        if problem is not None:
            raise BadFileError(f"{path}: record {index} (0-based) {problem}. Each record of a COCO results file "
                               f"is {RECORD_FORMAT}: fix or remove that record, or write the file again.")
    return ResultRecords(data, path)


def _first_index(records: list[dict[str, Any]], field: str, bad: set) -> int:
    return next(i for i, r in enumerate(records) if r[field] in bad)


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
                  backend: str = "pycocotools", per_class: bool = False) -> dict[str, Any]:
    """COCO bbox metrics of ``results`` (a results file or its records) against ``gt_json``.

    Returns ``{AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100}``, each in [0, 1]. pycocotools marks
    a size range with no ground truth as -1; that is reported as -1, not hidden, with or without
    detections. ``per_class`` adds ``per_class``: per category (by id, as COCOeval orders them), its AP, AP50 and
    AP75 (all areas, 100 detections; -1 for a class without ground truth), as mmdet's ``classwise``
    computes them from the same evaluation. ``backend``
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
    source = f"{records.path}: " if getattr(records, "path", None) is not None else ""
    for field, known, what in (("image_id", gt.getImgIds(), "image"), ("category_id", gt.getCatIds(), "category")):
        unknown = {r[field] for r in records} - set(known)
        if unknown:
            first = _first_index(records, field, unknown)
            raise BadFileError(
                f"{source}detections refer to {what} ids not in {gt_json}: {sorted(unknown)[:5]} (first: record "
                f"{first} (0-based), field '{field}' = {records[first][field]!r}); evaluate them against the "
                f"annotation file the detector was run on, or drop those records")
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        # pycocotools takes an exact list (ResultRecords is one with its file name); the same records
        dt = gt.loadRes(records if type(records) is list else list(records)) if records else _no_detections(gt, COCO)
        ev = COCOeval(gt, dt, iouType="bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    metrics: dict[str, Any] = {name: round(float(v), 6) for name, v in zip(COCO_METRICS, ev.stats[:9])}
    if per_class:
        metrics["per_class"] = _per_class(ev.eval["precision"], gt.loadCats(ev.params.catIds))
    return metrics


def _per_class(precision: np.ndarray, categories: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """AP, AP50 and AP75 per category from COCOeval's ``precision`` [iou, recall, class, area, max dets]
    (area 'all', 100 detections): the mean over the entries that are not -1, or -1 if all are."""
    def mean(p):
        p = p[p > -1]
        return round(float(p.mean()), 6) if p.size else -1.0

    return [{"class": cat["name"], "AP": mean(precision[:, :, k, 0, -1]), "AP50": mean(precision[0, :, k, 0, -1]),
             "AP75": mean(precision[5, :, k, 0, -1])} for k, cat in enumerate(categories)]

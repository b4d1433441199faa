"""NMS side by side on the same detections: time and COCO AP.

The detections are a trained model's boxes before NMS on the validation split (score > 0.05, top
1000 per level, as in GFocal's test_cfg). Each NMS runs on exactly those boxes:

- ``nms``: mmcv's batched IoU-NMS (C++), what mmdet configs use by default;
- ``voting_cluster_diounms``: this project's score-voting Cluster-DIoU-NMS (pure torch, beta 0.8);
- ``score_voting_cluster_nms``: the same with plain IoU (no centre-distance penalty), i.e. score
  voting on IoU-NMS, to separate the effect of DIoU from that of voting.

    python pipelines/bench/nms.py models/smoke/gfl_r50_2x --out results/bench/nms.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

import ld.models  # noqa: F401  (registers the modules)
from ld.evaluation.coco import evaluate_coco
from ld.io import atomic_write_json
from ld.ops.voting_cluster_diou_nms import NMS_TYPE, voting_cluster_diou_nms


def _pre_nms_detections(run: Path):
    """Per image: (image id, boxes (N, 4) in image coordinates, scores (N,), labels (N,))."""
    from mmengine.runner import Runner

    from ld.models import build_student

    model = build_student(run / "config.py", run / "model.pth")
    cfg = model.cfg
    out = []
    with torch.no_grad():
        for batch in Runner.build_dataloader(cfg.test_dataloader):
            data = model.data_preprocessor(batch, False)
            feats = model.extract_feat(data["inputs"])
            metas = [s.metainfo for s in data["data_samples"]]
            results = model.bbox_head.predict_by_feat(*model.bbox_head(feats), batch_img_metas=metas,
                                                      rescale=True, with_nms=False)
            out += [(m["img_id"], r.bboxes, r.scores, r.labels) for m, r in zip(metas, results)]
    return cfg, out


def _mmcv_nms(boxes, scores, labels, iou_threshold: float, max_num: int):
    from mmcv.ops import batched_nms

    dets, keep = batched_nms(boxes, scores, labels, dict(type="nms", iou_threshold=iou_threshold))
    return dets[:max_num], labels[keep][:max_num]


def _ours(beta: float):
    def run(boxes, scores, labels, iou_threshold: float, max_num: int):
        dets, kept_labels, _ = voting_cluster_diou_nms(boxes, scores, labels, iou_threshold=iou_threshold,
                                                       max_num=max_num, beta=beta)
        return dets, kept_labels
    return run


METHODS = {"nms": _mmcv_nms, NMS_TYPE: _ours(0.8),
           "score_voting_cluster_nms": _ours(float("inf"))}  # (rho^2/c^2)^inf = 0: plain IoU


def compare(run: Path, repeats: int = 5) -> dict:
    """Each NMS of ``METHODS`` on the same pre-NMS detections of ``run``: ms per image (median of
    ``repeats`` passes after a warm-up) and COCO metrics."""
    cfg, detections = _pre_nms_detections(Path(run))
    gt = json.loads(Path(cfg.test_evaluator.ann_file).read_text())
    cat_ids = sorted(c["id"] for c in gt["categories"])
    max_num = cfg.model.test_cfg.max_per_img
    rows = {}
    for name, nms in METHODS.items():
        times, records = [], []
        for repeat in range(repeats + 1):  # the first pass is a warm-up
            start = time.perf_counter()
            outputs = [nms(b, s, lab, 0.6, max_num) for _, b, s, lab in detections]
            if repeat:
                times.append(time.perf_counter() - start)
        for (img_id, *_), (dets, labels) in zip(detections, outputs):
            for (x1, y1, x2, y2, score), label in zip(dets.tolist(), labels.tolist()):
                records.append({"image_id": img_id, "category_id": cat_ids[label], "score": score,
                                "bbox": [x1, y1, x2 - x1, y2 - y1]})
        ms = 1000 * statistics.median(times) / len(detections)
        rows[name] = {"ms_per_image": round(ms, 3), **evaluate_coco(cfg.test_evaluator.ann_file, records)}
        print(f"{name:26s} {ms:7.3f} ms/image  AP {rows[name]['AP']:.4f}", flush=True)
    base = rows["nms"]["ms_per_image"]
    for row in rows.values():
        row["time_vs_nms"] = round(row["ms_per_image"] / base, 2)
    return {"run": str(run), "images": len(detections),
            "boxes_before_nms_per_image": round(sum(len(d[1]) for d in detections) / len(detections), 1),
            "torch_threads": torch.get_num_threads(), "methods": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="an exported model folder (config.py + model.pth)")
    parser.add_argument("--repeats", type=int, default=5, help="timing repeats over all images (median)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    result = compare(Path(args.run), args.repeats)
    if args.out:
        atomic_write_json(args.out, result)


if __name__ == "__main__":
    main()

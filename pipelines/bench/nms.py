"""NMS side by side on the same detections: time and COCO AP.

The detections are a trained model's boxes before NMS on the validation split (score > 0.05, top
1000 per level, as in GFocal's test_cfg). Each NMS runs on exactly those boxes:

- ``nms``: mmcv's batched IoU-NMS (C++), what mmdet configs use by default;
- ``voting_cluster_diounms``: this project's score-voting Cluster-DIoU-NMS (pure torch, beta 0.8);
- ``score_voting_cluster_nms``: the same with plain IoU (no centre-distance penalty), i.e. score
  voting on IoU-NMS, to separate the effect of DIoU from that of voting.

    python pipelines/bench/nms.py models/smoke/gfl_r50_2x --out results/bench/nms.json

``--synthetic`` instead times mmcv's ``batched_nms`` and ours on random detections (boxes in an 800 x 800
image, random scores, 80 classes, labels uniform or skewed: 90 % in 3 classes) at N = 100 ... 10000, one
thread, the median of interleaved repeats; and the peak memory each call adds (the process's resident
set high-water mark above its resident set before the call, one fresh process per measurement, see
``peak_extra_mib``). Writes the JSON and a Markdown table beside it:

    python pipelines/bench/nms.py --synthetic --out results/bench/nms_synthetic.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from ld.io import atomic_write_json, atomic_write_text
from ld.layout import VOTING_NMS
from ld.ops.voting_cluster_diou_nms import voting_cluster_diou_nms


def _pre_nms_detections(run: Path):
    """Per image: (image id, boxes (N, 4) in image coordinates, scores (N,), labels (N,))."""
    from mmengine.runner import Runner

    import ld.models  # noqa: F401  (registers the modules)
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


METHODS = {"nms": _mmcv_nms, VOTING_NMS: _ours(0.8),
           "score_voting_cluster_nms": _ours(float("inf"))}  # (rho^2/c^2)^inf = 0: plain IoU


def compare(run: Path, repeats: int = 5) -> dict:
    """Each NMS of ``METHODS`` on the same pre-NMS detections of ``run``: ms per image (median of
    ``repeats`` passes after a warm-up) and COCO metrics."""
    from ld.evaluation.coco import evaluate_coco

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


# ----------------------------------------------------------------------------------------------------------------
# Synthetic detections: time and memory against N
# ----------------------------------------------------------------------------------------------------------------

SYNTHETIC_SIZES = (100, 1000, 3000, 10000)
SYNTHETIC_LABELS = ("uniform", "skewed")
IMAGE_SIZE = 800
NUM_CLASSES = 80
MAX_PER_IMG = 100  # mmdet's test_cfg.max_per_img, what the pipeline passes as max_num


def synthetic_detections(n: int, labels: str, num_classes: int = NUM_CLASSES, seed: int = 0):
    """``n`` random boxes (sides 8-200 px) inside an ``IMAGE_SIZE`` square image, uniform scores, and labels
    uniform over ``num_classes`` (``labels='uniform'``) or 90 % in classes 0-2 (``'skewed'``)."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + n)
    wh = torch.rand(n, 2, generator=gen) * 192 + 8
    xy = torch.rand(n, 2, generator=gen) * (IMAGE_SIZE - wh)
    boxes = torch.cat([xy, xy + wh], 1)
    scores = torch.rand(n, generator=gen)
    uniform = torch.randint(0, num_classes, (n,), generator=gen)
    if labels == "uniform":
        return boxes, scores, uniform
    if labels != "skewed":
        raise ValueError(f"labels must be one of {SYNTHETIC_LABELS}, got {labels!r}")
    few = torch.randint(0, 3, (n,), generator=gen)
    return boxes, scores, torch.where(torch.rand(n, generator=gen) < 0.9, few, uniform)


def _synthetic_methods() -> dict:
    """name -> fn(boxes, scores, labels): mmcv's batched NMS (what it returns: all kept boxes), ours on all
    kept boxes, and ours with the pipeline's ``max_num``."""
    from mmcv.ops import batched_nms

    return {"nms": lambda b, s, lab: batched_nms(b, s, lab, dict(type="nms", iou_threshold=0.6)),
            VOTING_NMS: lambda b, s, lab: voting_cluster_diou_nms(b, s, lab, iou_threshold=0.6),
            f"{VOTING_NMS}_max{MAX_PER_IMG}": lambda b, s, lab: voting_cluster_diou_nms(
                b, s, lab, iou_threshold=0.6, max_num=MAX_PER_IMG)}


def sync(device: str) -> None:
    """Wait for ``device``'s queued kernels (a GPU's), so a timer around a call times its work."""
    if device != "cpu":
        torch.cuda.synchronize()


def _memory_kib() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process in KiB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def peak_extra_mib(method: str, n: int, labels: str) -> float:
    """Peak memory one call of ``method`` adds, measured in this process (run it in a fresh one): after a
    small warm-up call (lazy initialisation), the resident-set high-water mark is reset (Linux
    ``/proc/self/clear_refs``), then one call on the detections; the result is the high-water mark minus
    the resident set just before the call. Counts every allocation (torch's CPU tensors included, which
    tracemalloc does not see). NaN where the high-water mark cannot be reset."""
    torch.set_num_threads(1)
    fn = _synthetic_methods()[method]
    fn(*synthetic_detections(50, labels, seed=1))
    boxes, scores, labels_ = synthetic_detections(n, labels)
    try:
        Path("/proc/self/clear_refs").write_text("5")
        before, _ = _memory_kib()
    except OSError:
        return float("nan")
    fn(boxes, scores, labels_)
    _, peak = _memory_kib()
    return max(0.0, (peak - before) / 1024)


def _peak_extra_mib_child(method: str, n: int, labels: str) -> float:
    out = subprocess.run([sys.executable, __file__, "--memory-child", method, str(n), labels], check=True,
                         capture_output=True, text=True, env=os.environ | {"OMP_NUM_THREADS": "1"})
    return float(out.stdout.strip().splitlines()[-1])


def synthetic(sizes=SYNTHETIC_SIZES, repeats: int = 11, memory: bool = True, device: str = "cpu") -> dict:
    """mmcv's ``batched_nms`` vs ours on :func:`synthetic_detections`, one thread: ms per call (the median of
    ``repeats`` interleaved rounds after a warm-up round) and, with ``memory``, :func:`peak_extra_mib` (the
    CPU's resident set: ``device`` 'cpu' only). On ``device`` 'cuda' the detections are on the GPU and each
    call is timed between two synchronisations."""
    if memory and device != "cpu":
        raise ValueError("peak memory is measured on the CPU only: memory=False with a GPU")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    methods = _synthetic_methods()
    cases = []
    try:
        for n in sizes:
            for labels in SYNTHETIC_LABELS:
                data = [t.to(device) for t in synthetic_detections(n, labels)]
                times = {name: [] for name in methods}
                for repeat in range(repeats + 1):  # round 0 is a warm-up
                    for name, fn in methods.items():
                        sync(device)
                        start = time.perf_counter()
                        out = fn(*data)
                        sync(device)
                        if repeat:
                            times[name].append(time.perf_counter() - start)
                        if name == "nms":
                            kept_by_nms = len(out[1])
                rows = {name: {"ms": round(1000 * statistics.median(t), 3)} for name, t in times.items()}
                for row in rows.values():
                    row["x_nms"] = round(row["ms"] / rows["nms"]["ms"], 2)
                if memory:
                    for name in methods:
                        rows[name]["peak_extra_mib"] = round(_peak_extra_mib_child(name, n, labels), 1)
                cases.append({"n": n, "labels": labels, "largest_class": int(torch.bincount(data[2]).max()),
                              "kept_by_nms": kept_by_nms, "methods": rows})
                print(f"N={n:6d} {labels:8s} " + "  ".join(
                    f"{name} {row['ms']:9.3f} ms ({row['x_nms']:6.2f}x)"
                    + (f" {row['peak_extra_mib']:7.1f} MiB" if memory else "") for name, row in rows.items()),
                    flush=True)
    finally:
        torch.set_num_threads(threads)
    return {"mode": "synthetic", "image_size": IMAGE_SIZE, "num_classes": NUM_CLASSES,
            "labels": {"uniform": f"uniform over {NUM_CLASSES} classes",
                       "skewed": f"90 % uniform over classes 0-2, 10 % uniform over {NUM_CLASSES}"},
            "boxes": "sides uniform in 8-200 px, inside the image; scores uniform in [0, 1)",
            "iou_threshold": 0.6, "torch_threads": 1, "repeats": repeats,
            "timing": "ms per call: median of the interleaved repeats after a warm-up round, in one process",
            "memory": "peak_extra_mib: resident-set high-water mark (reset through /proc/self/clear_refs) minus "
                      "the resident set before one call, in a fresh process per measurement after a small "
                      "warm-up call" if memory else None,
            "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                        "torch": torch.__version__},
            **({"device": torch.cuda.get_device_name()} if device != "cpu" else {}),
            "methods": {"nms": "mmcv.ops.batched_nms (IoU, all kept boxes)",
                        VOTING_NMS: "ours, all kept boxes (max_num=-1)",
                        f"{VOTING_NMS}_max{MAX_PER_IMG}": f"ours, max_num={MAX_PER_IMG} (the pipeline's max_per_img)"},
            "cases": cases}


def synthetic_summary(result: dict) -> str:
    """The synthetic benchmark as a Markdown table."""
    names = list(result["methods"])
    short = dict(zip(names, ["mmcv nms", "ours", f"ours max_num={MAX_PER_IMG}"]))
    mem = result["memory"] is not None
    lines = ["# NMS on synthetic detections", "",
             f"{result['num_classes']} classes, boxes ({result['boxes']}) in a {result['image_size']} px image; "
             f"labels uniform, or skewed ({result['labels']['skewed']}). One torch thread; "
             f"{result['timing']} ({result['repeats']} repeats)."
             + (f" Memory: {result['memory']}." if mem else ""), "",
             "Methods: " + "; ".join(f"{short[k]} (`{k}`): {v}" for k, v in result["methods"].items()) + ".", "",
             "| N | labels | largest class | " + " | ".join(f"{short[k]} ms" for k in names)
             + " | " + " | ".join(f"{short[k]} x mmcv" for k in names[1:])
             + (" | " + " | ".join(f"{short[k]} peak MiB" for k in names) if mem else "") + " |",
             "|---" * (3 + 2 * len(names) - 1 + (len(names) if mem else 0)) + "|"]
    for case in result["cases"]:
        rows = case["methods"]
        lines.append(f"| {case['n']} | {case['labels']} | {case['largest_class']} | "
                     + " | ".join(f"{rows[k]['ms']:.2f}" for k in names) + " | "
                     + " | ".join(f"{rows[k]['x_nms']:.2f}" for k in names[1:])
                     + (" | " + " | ".join(f"{rows[k]['peak_extra_mib']:.1f}" for k in names) if mem else "")
                     + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", help="an exported model folder (config.py + model.pth)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timing repeats (median): over all images (default 5), or synthetic rounds (11)")
    parser.add_argument("--out", default=None, help="JSON to write (--synthetic: and a .md beside it)")
    parser.add_argument("--synthetic", action="store_true",
                        help="mmcv's batched_nms vs ours on random detections at N = 100 ... 10000 instead")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SYNTHETIC_SIZES), help="--synthetic: N")
    parser.add_argument("--no-memory", action="store_true", help="--synthetic: times only")
    parser.add_argument("--memory-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:  # one memory measurement in a process of its own
        method, n, labels = args.memory_child
        print(peak_extra_mib(method, int(n), labels))
        return
    if args.synthetic:
        result = synthetic(args.sizes, args.repeats or 11, memory=not args.no_memory)
        if args.out:
            atomic_write_json(args.out, result)
            atomic_write_text(Path(args.out).with_suffix(".md"), synthetic_summary(result))
        print(synthetic_summary(result))
        return
    if args.run is None:
        parser.error("a model folder is required (or --synthetic)")
    result = compare(Path(args.run), args.repeats or 5)
    if args.out:
        atomic_write_json(args.out, result)


if __name__ == "__main__":
    main()

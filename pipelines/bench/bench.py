"""The benchmark: LD's training cost and its zero inference cost, side by side in one run.

- training step (forward, losses, backward, SGD step) of the baseline student, mmdet 3.3.0's own LD
  (``KnowledgeDistillationSingleStageDetector`` + ``LDHead``, main LD), this project's main LD, its
  paper recipe (main LD + VLR LD), and both with the teacher soft-target cache (offline LD, steady
  state: every image cached): same inputs, same threads, warm-up excluded, median of repeated steps,
  each in a process of its own so that its peak memory (max RSS) is its own;
- inference FPS of the baseline and the LD student (the student alone: equal within noise);
- NMS on the same detections (``pipelines/bench/nms.py``): mmcv's NMS, score-voting NMS and
  voting Cluster-DIoU-NMS;
- COCO evaluation of the same results: pycocotools vs faster-coco-eval.

The teachers have their initial weights (time does not depend on what they learnt); FPS, NMS and
evaluation use the profile's trained models. Writes ``results/bench/bench_<profile>.json`` and a
Markdown summary ``results/bench/bench_<profile>.md``. Run from the repository root (or
``dvc repro pipelines/bench/dvc.yaml``):

    python pipelines/bench/bench.py --profile smoke
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

STEP_VARIANTS = {  # name -> (row config, how)
    "baseline": ("gfl_r18_1x", "plain"),
    "mmdet_ld": ("ld_r18_gfl_r50_1x", "mmdet"),
    "ld": ("ld_r18_gfl_r50_1x", "online"),
    "ld_vlr": ("ld_vlr_r18_gfl_r50_1x", "online"),
    "ld_offline": ("ld_r18_gfl_r50_1x", "offline"),
    "ld_vlr_offline": ("ld_vlr_r18_gfl_r50_1x", "offline"),
}


def mmdet_ld_model_config(cfg, teacher_dir: Path):
    """mmdet's own LD of the same student and teacher: its KD detector with its ``LDHead`` (main LD,
    loss weight and T from our row)."""
    from ld.models.distiller import student_only

    model = copy.deepcopy(student_only(cfg).model)
    term = cfg.model.bbox_head.ld_main
    model.type = "KnowledgeDistillationSingleStageDetector"
    model.teacher_config = str(teacher_dir / "config.py")
    model.teacher_ckpt = str(teacher_dir / "model.pth")
    model.bbox_head.type = "LDHead"
    model.bbox_head.loss_ld = dict(type="KnowledgeDistillationKLDivLoss", loss_weight=term.loss_weight, T=term.T)
    return model


def _batch(model, batch_size: int, size: int):
    from mmdet.testing import demo_mm_inputs

    torch.manual_seed(1)
    data = demo_mm_inputs(batch_size=batch_size, image_shapes=[(3, size, size)] * batch_size,
                          num_items=[4] * batch_size, num_classes=3, use_box_type=False)
    for i, sample in enumerate(data["data_samples"]):
        sample.set_metainfo({"img_id": i, "flip": False, "flip_direction": None})
    return model.data_preprocessor(data, True)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(model, data, steps: int, warmup: int = 2) -> list[float]:
    """Seconds per training step (forward, losses, backward, SGD step) after ``warmup`` steps."""
    optim = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train()
    device = next(model.parameters()).device
    times = []
    for i in range(warmup + steps):
        _sync(device)
        start = time.perf_counter()
        losses = model(**data, mode="loss")
        total = sum(v.sum() if isinstance(v, torch.Tensor) else sum(v) for v in losses.values())
        optim.zero_grad()
        total.backward()
        optim.step()
        _sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def step_child(variant: str, profile_name: str, steps: int, device: str = "cpu") -> dict:
    """One variant's step time, in this process (run by the parent as a child)."""
    from mmdet.registry import MODELS

    import ld.models  # noqa: F401  (registers the modules)
    from ld.engine.train import build_train_config, export_initial
    from ld.profiles import get_profile, load_params

    params = load_params()
    profile = get_profile(params, profile_name)
    row, how = STEP_VARIANTS[variant]
    params["ld"] = {**(params.get("ld") or {}), "teacher_cache": how == "offline"}
    with tempfile.TemporaryDirectory() as tmp:
        spec = params["distill"].get(row)
        teacher = (export_initial(f"pipelines/configs/{spec['teacher']}.py", params, Path(tmp) / spec["teacher"],
                                  profile_name) if spec else None)
        cfg = build_train_config(f"pipelines/configs/{row}.py", params, profile=profile_name, teacher_dir=teacher,
                                 work_root=Path(tmp) / "work")
        model_cfg = mmdet_ld_model_config(cfg, teacher) if how == "mmdet" else cfg.model
        torch.manual_seed(0)
        model = MODELS.build(model_cfg).to(device)
        data = _batch(model, profile["batch_size"], profile["data"]["image_size"])
        times = time_steps(model, data, steps)  # offline: the warm-up steps fill the cache
        cache = getattr(model, "cache", None)
        median = statistics.median(times)
        peak_gpu = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None
        return {"row": row, "ld": how, "median_s": median, "images_per_s": profile["batch_size"] / median,
                "peak_gpu_mib": peak_gpu,
                "cache": None if cache is None else cache.stats() | {
                    "bytes_per_image": cache.stats()["bytes"] / max(1, cache.stats()["files"])}}


def _child(args: list[str]) -> dict:
    """Run this script with ``args`` in a fresh process; its JSON result plus its peak RSS."""
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def eval_child(models: str, profile_name: str, repeats: int) -> dict:
    """pycocotools vs faster-coco-eval on the LD student's detections of the validation split."""
    from mmengine.config import Config

    import ld.models  # noqa: F401  (registers the modules)
    from ld.engine.evaluate import predict_coco
    from ld.evaluation.coco import COCO_BACKENDS, evaluate_coco

    run = Path(models)
    cfg = Config.fromfile(str(run / "config.py"))
    with tempfile.TemporaryDirectory() as tmp:
        results = json.loads(predict_coco(cfg, run / "model.pth", Path(tmp) / "det").read_text())
    ann = cfg.test_evaluator.ann_file
    rows = {}
    for backend in COCO_BACKENDS:
        times = []
        for _ in range(repeats + 1):
            start = time.perf_counter()
            metrics = evaluate_coco(ann, results, backend=backend)
            times.append(time.perf_counter() - start)
        rows[backend] = {"median_s": statistics.median(times[1:]), "AP": metrics["AP"], "AP50": metrics["AP50"]}
    return {"detections": len(results), "backends": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per variant (median)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all variants (median of medians)")
    parser.add_argument("--repeats", type=int, default=5, help="timing repeats of NMS and evaluation (median)")
    parser.add_argument("--fps-images", type=int, default=48)
    parser.add_argument("--out", default=None, help="JSON to write (default: results/bench/bench_<profile>.json)")
    parser.add_argument("--device", default="cpu", help="device of the training steps ('cuda' on a GPU)")
    parser.add_argument("--steps-only", action="store_true", help="the training steps alone (no FPS/NMS/eval)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # a measurement in a process of its own
        kind, *rest = args.child
        result = step_child(rest[0], args.profile, args.steps, args.device) if kind == "step" else \
            eval_child(rest[0], args.profile, args.repeats)
        print(json.dumps(result | {"peak_rss_mib": round(_peak_rss_mib(), 1)}))
        return

    sys.path.insert(0, str(Path(__file__).parent))
    import nms as nms_bench

    from ld.engine.fps import benchmark_fps
    from ld.io import atomic_write_json, atomic_write_text
    from ld.profiles import get_profile, load_params

    params = load_params()
    profile = get_profile(params, args.profile)
    models = Path("models") / args.profile
    result = {"machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                          "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                          "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"},
              "profile": args.profile, "batch_size": profile["batch_size"],
              "image_size": profile["data"]["image_size"], "steps": args.steps, "rounds": args.rounds}

    step = {}
    for round_ in range(args.rounds):  # the variants interleaved, so a slow moment hits them alike
        for variant in STEP_VARIANTS:
            row = _child(["--profile", args.profile, "--steps", str(args.steps), "--device", args.device,
                          "--child", "step", variant])
            print(f"step  round {round_}  {variant:16s} {1000 * row['median_s']:8.1f} ms  "
                  f"peak {row['peak_rss_mib']:.0f} MiB", flush=True)
            step.setdefault(variant, row).setdefault("round_medians_s", []).append(row["median_s"])
    for row in step.values():  # the median over rounds of each round's median step
        row["median_s"] = statistics.median(row["round_medians_s"])
        row["images_per_s"] = result["batch_size"] / row["median_s"]
    for row in step.values():
        row["ratio_to_baseline"] = round(row["median_s"] / step["baseline"]["median_s"], 3)
    result["train_step"] = step
    if args.steps_only:
        result["machine"]["device"] = args.device if args.device == "cpu" else torch.cuda.get_device_name()
        out = Path(args.out or f"results/bench/bench_{args.profile}_steps_{args.device}.json")
        atomic_write_json(out, result)
        print(step_summary(result))
        return

    student, baseline = params["analysis"]["student"], params["analysis"]["baseline"]
    result["fps"] = {run: benchmark_fps(models / run / "config.py", models / run / "model.pth",
                                        num_images=args.fps_images) for run in (baseline, student)}
    result["fps"]["ratio_ld_to_baseline"] = round(
        result["fps"][student]["model_fps"] / result["fps"][baseline]["model_fps"], 3)
    print(f"fps   {baseline}: {result['fps'][baseline]['model_fps']}, {student}: {result['fps'][student]['model_fps']}")

    result["nms"] = nms_bench.compare(models / student, repeats=args.repeats)
    result["eval"] = _child(["--profile", args.profile, "--repeats", str(args.repeats), "--child", "eval",
                             str(models / student)])
    out = Path(args.out or f"results/bench/bench_{args.profile}.json")
    atomic_write_json(out, result)
    atomic_write_text(out.with_suffix(".md"), summary(result))
    print(summary(result))


def step_summary(result: dict) -> str:
    """The machine and the training-step table, in Markdown."""
    m = result["machine"]
    gpu = any(row.get("peak_gpu_mib") for row in result["train_step"].values())
    lines = [f"# Benchmark, profile `{result['profile']}`", "",
             f"Machine: {m['cores']} cores ({m['cpu']}), torch {m['torch']} with {m['torch_threads']} threads, "
             f"device {m['device']}. Batch {result['batch_size']} images of {result['image_size']} px; "
             f"per variant, the median over {result['rounds']} interleaved rounds (each a fresh process) of the "
             f"median of {result['steps']} steps after 2 warm-up steps.", "",
             "## Training step", "", "| variant | row | LD | ms/step | images/s | x baseline | peak RSS (MiB) |"
             + (" peak GPU memory (MiB) |" if gpu else ""), "|---|---|---|---|---|---|---|" + ("---|" if gpu else "")]
    for name, row in result["train_step"].items():
        lines.append(f"| {name} | {row['row']} | {row['ld']} | {1000 * row['median_s']:.1f} | "
                     f"{row['images_per_s']:.1f} | {row['ratio_to_baseline']:.2f} | {row['peak_rss_mib']:.0f} |"
                     + (f" {row['peak_gpu_mib']:.0f} |" if gpu else ""))
    cached = {name: r["cache"] for name, r in result["train_step"].items() if r.get("cache")}
    if cached:
        lines += ["", "Offline LD stores, per image and flip, the float16 teacher box logits at the locations "
                  "its losses read: " + ", ".join(f"{c['bytes_per_image'] / 1024:.1f} KiB ({name})"
                                                 for name, c in cached.items()) + "."]
    return "\n".join(lines) + "\n"


def summary(result: dict) -> str:
    """The whole benchmark as Markdown tables with ratios."""
    lines = [step_summary(result).rstrip("\n")]
    fps = result["fps"]
    lines += ["", "## Inference (the student alone)", "", "| run | model FPS | end-to-end FPS |", "|---|---|---|"]
    lines += [f"| {run} | {row['model_fps']} | {row['end_to_end_fps']} |" for run, row in fps.items()
              if isinstance(row, dict)]
    lines += ["", f"LD student / baseline model FPS: {fps['ratio_ld_to_baseline']:.3f}", "",
              "## NMS on the same detections", "", "| NMS | ms/image | x nms | AP |", "|---|---|---|---|"]
    lines += [f"| {name} | {row['ms_per_image']} | {row['time_vs_nms']} | {row['AP']:.4f} |"
              for name, row in result["nms"]["methods"].items()]
    ev = result["eval"]
    lines += ["", f"## COCO evaluation of the same {ev['detections']} detections", "",
              "| backend | seconds | AP | AP50 | peak RSS (MiB, both in one process) |", "|---|---|---|---|---|"]
    lines += [f"| {name} | {row['median_s']:.3f} | {row['AP']:.4f} | {row['AP50']:.4f} | {ev['peak_rss_mib']:.0f} |"
              for name, row in ev["backends"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

"""The benchmark: LD's training cost and its zero inference cost, side by side in one run.

- training step (forward, losses, backward, SGD step) of the baseline student, mmdet 3.3.0's own LD
  (``KnowledgeDistillationSingleStageDetector`` + ``LDHead``, main LD), this project's main LD, its
  paper recipe (main LD + VLR LD) with the teacher as it runs by default (``ld.teacher_precision:
  auto``) and in float32, and both with the teacher soft-target cache (offline LD, steady state: every
  image cached): same inputs, same threads, warm-up excluded, median of repeated steps, each in a
  process of its own so that its peak memory (max RSS) is its own; at the profile's shape and at a
  COCO-like one (``SHAPES``: COCO's 256-channel, 4-conv head and 80 classes, the paper's R-101 teacher
  and R-18 student, 320 px on a CPU; ``--shape coco --device cuda`` times COCO's 1333x800 on a GPU);
- the teacher's forward pass alone, lever by lever (class tower skipped, bfloat16, BN folded);
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
import math
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

# name -> (row config, how: plain / mmdet / online / offline, settings: `vlr` switches the row's VLR term
# on, `teacher_precision` overrides params.yaml's ld.teacher_precision); the teacher is the row's `teacher`
STEP_VARIANTS = {  # the profile's shape (smoke: its widths, data size and batch)
    "baseline": ("gfl_r18_1x", "plain", {}),
    "mmdet_ld": ("ld_r18_gfl_r50_1x", "mmdet", {}),
    "ld": ("ld_r18_gfl_r50_1x", "online", {}),
    "ld_vlr": ("ld_vlr_r18_gfl_r50_1x", "online", {}),
    "ld_vlr_fp32": ("ld_vlr_r18_gfl_r50_1x", "online", {"teacher_precision": "fp32"}),
    "ld_offline": ("ld_r18_gfl_r50_1x", "offline", {}),
    "ld_vlr_offline": ("ld_vlr_r18_gfl_r50_1x", "offline", {}),
}
COCO_STEP_VARIANTS = {  # COCO's widths: the paper's R-101 teacher and R-18 student (no VLR row of theirs)
    "baseline": ("gfl_r18_1x", "plain", {}),
    "mmdet_ld": ("ld_r18_gfl_r101_1x", "mmdet", {}),
    "ld": ("ld_r18_gfl_r101_1x", "online", {}),
    "ld_vlr": ("ld_r18_gfl_r101_1x", "online", {"vlr": True}),
    "ld_vlr_fp32": ("ld_r18_gfl_r101_1x", "online", {"vlr": True, "teacher_precision": "fp32"}),
}
# at COCO's 1333x800 (a GPU), offline LD too: the teacher's outputs read from the cache its warm-up steps fill
COCO_OFFLINE_STEP_VARIANTS = {"ld_offline": ("ld_r18_gfl_r101_1x", "offline", {}),
                              "ld_vlr_offline": ("ld_r18_gfl_r101_1x", "offline", {"vlr": True})}
# shape -> (profile, image size (h, w), images per step, variants); None: the --profile's own
SHAPES = {
    "profile": (None, None, None, STEP_VARIANTS),
    "coco_like": ("coco", (320, 320), 2, COCO_STEP_VARIANTS),  # a CPU's share of COCO
    "coco": ("coco", (800, 1333), 2, {**COCO_STEP_VARIANTS, **COCO_OFFLINE_STEP_VARIANTS}),  # COCO's 1333x800
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


def shape_params(shape: str, profile_name: str) -> tuple[dict, str, tuple[int, int], int]:
    """``(params, profile, (h, w), images per step)`` of a shape: params.yaml with the shape's profile set
    to its size and batch, ImageNet weights off (time does not depend on them)."""
    from ld.profiles import get_profile, load_params

    params = load_params()
    profile_name, size, batch, _ = SHAPES[shape][0] or profile_name, *SHAPES[shape][1:]
    profile = get_profile(params, profile_name)
    if size is None:
        size = (profile["data"]["image_size"],) * 2
    profile.update(batch_size=batch or profile["batch_size"], pretrained=False)
    profile["data"] = {**profile["data"], "image_size": [max(size), min(size)]}
    return params, profile_name, size, profile["batch_size"]


def _batch(model, batch_size: int, size: tuple[int, int]):
    from mmdet.testing import demo_mm_inputs

    torch.manual_seed(1)
    data = demo_mm_inputs(batch_size=batch_size, image_shapes=[(3, *size)] * batch_size,
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


def _teacher_of(row: str, params: dict, profile_name: str, tmp: Path) -> Path | None:
    """The row config's `teacher` exported with its initial weights into ``tmp`` (None: no teacher)."""
    from mmengine.config import Config

    from ld.engine.train import export_initial

    teacher = Config.fromfile(f"pipelines/configs/{row}.py", import_custom_modules=False).get("teacher")
    return export_initial(f"pipelines/configs/{teacher}.py", params, tmp / teacher, profile_name) if teacher else None


def step_child(variant: str, shape: str, profile_name: str, steps: int, device: str = "cpu") -> dict:
    """One variant's step time, in this process (run by the parent as a child)."""
    from mmdet.registry import MODELS

    import ld.models  # noqa: F401  (registers the modules)
    from ld.engine.train import build_train_config
    from ld.models.distiller import teacher_dtype

    params, profile_name, size, batch = shape_params(shape, profile_name)
    row, how, settings = SHAPES[shape][3][variant]
    params["ld"] = {**(params.get("ld") or {}), "teacher_cache": how == "offline",
                    **({"teacher_precision": settings["teacher_precision"]} if "teacher_precision" in settings else {})}
    with tempfile.TemporaryDirectory() as tmp:
        teacher = _teacher_of(row, params, profile_name, Path(tmp))
        cfg = build_train_config(f"pipelines/configs/{row}.py", params, profile=profile_name, teacher_dir=teacher,
                                 work_root=Path(tmp) / "work")
        if settings.get("vlr"):
            cfg.model.bbox_head.ld_vlr.enabled = True
        model_cfg = mmdet_ld_model_config(cfg, teacher) if how == "mmdet" else cfg.model
        torch.manual_seed(0)
        model = MODELS.build(model_cfg).to(device)
        data = _batch(model, batch, size)
        times = time_steps(model, data, steps)  # offline: the warm-up steps fill the cache
        cache = getattr(model, "cache", None)
        median = statistics.median(times)
        peak_gpu = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None
        dtype = (teacher_dtype(cfg.model.teacher_precision, device) or torch.float32 if how in ("online", "offline")
                 else torch.float32 if how == "mmdet" else None)
        return {"row": row, "ld": how, **settings, "teacher_dtype": None if dtype is None else str(dtype)[6:],
                "median_s": median, "images_per_s": batch / median,
                "peak_gpu_mib": peak_gpu,
                "cache": None if cache is None else cache.stats() | {
                    "bytes_per_image": cache.stats()["bytes"] / max(1, cache.stats()["files"])}}


def teacher_child(shape: str, profile_name: str, repeats: int, device: str = "cpu") -> dict:
    """The LD row's teacher alone, lever by lever: ms per forward pass of one batch (median of ``repeats``
    after a warm-up, over 3 interleaved rounds), and how far each one's box logits are from float32's
    (max |difference|; the soft targets' KL at T=10, the LD loss per edge without its weight).

    At the profile's shape the teacher has the profile's trained weights where ``models/<profile>/<teacher>``
    has them (the differences are then a trained teacher's), its initial weights otherwise.
    """
    from mmcv.cnn import fuse_conv_bn

    import ld.models  # noqa: F401  (registers the modules)
    from ld.models.distiller import build_teacher, teacher_dtype, teacher_forward
    from ld.ops.ld_loss import ld_loss

    params, profile_name, size, batch = shape_params(shape, profile_name)
    row = SHAPES[shape][3]["ld"][0]
    with tempfile.TemporaryDirectory() as tmp:
        exported = _teacher_of(row, params, profile_name, Path(tmp))
        trained = Path("models") / profile_name / exported.name / "model.pth"
        weights = trained if shape == "profile" and trained.is_file() else None
        teacher = build_teacher(exported / "config.py", weights).to(device)
    folded = fuse_conv_bn(copy.deepcopy(teacher))
    low = teacher_dtype("auto", device) or torch.bfloat16
    cases = {  # name -> (teacher, class tower, autocast dtype)
        "fp32": (teacher, True, None),  # mmdet's LD (and ours before)
        "fp32_box_tower": (teacher, False, None),
        "low": (teacher, True, low),  # ours with KD
        "low_box_tower": (teacher, False, low),  # ours without KD (the paper's LD and VLR rows)
        "low_box_tower_bn_folded": (folded, False, low),  # not taken: float32 differs too
    }
    inputs = torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(0)).to(device)
    reference = teacher_forward(teacher, inputs, False)[1].reshape(-1, teacher.bbox_head.reg_max + 1)
    times: dict[str, list[float]] = {}
    rows = {}
    for round_ in range(3):
        for name, (model, with_cls, dtype) in cases.items():
            reg = teacher_forward(model, inputs, with_cls, dtype)[1].reshape(reference.shape)  # the warm-up
            if round_ == 0:
                kl = ld_loss(reg.double(), reference.double(), T=10.0)  # float64: no rounding noise of its own
                rows[name] = {"dtype": str(dtype or torch.float32)[6:], "class_tower": with_cls,
                              "max_abs_diff": (reg - reference).abs().max().item(),
                              "kl_T10_mean": kl.mean().item(), "kl_T10_max": kl.max().item()}
            runs = []
            for _ in range(repeats):
                _sync(inputs.device)
                start = time.perf_counter()
                teacher_forward(model, inputs, with_cls, dtype)
                _sync(inputs.device)
                runs.append(time.perf_counter() - start)
            times.setdefault(name, []).append(statistics.median(runs))
    for name, row in rows.items():
        row["ms"] = round(1000 * statistics.median(times[name]), 2)
        row["x_fp32"] = round(statistics.median(times[name]) / statistics.median(times["fp32"]), 3)
    return {"teacher": exported.name, "weights": str(weights) if weights else "initial", "cases": rows}


def log_child(profile_name: str) -> dict:
    """What a logged iteration costs: the profile's baseline trained for one epoch with a log line every
    iteration (mmengine's log and the DVCLive curves, both LoggerHook's), its ``after_train_iter`` timed apart
    from the whole iteration; the smallest log interval at which the lines cost under 1% of the iteration."""
    from mmengine.hooks import LoggerHook
    from mmengine.runner.loops import EpochBasedTrainLoop

    import ld.models  # noqa: F401  (registers the modules)
    from ld.engine.train import build_train_config, train

    params, profile_name, _, _ = shape_params("profile", profile_name)
    params["profiles"][profile_name]["log_interval"] = 1
    spent: dict[str, list[float]] = {}

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            out = fn(*args, **kwargs)
            spent.setdefault(name, []).append(time.perf_counter() - start)
            return out
        return wrapper

    # LoggerHook's after_train_iter writes the log line and, through the visualizer, the DVCLive curves
    patched = [(LoggerHook, "after_train_iter"), (EpochBasedTrainLoop, "run_iter")]
    originals = [getattr(cls, name) for cls, name in patched]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = build_train_config("pipelines/configs/gfl_r18_1x.py", params, profile=profile_name,
                                 work_root=Path(tmp) / "work", live_dir=Path(tmp) / "live")
        cfg.train_cfg.max_epochs = 1
        for (cls, name), fn in zip(patched, originals):
            setattr(cls, name, timed(cls.__name__, fn))
        try:
            train(cfg, None)
        finally:
            for (cls, name), fn in zip(patched, originals):
                setattr(cls, name, fn)
    iteration_ms = 1000 * statistics.median(spent.pop("EpochBasedTrainLoop"))
    per_line = {name: 1000 * statistics.median(times) for name, times in spent.items()}
    line_ms = sum(per_line.values())
    step_ms = iteration_ms - line_ms
    return {"iterations": len(spent["LoggerHook"]), "ms_per_line": {k: round(v, 2) for k, v in per_line.items()},
            "line_ms": round(line_ms, 2), "step_ms": round(step_ms, 1),
            "share_at_interval": {str(i): round(line_ms / (i * step_ms), 4) for i in (1, 5, 10, 50)},
            "interval_for_1pct": max(1, math.ceil(line_ms / (0.01 * step_ms)))}


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


def time_shape(args, shape: str) -> dict:
    """The training steps of a shape's variants (interleaved rounds, a fresh process each) and its
    teacher's levers."""
    _, profile_name, size, batch = shape_params(shape, args.profile)
    result = {"profile": profile_name, "image_size": list(size), "batch_size": batch, "steps": args.steps,
              "rounds": args.rounds}
    common = ["--profile", args.profile, "--steps", str(args.steps), "--repeats", str(args.repeats),
              "--device", args.device, "--child"]
    step = {}
    for round_ in range(args.rounds):  # the variants interleaved, so a slow moment hits them alike
        for variant in SHAPES[shape][3]:
            row = _child([*common, "step", shape, variant])
            print(f"step  {shape}  round {round_}  {variant:16s} {1000 * row['median_s']:8.1f} ms  "
                  f"peak {row['peak_rss_mib']:.0f} MiB", flush=True)
            step.setdefault(variant, row).setdefault("round_medians_s", []).append(row["median_s"])
    for row in step.values():  # the median over rounds of each round's median step
        row["median_s"] = statistics.median(row["round_medians_s"])
        row["images_per_s"] = batch / row["median_s"]
        row["ratio_to_baseline"] = round(row["median_s"] / step["baseline"]["median_s"], 3)
    result["train_step"] = step
    result["teacher"] = _child([*common, "teacher", shape])
    print(f"teacher  {shape}  " + ", ".join(f"{name} {row['ms']:.1f} ms"
                                             for name, row in result["teacher"]["cases"].items()), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--shapes", nargs="+", default=["profile", "coco_like"], choices=SHAPES,
                        help="the shapes of the training steps: the profile's own, COCO-like (320 px), COCO's")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per variant (median)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all variants (median of medians)")
    parser.add_argument("--repeats", type=int, default=5, help="timing repeats of NMS, evaluation, teacher (median)")
    parser.add_argument("--fps-images", type=int, default=48)
    parser.add_argument("--out", default=None, help="JSON to write (default: results/bench/bench_<profile>.json)")
    parser.add_argument("--device", default="cpu", help="device of the training steps ('cuda' on a GPU)")
    parser.add_argument("--steps-only", action="store_true", help="the training steps alone (no FPS/NMS/eval)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # a measurement in a process of its own
        kind, *rest = args.child
        if kind == "step":
            result = step_child(rest[1], rest[0], args.profile, args.steps, args.device)
        elif kind == "teacher":
            result = teacher_child(rest[0], args.profile, args.repeats, args.device)
        elif kind == "log":
            result = log_child(args.profile)
        else:
            result = eval_child(rest[0], args.profile, args.repeats)
        print(json.dumps(result | {"peak_rss_mib": round(_peak_rss_mib(), 1)}))
        return

    sys.path.insert(0, str(Path(__file__).parent))
    import nms as nms_bench

    from ld.engine.fps import benchmark_fps
    from ld.io import atomic_write_json, atomic_write_text
    from ld.profiles import load_params

    params = load_params()
    models = Path("models") / args.profile
    result = {"machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                          "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                          "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu"},
              "profile": args.profile, "shapes": {shape: time_shape(args, shape) for shape in args.shapes}}
    if args.steps_only:
        out = Path(args.out or f"results/bench/bench_{args.profile}_steps_{args.device}.json")
        atomic_write_json(out, result)
        atomic_write_text(out.with_suffix(".md"), step_summary(result))
        print(step_summary(result))
        return

    result["log"] = _child(["--profile", args.profile, "--child", "log"])
    print(f"log   a line {result['log']['line_ms']} ms, a step {result['log']['step_ms']} ms", flush=True)
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


SHAPE_TITLES = {"profile": "the profile's shape", "coco_like": "COCO-like (COCO's head and classes, R-101 teacher)",
                "coco": "COCO (1333x800, R-101 teacher)"}


def step_summary(result: dict) -> str:
    """The machine, and per shape the training-step table and the teacher's levers, in Markdown."""
    m = result["machine"]
    lines = [f"# Benchmark, profile `{result['profile']}`", "",
             f"Machine: {m['cores']} cores ({m['cpu']}), torch {m['torch']} with {m['torch_threads']} threads, "
             f"device {m['device']}. Per variant, the median over interleaved rounds (each a fresh process) of "
             "the median step after 2 warm-up steps; the teachers of the steps have their initial weights."]
    for shape, res in result["shapes"].items():
        gpu = any(row.get("peak_gpu_mib") for row in res["train_step"].values())
        h, w = res["image_size"]
        lines += ["", f"## Training step, {SHAPE_TITLES[shape]}: profile `{res['profile']}`, batch "
                  f"{res['batch_size']} images of {w}x{h} px, {res['rounds']} rounds of {res['steps']} steps", "",
                  "| variant | row | LD | teacher | ms/step | images/s | x baseline | peak RSS (MiB) |"
                  + (" peak GPU memory (MiB) |" if gpu else ""),
                  "|---|---|---|---|---|---|---|---|" + ("---|" if gpu else "")]
        for name, row in res["train_step"].items():
            how = row["ld"] + (" + VLR" if row.get("vlr") else "")
            lines.append(f"| {name} | {row['row']} | {how} | {row['teacher_dtype'] or ''} | "
                         f"{1000 * row['median_s']:.1f} | {row['images_per_s']:.1f} | "
                         f"{row['ratio_to_baseline']:.2f} | {row['peak_rss_mib']:.0f} |"
                         + (f" {row['peak_gpu_mib']:.0f} |" if gpu else ""))
        cached = {name: r["cache"] for name, r in res["train_step"].items() if r.get("cache")}
        if cached:
            lines += ["", "Offline LD stores, per image and flip, the float16 teacher box logits at the locations "
                      "its losses read: " + ", ".join(f"{c['bytes_per_image'] / 1024:.1f} KiB ({name})"
                                                     for name, c in cached.items()) + "."]
        t = res["teacher"]
        lines += ["", f"Its teacher alone (`{t['teacher']}`, weights: {t['weights']}), one batch, lever by lever; "
                  "the box logits against float32's (the soft targets' KL at T=10 per edge):", "",
                  "| teacher forward | dtype | class tower | ms | x fp32 | max abs diff | KL mean | KL max |",
                  "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {name} | {row['dtype']} | {'yes' if row['class_tower'] else 'no'} | {row['ms']:.1f} | "
                  f"{row['x_fp32']:.2f} | {row['max_abs_diff']:.2g} | {row['kl_T10_mean']:.2g} | "
                  f"{row['kl_T10_max']:.2g} |"
                  for name, row in t["cases"].items()]
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
    log = result["log"]
    lines += ["", "## Logging", "", f"A logged iteration of the baseline (mmengine's log and the DVCLive curves, "
              f"median of {log['iterations']} iterations logged each): "
              + ", ".join(f"{name} {ms} ms" for name, ms in log["ms_per_line"].items())
              + f", {log['line_ms']} ms a line against {log['step_ms']} ms a step: "
              + ", ".join(f"{100 * share:.2f}% at interval {i}" for i, share in log["share_at_interval"].items())
              + f"; under 1% from interval {log['interval_for_1pct']}."]
    ev = result["eval"]
    lines += ["", f"## COCO evaluation of the same {ev['detections']} detections", "",
              "| backend | seconds | AP | AP50 | peak RSS (MiB, both in one process) |", "|---|---|---|---|---|"]
    lines += [f"| {name} | {row['median_s']:.3f} | {row['AP']:.4f} | {row['AP50']:.4f} | {ev['peak_rss_mib']:.0f} |"
              for name, row in ev["backends"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

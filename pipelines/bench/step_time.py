"""Training-step time of every distillation method against the baseline student, side by side.

Same inputs, same threads, warm-up excluded, median of repeated steps; the teachers have their
initial weights (``export_initial``: time does not depend on what they learnt). Run from the repository root:

    python pipelines/bench/step_time.py --profile smoke --steps 10 --out results/bench/step_time.json
"""
from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

import ld  # noqa: F401  (registers the modules)
from ld.engine.train import build_train_config, export_initial
from ld.io import atomic_write_json
from ld.profiles import get_profile, load_params


def _model(cfg):
    from mmdet.registry import MODELS

    torch.manual_seed(0)
    return MODELS.build(cfg.model)


def _batch(model, batch_size: int, size: int):
    from mmdet.testing import demo_mm_inputs

    torch.manual_seed(1)
    data = demo_mm_inputs(batch_size=batch_size, image_shapes=[(3, size, size)] * batch_size,
                          num_items=[4] * batch_size, num_classes=3, use_box_type=False)
    return model.data_preprocessor(data, True)


def time_steps(model, data, steps: int, warmup: int = 2) -> list[float]:
    """Seconds per training step (forward, losses, backward, SGD step) after ``warmup`` steps."""
    optim = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train()
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        losses = model(**data, mode="loss")
        total = sum(v.sum() if isinstance(v, torch.Tensor) else sum(v) for v in losses.values())
        optim.zero_grad()
        total.backward()
        optim.step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--baseline", default="gfl_r18_1x")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    params = load_params()
    profile = get_profile(params, args.profile)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        runs = [args.baseline, *params["distill"]]
        for run in runs:
            spec = params["distill"].get(run)
            teacher = (export_initial(f"pipelines/configs/{spec['teacher']}.py", params, Path(tmp) / spec["teacher"],
                                      args.profile) if spec else None)
            cfg = build_train_config(f"pipelines/configs/{run}.py", params, profile=args.profile, teacher_dir=teacher,
                                     work_root=Path(tmp) / "work")
            model = _model(cfg)
            data = _batch(model, profile["batch_size"], profile["data"]["image_size"])
            times = time_steps(model, data, args.steps)
            rows[run] = {"median_s": statistics.median(times), "images_per_s":
                         profile["batch_size"] / statistics.median(times)}
            print(f"{run:28s} {rows[run]['median_s'] * 1000:8.1f} ms/step", flush=True)
    base = rows[args.baseline]["median_s"]
    for row in rows.values():
        row["ratio_to_baseline"] = row["median_s"] / base
    result = {"machine": {"cpu": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads(),
                          "device": "cpu", "torch": torch.__version__},
              "profile": args.profile, "batch_size": profile["batch_size"],
              "image_size": profile["data"]["image_size"], "steps": args.steps, "runs": rows}
    print("\n| run | ms/step | x baseline |\n|---|---|---|")
    for run, row in rows.items():
        print(f"| {run} | {row['median_s'] * 1000:.1f} | {row['ratio_to_baseline']:.2f} |")
    if args.out:
        atomic_write_json(args.out, result)


if __name__ == "__main__":
    main()

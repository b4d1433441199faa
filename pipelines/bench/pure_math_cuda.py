"""The pure torch math (LD loss, VLR, DGQP, voting Cluster-DIoU-NMS) on a GPU against the CPU: same
results, and the time of each on both. Needs torch only (no mmcv/mmdet), so it runs on any CUDA machine:

    python pipelines/bench/pure_math_cuda.py --out results/bench/pure_math_cuda.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script from anywhere

from ld.ops import ld_loss, vlr_region, voting_cluster_diou_nms  # noqa: E402  (import ld loads torch only)
from ld.ops.dgqp import dgqp_features  # noqa: E402


def _boxes(gen, n, size=800.0):
    xy = torch.rand(n, 2, generator=gen, dtype=torch.float64) * size
    wh = torch.rand(n, 2, generator=gen, dtype=torch.float64) * size / 4 + 4
    return torch.cat([xy, xy + wh], dim=1)


def _time(fn, device, repeats=20):
    """Median milliseconds of ``fn(device)`` after one warm-up call."""
    fn(device)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn(device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("no CUDA device: this check compares the GPU with the CPU")
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    gen = torch.Generator().manual_seed(0)
    s, t = torch.randn(20000, 17, generator=gen), torch.randn(20000, 17, generator=gen)
    boxes = _boxes(gen, 3000)
    scores = torch.rand(3000, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 80, (3000,), generator=gen)
    level_sizes = [6400, 1600, 400, 100, 25]
    anchors = _boxes(gen, sum(level_sizes)).float()
    gts = _boxes(gen, 12).float()
    reg = torch.randn(8, 68, 50, 50, generator=gen)  # (B, 4 * (reg_max + 1), H, W)

    cases = {
        "ld_loss": lambda d: ld_loss(s.to(d), t.to(d), 10.0),
        "ld_loss_bf16_autocast": lambda d: _autocast(d, lambda: ld_loss(s.to(d), t.to(d), 10.0)),
        "vlr_region": lambda d: vlr_region(anchors.to(d), level_sizes, gts.to(d))[0],
        "dgqp_features": lambda d: dgqp_features(reg.to(d)),
        "voting_cluster_diou_nms": lambda d: voting_cluster_diou_nms(boxes.to(d), scores.to(d), labels.to(d))[0],
    }
    rows = {}
    for name, fn in cases.items():
        on_cpu, on_gpu = fn(cpu), fn(gpu)
        assert on_gpu.device.type == "cuda", name
        diff = (on_gpu.cpu().double() - on_cpu.double()).abs().max().item() if on_cpu.shape == on_gpu.shape else None
        rows[name] = {"shape_equal": on_cpu.shape == on_gpu.shape, "max_abs_diff": diff, "dtype": str(on_gpu.dtype),
                      "cpu_ms": round(_time(fn, cpu, 5), 3), "gpu_ms": round(_time(fn, gpu), 3)}
        print(name, rows[name], flush=True)
    result = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
              "cpu_threads": torch.get_num_threads(), "cases": rows}
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    bad = [n for n, r in rows.items() if not r["shape_equal"] or r["max_abs_diff"] > (5e-2 if "bf16" in n else 1e-4)]
    if bad:
        sys.exit(f"GPU and CPU disagree: {bad}")


def _autocast(device, fn):
    with torch.autocast(device.type, dtype=torch.bfloat16):
        return fn().float()


if __name__ == "__main__":
    main()

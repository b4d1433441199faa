"""The GPU path end to end, as one prepared check (minutes on one GPU): which mmcv ops run on CUDA, a
smoke teacher and LD student trained a few iterations on the GPU, `ld eval` there with both NMS types,
a DCNv2 forward/backward, `ld bench fps`, and DDP with NCCL where two or more GPUs are present.
Writes one JSON of what ran, how long it took and what failed (never stops at the first failure):

    python pipelines/bench/gpu_check.py --out results/bench/gpu_check.json

Without CUDA it writes nothing and exits 0 (`skipped`), so it is safe anywhere.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]


class Check:
    """Runs named steps, records each one's outcome and time, and rewrites the JSON after each."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.results: dict = {"steps": {}}

    def step(self, name: str, fn) -> dict | None:
        start = time.perf_counter()
        print(f"gpu_check: {name} ...", flush=True)
        try:
            found = fn() or {}
            record = {"status": found.pop("status", "ran"), **found}
        except Exception as err:  # noqa: BLE001  (a check records every failure and goes on)
            found = None
            record = {"status": "failed", "error": f"{type(err).__name__}: {err}"[:1500],
                      "traceback": traceback.format_exc()[-2500:]}
        record["seconds"] = round(time.perf_counter() - start, 2)
        self.results["steps"][name] = record
        print(f"gpu_check: {name}: {record['status']} ({record['seconds']} s)", flush=True)
        self.write()
        return found

    def write(self) -> None:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.out.write_text(json.dumps(self.results, indent=2) + "\n")


def environment() -> dict:
    import mmcv
    import mmdet
    import mmengine

    from ld.models.mmcv_cuda import cuda_ops_compiled

    return {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
            "mmcv": mmcv.__version__, "mmdet": mmdet.__version__, "mmengine": mmengine.__version__,
            "mmcv_cuda_ops_compiled": cuda_ops_compiled()}


def mmcv_ops_on_cuda() -> dict:
    """Each mmcv op the project can reach, called directly (bypassing ld's fallback) on CUDA tensors."""
    from mmcv.ops import DeformConv2dPack, ModulatedDeformConv2dPack, roi_align, sigmoid_focal_loss

    import ld.models.mmcv_cuda

    dev = torch.device("cuda")
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11]], dtype=torch.float32, device=dev)
    x = torch.rand(1, 4, 8, 8, device=dev)
    calls = {
        "nms": lambda: ld.models.mmcv_cuda._mmcv_nms(boxes, torch.tensor([0.9, 0.8], device=dev), 0.5),
        "DeformConv2d (DCN)": lambda: DeformConv2dPack.forward.__wrapped__(
            DeformConv2dPack(4, 4, 3, padding=1).to(dev), x),
        "ModulatedDeformConv2d (DCNv2)": lambda: ModulatedDeformConv2dPack.forward.__wrapped__(
            ModulatedDeformConv2dPack(4, 4, 3, padding=1).to(dev), x),
        "roi_align": lambda: roi_align(x, torch.tensor([[0, 0, 0, 4, 4.0]], device=dev), (2, 2)),
        "sigmoid_focal_loss": lambda: sigmoid_focal_loss(torch.rand(4, 3, device=dev),
                                                         torch.tensor([0, 1, 2, 1], device=dev)),
    }
    ops = {}
    for name, call in calls.items():
        try:
            call()
            torch.cuda.synchronize()
            ops[name] = "cuda kernel ran"
        except Exception as err:  # noqa: BLE001
            ops[name] = f"no cuda kernel: {str(err).splitlines()[0][:200]}"
    return {"ops": ops}


def tiny_params() -> dict:
    from ld.profiles import load_params

    params = load_params(ROOT / "params.yaml")
    smoke = params["profiles"]["smoke"]
    smoke["schedules"] = {"1x": {"epochs": 1, "steps": [1]}, "2x": {"epochs": 1, "steps": [1]}}
    return params


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "results/bench/gpu_check.json"))
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("gpu_check: skipped (no CUDA device)")
        return 0
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    import ld.models  # noqa: F401  (registers the modules)
    from ld.checkpoint import load_checkpoint
    from ld.data.synth import SynthSpec, write_dataset
    from ld.engine.evaluate import evaluate_checkpoint
    from ld.engine.fps import benchmark_fps
    from ld.engine.train import build_train_config, train
    from ld.ops.voting_cluster_diou_nms import NMS_TYPES

    check = Check(Path(args.out))
    total = time.perf_counter()
    check.step("environment", lambda: check.results.update(environment()))
    check.step("mmcv_ops_on_cuda", mmcv_ops_on_cuda)
    tmp = Path(tempfile.mkdtemp(prefix="ld-gpu-check-"))
    data, params = tmp / "data", tiny_params()
    check.step("data", lambda: {"splits": write_dataset(data, SynthSpec(num_train=32, num_val=16, image_size=96),
                                                        show_progress=False)["splits"]})

    def trained(config: str, teacher: Path | None = None) -> dict:
        torch.cuda.reset_peak_memory_stats()
        cfg = build_train_config(ROOT / f"pipelines/configs/{config}.py", params, profile="smoke", data_root=data,
                                 teacher_dir=teacher, work_root=tmp / "work")
        train(cfg, tmp / "models" / config)
        peak = torch.cuda.max_memory_allocated()
        if peak == 0:
            raise RuntimeError("nothing was allocated on the GPU: training did not run there")
        meta = load_checkpoint(tmp / "models" / config / "model.pth")["meta"]
        return {"iterations": meta["iter"], "gpu_peak_mib": round(peak / 2**20, 1)}

    check.step("train_teacher_gfl_r50_2x", lambda: trained("gfl_r50_2x"))
    check.step("train_ld_student_ld_r18_gfl_r50_1x",
               lambda: trained("ld_r18_gfl_r50_1x", tmp / "models" / "gfl_r50_2x"))
    student = tmp / "models" / "ld_r18_gfl_r50_1x"
    for nms in NMS_TYPES:
        check.step(f"eval_{nms}", lambda nms=nms: {"coco": evaluate_checkpoint(
            student / "config.py", student / "model.pth", tmp / f"metrics_{nms}.json", nms=nms)["coco"]})

    def dcnv2() -> dict:
        from mmcv.ops import ModulatedDeformConv2dPack

        from ld.models.mmcv_cuda import chosen_deform_kernel, cuda_ops_compiled

        conv = ModulatedDeformConv2dPack(16, 16, 3, padding=1).cuda()
        x = torch.rand(2, 16, 32, 32, device="cuda", requires_grad=True)
        y = conv(x)  # without mmcv's CUDA ops: torchvision's kernel, else ld.ops.deform_conv (ld.models.mmcv_cuda)
        y.square().mean().backward()
        torch.cuda.synchronize()
        kernel = "mmcv's CUDA ops" if cuda_ops_compiled() else chosen_deform_kernel()[1]
        return {"kernel": kernel, "output": list(y.shape), "grad_finite": bool(torch.isfinite(x.grad).all())}

    check.step("dcnv2_forward_backward", dcnv2)
    check.step("bench_fps", lambda: benchmark_fps(student / "config.py", student / "model.pth", num_images=16,
                                                  warmup=4))

    def ddp_nccl() -> dict:
        if torch.cuda.device_count() < 2:
            return {"status": f"skipped: {torch.cuda.device_count()} GPU"}
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "ld.cli",
               "--profile", "smoke", "train", "pipelines/configs/gfl_r18_1x.py", "--data", str(data), "--out",
               str(tmp / "models" / "ddp"), "--work-root", str(tmp / "work_ddp"), "--launcher", "pytorch"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if proc.returncode:
            raise RuntimeError(proc.stdout[-1500:] + proc.stderr[-1500:])
        return {"processes": 2}

    check.step("ddp_nccl", ddp_nccl)
    failed = [name for name, record in check.results["steps"].items() if record["status"] == "failed"]
    check.results.update(total_seconds=round(time.perf_counter() - total, 1), failed=failed)
    check.write()
    print(f"gpu_check: {len(check.results['steps'])} steps, failed: {failed or 'none'} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

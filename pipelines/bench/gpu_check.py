"""The GPU path end to end, as one prepared check (minutes on one GPU): which mmcv ops run on CUDA; every
kind of row (:data:`ROWS`: GFocalV1 and V2 teachers and LD students, LD into ATSS, FCOS and RetinaNet,
feature imitation, a DCN backbone) trained a few iterations at smoke size on the GPU and evaluated there
with both NMS types; a DCNv2 forward/backward; `ld bench fps`; plain against voting Cluster-DIoU-NMS on
COCO-sized random detections (:func:`nms_on_device`), and whether the NMS kernels that run keep the same boxes
(:func:`nms_kernels_agree`); and DDP with NCCL where two or more GPUs are present.
Writes one JSON of what ran, how long it took and what failed (never stops at the first failure):

    python pipelines/bench/gpu_check.py --out results/bench/gpu_check.json

Without CUDA it writes nothing and exits 0 (`skipped`), so it is safe anywhere; ``--device cpu`` runs the
same steps on the CPU (those that need CUDA skipped), to check the script before a GPU session.
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


# Every kind of row, in training order: (config, its teacher's config or None)
ROWS = (("gfl_r50_2x", None), ("gflv2_r50_2x", None),
        ("ld_r18_gfl_r50_1x", "gfl_r50_2x"),  # GFocalV1 student, Main LD
        ("ld_gflv2_r18_gflv2_r50_1x", "gflv2_r50_2x"),  # GFocalV2 student (DGQP)
        ("ld_atss_r18_gfl_r50_1x", "gfl_r50_2x"),  # focal loss: mmcv's CUDA op, else mmdet's pure torch
        ("ld_fcos_r18_gfl_r50_1x", "gfl_r50_2x"),
        ("ld_retina_r18_gfl_r50_1x", "gfl_r50_2x"),
        ("im_gibox_r18_gfl_r50_1x", "gfl_r50_2x"),  # feature imitation alone
        ("gfl_r101_dcn_2x", None))  # DCN: mmcv's CUDA op, else torchvision's kernel, else ld.ops.deform_conv
NMS_SIZES = (1000, 5000, 10000)  # detections per image before NMS (COCO: up to 1000 per level, 5 levels)


def kernel_run(device: str, chosen) -> str:
    """Which kernel an mmcv op ran on ``device``: mmcv's CPU kernel, its CUDA ops, or the fallback that
    ``chosen`` (:func:`ld.models.mmcv_cuda.chosen_nms_kernel` / ``chosen_deform_kernel``) names."""
    from ld.models.mmcv_cuda import cuda_ops_compiled

    return "mmcv's CPU kernel" if device == "cpu" else "mmcv's CUDA ops" if cuda_ops_compiled() else chosen()[1]


def _bench_nms():
    """pipelines/bench/nms.py, imported as bench.py imports it."""
    if str(Path(__file__).parent) not in sys.path:
        sys.path.insert(0, str(Path(__file__).parent))
    import nms

    return nms


def nms_on_device(device: str) -> dict:
    """pipelines/bench/nms.py's side by side of mmcv's batched NMS (on CUDA: its kernel, or ld's fallback) and
    voting Cluster-DIoU-NMS on random detections of :data:`NMS_SIZES`, on ``device``; which kernel the plain
    NMS ran on."""
    from ld.models.mmcv_cuda import chosen_nms_kernel

    return {"kernel": kernel_run(device, chosen_nms_kernel),
            **_bench_nms().synthetic(NMS_SIZES, repeats=7, memory=False, device=device)}


def nms_kernels_agree(device: str, cases: int = 40) -> dict:
    """The NMS kernels that can run on ``device`` (mmcv's own, torchvision's compiled ``nms``, the pure-torch
    :func:`ld.ops.nms.nms`) on random COCO-like detections (300-5,000 boxes, IoU thresholds 0.5-0.7): in how
    many cases each keeps the pure kernel's boxes, in its order (ties aside, they should in all)."""
    import ld.models.mmcv_cuda
    from ld.ops.nms import nms as pure

    synthetic_detections = _bench_nms().synthetic_detections
    kernels = {"ld.ops.nms": pure}  # the reference, listed to show it ran
    try:  # mmcv's kernel for this device, called directly (ld's fallback bypassed)
        ld.models.mmcv_cuda._mmcv_nms(torch.zeros(1, 4, device=device), torch.ones(1, device=device), 0.5)
        kernels["mmcv"] = lambda b, s, t: ld.models.mmcv_cuda._mmcv_nms(b, s, t)[1]
    except Exception:  # noqa: BLE001  (no kernel for this device)
        pass
    torchvision_nms = ld.models.mmcv_cuda.chosen_nms_kernel()[0]
    if torchvision_nms is not None:
        kernels["torchvision"] = torchvision_nms
    agree = dict.fromkeys(kernels, 0)
    for case in range(cases):
        n, thr = (300, 1000, 2000, 5000)[case % 4], (0.5, 0.6, 0.7)[case % 3]
        boxes, scores, _ = (t.to(device) for t in synthetic_detections(n, "uniform", seed=case))
        reference = pure(boxes, scores, thr)
        for name, kernel in kernels.items():
            agree[name] += bool(torch.equal(kernel(boxes, scores, thr).to(reference.device), reference))
    return {"cases": cases, "equal_to_pure_kernel": agree}


def tiny_params() -> dict:
    from ld.profiles import load_params

    params = load_params(ROOT / "params.yaml")
    smoke = params["profiles"]["smoke"]
    smoke["schedules"] = {"1x": {"epochs": 1, "steps": [1]}, "2x": {"epochs": 1, "steps": [1]}}
    return params


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "results/bench/gpu_check.json"))
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"),
                        help="cpu: the same steps on the CPU (a check of this script; CUDA-only steps skipped)")
    args = parser.parse_args()
    on_gpu = args.device == "cuda"
    if on_gpu and not torch.cuda.is_available():
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
    from ld.layout import NMS_TYPES

    check = Check(Path(args.out))
    total = time.perf_counter()
    check.results["device"] = args.device
    check.step("environment", lambda: check.results.update(environment()))
    check.step("mmcv_ops_on_cuda", mmcv_ops_on_cuda if on_gpu else lambda: {"status": "skipped: --device cpu"})
    tmp = Path(tempfile.mkdtemp(prefix="ld-gpu-check-"))
    data, params = tmp / "data", tiny_params()
    check.step("data", lambda: {"splits": write_dataset(data, SynthSpec(num_train=32, num_val=16, image_size=96),
                                                        show_progress=False)["splits"]})

    def trained(config: str, teacher: Path | None = None) -> dict:
        if on_gpu:
            torch.cuda.reset_peak_memory_stats()
        cfg = build_train_config(ROOT / f"pipelines/configs/{config}.py", params, profile="smoke", data_root=data,
                                 teacher_dir=teacher, work_root=tmp / "work")
        train(cfg, tmp / "models" / config)
        meta = load_checkpoint(tmp / "models" / config / "model.pth")["meta"]
        if not on_gpu:
            return {"iterations": meta["iter"]}
        peak = torch.cuda.max_memory_allocated()
        if peak == 0:
            raise RuntimeError("nothing was allocated on the GPU: training did not run there")
        return {"iterations": meta["iter"], "gpu_peak_mib": round(peak / 2**20, 1)}

    def evaluated(config: str, nms: str) -> dict:
        model = tmp / "models" / config
        coco = evaluate_checkpoint(model / "config.py", model / "model.pth", tmp / f"metrics_{config}_{nms}.json",
                                   nms=nms)["coco"]
        return {"AP": coco["AP"], "AP50": coco["AP50"]}

    for config, teacher in ROWS:  # a row whose teacher failed fails too, and says so
        check.step(f"train_{config}", lambda c=config, t=teacher: trained(c, t and tmp / "models" / t))
        for nms in NMS_TYPES:
            check.step(f"eval_{config}_{nms}", lambda c=config, nms=nms: evaluated(c, nms))
    student = tmp / "models" / "ld_r18_gfl_r50_1x"

    def dcnv2() -> dict:
        from mmcv.ops import ModulatedDeformConv2dPack

        from ld.models.mmcv_cuda import chosen_deform_kernel

        conv = ModulatedDeformConv2dPack(16, 16, 3, padding=1).to(args.device)
        x = torch.rand(2, 16, 32, 32, device=args.device, requires_grad=True)
        y = conv(x)  # without mmcv's CUDA ops: torchvision's kernel, else ld.ops.deform_conv (ld.models.mmcv_cuda)
        y.square().mean().backward()
        if on_gpu:
            torch.cuda.synchronize()
        return {"kernel": kernel_run(args.device, chosen_deform_kernel), "output": list(y.shape),
                "grad_finite": bool(torch.isfinite(x.grad).all())}

    check.step("dcnv2_forward_backward", dcnv2)
    check.step("bench_fps", lambda: benchmark_fps(student / "config.py", student / "model.pth", num_images=16,
                                                  warmup=4))
    check.step("nms_per_image", lambda: nms_on_device(args.device))
    check.step("nms_kernels_agree", lambda: nms_kernels_agree(args.device))

    def ddp_nccl() -> dict:
        if not on_gpu:
            return {"status": "skipped: --device cpu"}
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

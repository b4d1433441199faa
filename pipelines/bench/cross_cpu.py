"""The deterministic mode across CPU vendors: the same kernels and `ld` commands on this machine's CPU and on an
emulated Intel CPU (qemu-user, TCG: another vendor, other cache sizes, AVX2 and no AVX512), compared byte for byte.

    apt-get install qemu-user        # Debian's package (qemu-x86_64)
    python pipelines/bench/cross_cpu.py --out results/bench/cross_cpu.json

Needs the smoke data and teachers (`dvc repro train@gfl_r50_2x train@gflv2_r50_2x`, or `dvc pull`). It writes:

- ``ops``: SHA-256 prefixes of what a training step computes (convolutions forward and backward at the
  model's shapes, GroupNorm, BatchNorm, softmax, exp/log, a reduction, GFocal's integral (a GEMV in MKL), a GEMM)
  under the deterministic mode's environment (:data:`ld.cpu_pinning.PINNED_ENV`) and under the same with
  ``MKL_CBWR=AVX2`` (what the issue tried first), on both CPUs, and which ops differ;
- ``runs``: the SHA-256 of ``model.pth`` after two training iterations of a baseline, a full-LD student and a
  GFocalV2 student (DGQP's linear layers) by ``ld --profile smoke train``, and of the baseline's ``ld eval``
  metrics, on both CPUs.

Emulation is slow (about 3 minutes for one two-iteration run): the whole script takes 15-20 minutes.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from ld.cpu_pinning import PINNED_ENV, cpu_name  # noqa: E402  (the standard library only: torch is not imported here)

RUNS = {  # config -> teacher run (smoke)
    "gfl_r18_1x": None,
    "ld_full_r18_gfl_r50_1x": "gfl_r50_2x",
    "ld_gflv2_r18_gflv2_r50_1x": "gflv2_r50_2x",
}
SHORT = ["train_cfg.max_epochs=1", "train_dataloader.dataset.indices=16"]  # two iterations of 8 images


def ops() -> dict[str, str]:
    """SHA-256 prefixes of the kernels a training step runs (in this process's environment)."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)

    def h(t):
        return hashlib.sha256(t.detach().contiguous().numpy().tobytes()).hexdigest()[:12]

    out = {"aten_capability": torch.backends.cpu.get_cpu_capability(), "threads": str(torch.get_num_threads())}
    x = torch.randn(8, 64, 24, 24, requires_grad=True)
    for name, (cin, cout, k, s) in {"conv3x3": (64, 64, 3, 1), "conv3x3_s2": (64, 128, 3, 2),
                                    "conv1x1": (64, 64, 1, 1), "conv1x1_s2": (64, 128, 1, 2)}.items():
        w = torch.randn(cout, cin, k, k, requires_grad=True)
        y = F.conv2d(x, w, stride=s, padding=k // 2)
        gx, gw = torch.autograd.grad((y * y.detach().sin()).sum(), (x, w))
        out[name] = ",".join(map(h, (y, gx, gw)))
    img, w7 = torch.randn(8, 3, 96, 96, requires_grad=True), torch.randn(64, 3, 7, 7, requires_grad=True)
    y = F.conv2d(img, w7, stride=2, padding=3)
    out["conv7x7_stem"] = ",".join(map(h, (y, *torch.autograd.grad(y.square().sum(), (img, w7)))))
    out["group_norm"] = h(F.group_norm(x, 32))
    out["batch_norm"] = h(F.batch_norm(x, None, None, training=True))
    out["softmax"] = h(F.softmax(x, 1))
    out["exp_log1p"] = h(x.exp().log1p())
    out["sum"] = h(x.sum((2, 3)))
    project = torch.linspace(0, 16, 17)  # mmdet's Integral: F.linear of the 17-bin softmax with the projection
    out["gfocal_integral_gemv"] = ",".join(h(F.linear(F.softmax(torch.randn(n, 17), 1), project)) for n in (408, 4000))
    out["gemm"] = h(torch.rand(300, 200) @ torch.rand(200, 100))
    return out


def _child(args: list[str], env: dict[str, str], emulate: str | None, cwd: Path = REPO) -> subprocess.CompletedProcess:
    prefix = ["qemu-x86_64", "-cpu", emulate] if emulate else []
    return subprocess.run(prefix + args, env=env, cwd=cwd, capture_output=True, text=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="results/bench/cross_cpu.json")
    parser.add_argument("--cpu", default="Haswell-v4", help="qemu's CPU model to emulate (an Intel one with AVX2)")
    parser.add_argument("--ops-only", action="store_true", help="the kernels alone (a minute)")
    parser.add_argument("--child-ops", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_ops:
        print(json.dumps(ops()))
        return 0
    base = {k: v for k, v in os.environ.items() if k not in PINNED_ENV}
    base["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}"
    qemu = subprocess.run(["qemu-x86_64", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    report = {"host_cpu": cpu_name(), "emulated_cpu": f"qemu-user {args.cpu} ({qemu})",
              "python": platform.python_version(),
              "command": "python pipelines/bench/cross_cpu.py" + (" --ops-only" if args.ops_only else ""),
              "ops": {}, "runs": {}}
    modes = {"deterministic mode": PINNED_ENV, "the same with MKL_CBWR=AVX2": {**PINNED_ENV, "MKL_CBWR": "AVX2"}}
    for mode, env in modes.items():
        got = {}
        for where, emulate in (("host", None), ("emulated", args.cpu)):
            t = time.time()
            proc = _child([sys.executable, __file__, "--child-ops"], {**base, **env}, emulate)
            if proc.returncode:
                raise SystemExit(f"ops on {where} failed:\n{proc.stderr[-2000:]}")
            got[where] = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"ops, {mode}, {where}: {time.time() - t:.0f} s", flush=True)
        report["ops"][mode] = {**got, "differ": sorted(k for k in got["host"] if got["host"][k] != got["emulated"][k])}
    if not args.ops_only:
        with tempfile.TemporaryDirectory(prefix="cross_cpu_") as tmp:
            for config, teacher in RUNS.items():
                shas = {}
                for where, emulate in (("host", None), ("emulated", args.cpu)):
                    out = Path(tmp) / where / config
                    cmd = [sys.executable, "-m", "ld.cli", "--profile", "smoke", "train",
                           f"pipelines/configs/{config}.py", "--out", str(out),
                           "--work-root", str(Path(tmp) / where / "work"), "--no-resume",
                           *(["--teacher", f"models/smoke/{teacher}"] if teacher else []), "--cfg-options", *SHORT]
                    t = time.time()
                    proc = _child(cmd, base, emulate)  # `ld` pins itself: smoke is deterministic
                    if proc.returncode:
                        raise SystemExit(f"{config} on {where} failed:\n{proc.stderr[-2000:]}")
                    shas[where] = hashlib.sha256((out / "model.pth").read_bytes()).hexdigest()
                    print(f"{config}, {where}: {time.time() - t:.0f} s", flush=True)
                    if config == "gfl_r18_1x":
                        metrics = Path(tmp) / where / "metrics.json"
                        proc = _child([sys.executable, "-m", "ld.cli", "--profile", "smoke", "eval",
                                       str(out / "config.py"), str(out / "model.pth"), "--out", str(metrics)],
                                      base, emulate)
                        if proc.returncode:
                            raise SystemExit(f"eval on {where} failed:\n{proc.stderr[-2000:]}")
                        shas[f"{where} ld eval metrics.json"] = hashlib.sha256(metrics.read_bytes()).hexdigest()
                report["runs"][f"{config} (2 iterations)"] = {**shas, "equal": shas["host"] == shas["emulated"]}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({m: r["differ"] for m, r in report["ops"].items()}), json.dumps(report["runs"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

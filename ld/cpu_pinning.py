"""The deterministic mode: a profile's results are the same bits on any x86-64 CPU with AVX2.

The same code and seed give other bits on another CPU when nothing is pinned: ATen dispatches its
vectorised kernels (sums, exp, log, softmax) by the CPU's instruction set (AVX512 here, AVX2 elsewhere),
oneDNN picks its convolution kernels by instruction set (AVX512, AMX on Intel), MKL its GEMM branch, and
``ld.teacher_precision: auto`` runs the teacher in bfloat16 only where the CPU has it natively. Reductions
split over threads add in another order with another thread count.

A profile with ``deterministic: true`` (``smoke``: CI and ``make run``) pins all of these for every ``ld``
process before torch starts (:func:`pin_process`, called by ``ld``'s ``main``; papermill's kernels and
the processes ``ld`` starts inherit the environment):

- ``ATEN_CPU_CAPABILITY=avx2``: ATen's AVX2 kernels on every CPU that has AVX2;
- ``ONEDNN_MAX_CPU_ISA=AVX2``: oneDNN's AVX2 convolutions, never AVX512 or AMX ones;
- ``MKL_CBWR=COMPATIBLE``: MKL's conditional numerical reproducibility on the branch every x86-64 CPU
  runs (MKL takes its ``AVX2`` branch on Intel CPUs only: on an AMD EPYC, ``MKL_VERBOSE`` reports
  ``CNR:AUTO`` for ``MKL_CBWR=AVX2``, and GFocal's integral, a GEMV, then differs from an Intel CPU's);
- ``OMP_NUM_THREADS=MKL_NUM_THREADS=2``: two threads, whatever the core count;
- with AVX2 kernels no CPU computes bfloat16 natively, so ``teacher_precision: auto`` runs the teacher in
  float32 (:func:`ld.models.distiller.teacher_dtype`).

Nothing else changes: the mode costs time (the AVX2 kernels, the float32 teacher), measured in the
README. GPUs and the paper profiles keep the fast default; their runs are compared within a tolerance
(``ld compare``). This module imports nothing but the standard library: it runs before torch is imported.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

PINNED_THREADS = 2
PINNED_ENV = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_CBWR": "COMPATIBLE",
    "OMP_NUM_THREADS": str(PINNED_THREADS),
    "MKL_NUM_THREADS": str(PINNED_THREADS),
}
# what the run's config and log record of the mode (``cfg.cpu_pinning``)
PINNING = {"isa": PINNED_ENV["ATEN_CPU_CAPABILITY"], "threads": PINNED_THREADS}


def wants_pinning(params_file: str, profile: str | None) -> bool:
    """Whether ``profile`` (default: the params file's) asks for the deterministic mode. A missing or
    unreadable params file asks for nothing: the command itself reports it where it needs the file."""
    import yaml

    try:
        with open(params_file) as fh:
            params = yaml.safe_load(fh)
        settings = params["profiles"][profile or params["profile"]]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return False
    return isinstance(settings, dict) and settings.get("deterministic") is True


def pin_process() -> None:
    """Set :data:`PINNED_ENV` for this process and every process it starts. Call before torch is imported:
    MKL and oneDNN read their variables when they start (ATen's when it first dispatches)."""
    if "torch" in sys.modules:
        raise RuntimeError("ld.cpu_pinning.pin_process() must run before torch is imported")
    os.environ.update(PINNED_ENV)


def active() -> dict | None:
    """:data:`PINNING` if this process runs pinned (its environment and torch's dispatch say so), else None."""
    if any(os.environ.get(key) != value for key, value in PINNED_ENV.items()):
        return None
    import torch

    if torch.backends.cpu.get_cpu_capability() != "AVX2" or torch.get_num_threads() != PINNED_THREADS:
        return None
    return dict(PINNING)


def cpu_name(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> str:
    """This machine's CPU as the README and the clean-clone test name it: vendor, model name, family, model."""
    info: dict[str, str] = {}
    for line in Path(cpuinfo).read_text().splitlines():
        key, _, value = line.partition(":")
        info.setdefault(key.strip(), value.strip())
    return (f"{info.get('vendor_id')} {info.get('model name')} "
            f"(family {info.get('cpu family')}, model {info.get('model')})")

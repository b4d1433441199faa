"""The environment mmcv 2.1.0 is built in (`make install` runs it after torch is installed): prints
``VAR=value`` words for `env`, or stops with what to install.

- torch without CUDA (the CPU build): mmcv's C++ ops for the CPU (``MMCV_WITH_OPS=1``), as always.
- torch with CUDA: mmcv's CUDA ops too (``FORCE_CUDA=1``), for the GPUs this machine has
  (``TORCH_CUDA_ARCH_LIST`` from their compute capabilities; set it yourself to build for others, e.g.
  ``TORCH_CUDA_ARCH_LIST="8.0 9.0"`` on a machine without a GPU). That needs nvcc, from a CUDA toolkit of
  torch's CUDA major version: without it, this stops and says what to install.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import torch

DEFAULT_CUDA_HOME = "/usr/local/cuda"


def nvcc() -> str | None:
    """nvcc on PATH, or under ``CUDA_HOME`` / ``CUDA_PATH`` / /usr/local/cuda."""
    found = shutil.which("nvcc")
    if found:
        return found
    for home in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), DEFAULT_CUDA_HOME):
        if home and (Path(home) / "bin" / "nvcc").is_file():
            return str(Path(home) / "bin" / "nvcc")
    return None


def arch_list() -> str | None:
    """``TORCH_CUDA_ARCH_LIST`` as given, else the compute capabilities of the visible GPUs."""
    given = os.environ.get("TORCH_CUDA_ARCH_LIST")
    if given:
        return given
    if not torch.cuda.is_available():
        return None
    capabilities = {torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())}
    return " ".join(f"{major}.{minor}" for major, minor in sorted(capabilities))


def main() -> int:
    if torch.version.cuda is None:
        print("MMCV_WITH_OPS=1 FORCE_CUDA=0")
        return 0
    compiler = nvcc()
    if compiler is None:
        major = torch.version.cuda.split(".")[0]
        print(f"error: torch {torch.__version__} is a CUDA {torch.version.cuda} build, so mmcv's CUDA ops are to be "
              f"compiled, but no nvcc was found (PATH, CUDA_HOME, /usr/local/cuda). Install a CUDA {major}.x toolkit "
              f"(e.g. `conda install -c nvidia cuda-toolkit={torch.version.cuda}`, or NVIDIA's cuda-toolkit-"
              f"{torch.version.cuda.replace('.', '-')} package) and put its bin/ on PATH or set CUDA_HOME; or "
              "install torch's CPU build to build mmcv's CPU ops only.", file=sys.stderr)
        return 2
    arch = arch_list()
    if arch is None:
        print("error: torch has CUDA but sees no GPU here: set TORCH_CUDA_ARCH_LIST to the compute capabilities "
              "to build for (e.g. TORCH_CUDA_ARCH_LIST=\"8.0 9.0\" for A100 and H100/H200).", file=sys.stderr)
        return 2
    cuda_home = str(Path(compiler).resolve().parents[1])
    # pip's wheel cache is keyed by the source, not by this environment: a CPU-only mmcv built before
    # must not be taken from it
    print(f"MMCV_WITH_OPS=1 FORCE_CUDA=1 CUDA_HOME={cuda_home} TORCH_CUDA_ARCH_LIST={arch.replace(' ', ';')} "
          "PIP_NO_CACHE_DIR=1")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Executing the project's notebooks with papermill, reproducibly.

Notebooks run with the project's kernel (``ld-workspace``, registered by ``make install``) from the
repository root, with a cell time limit, and their papermill timestamps stripped so that an
unchanged result gives an unchanged file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat

from ld.io import atomic_write_text

KERNEL = "ld-workspace"


def strip_volatile(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Make an executed notebook depend on its results only, in place: drop papermill's timestamps and
    durations, give the injected-parameters cell a fixed id (papermill draws a random one), and drop
    stderr streams (library warnings, which depend on import order; errors are kept as errors)."""
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.id = "injected-parameters"
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not (o.output_type == "stream" and o.name == "stderr")]
    return nb


def execute_notebook(src: str | Path, dst: str | Path, parameters: dict[str, Any],
                     cwd: str | Path = ".", timeout: int = 1800, progress: bool = True) -> Path:
    """Execute ``src`` with ``parameters`` injected after its ``parameters`` cell; write ``dst``.

    On a failing cell papermill raises ``PapermillExecutionError`` naming the cell; the partial
    notebook is still written (atomically) to ``dst`` for inspection.
    """
    import papermill as pm

    dst = Path(dst)
    tmp = dst.with_name(f".{dst.name}.running.ipynb")
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        pm.execute_notebook(str(src), str(tmp), parameters=parameters, kernel_name=KERNEL,
                            language="python", cwd=str(cwd), execution_timeout=timeout,
                            progress_bar=progress)
    finally:
        if tmp.exists():
            nb = strip_volatile(nbformat.read(tmp, as_version=4))
            atomic_write_text(dst, nbformat.writes(nb) + "\n")
            tmp.unlink()
    return dst

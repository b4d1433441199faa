"""Executing the project's notebooks with papermill, reproducibly.

Notebooks run with the project's kernel (``ld-workspace``, registered by ``make install``) from the
repository root, with a cell time limit, and their papermill timestamps stripped so that an
unchanged result gives an unchanged file.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import nbformat

from ld.errors import ConfigError, LDError, MissingFileError
from ld.io import atomic_write_text
from ld.profiles import PARAMS_FILE, load_params

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


def notebook_default(src: str | Path, name: str) -> Any:
    """The literal default of parameter ``name`` in the notebook's ``parameters`` cell, or None."""
    for cell in nbformat.read(src, as_version=4).cells:
        if cell.cell_type != "code" or "parameters" not in cell.metadata.get("tags", []):
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            return None
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
                try:
                    return ast.literal_eval(node.value)
                except ValueError:
                    return None
    return None


def check_profile(src: str | Path, parameters: dict[str, Any], cwd: str | Path = ".") -> None:
    """Refuse a ``profile`` parameter that the params file does not define, before anything runs.

    The params file is the one the notebook reads: ``parameters['params_file']``, else the notebook's
    own ``params_file`` default, else ``params.yaml``, relative to ``cwd`` (where the notebook runs). A
    :class:`ConfigError` names the profile and lists the known ones; a params file that was named (as a
    parameter or by the notebook) but does not exist is a :class:`MissingFileError`. Without a
    ``profile`` parameter, or without any params file (a notebook that reads none), there is nothing
    to check.
    """
    if "profile" not in parameters:
        return
    profile = parameters["profile"]
    named = parameters.get("params_file") or notebook_default(src, "params_file")
    params_file = Path(cwd) / (named or PARAMS_FILE)
    if not params_file.is_file():
        if named:
            raise MissingFileError(f"params file {params_file} (parameter 'params_file' of {src}) not found: run "
                                   "from the repository root, or pass `-p params_file PATH`")
        return
    known = load_params(params_file)["profiles"] or {}
    if not isinstance(profile, str) or profile not in known:
        raise ConfigError(f"unknown profile {profile!r} (parameter 'profile' of {src}): {params_file} defines "
                          f"{sorted(known)} under `profiles:`. Use one of them (`ld --profile NAME notebook ...` or "
                          f"`-p profile NAME`), or add it to {params_file}. Nothing was run or written.")


class NotebookError(LDError):
    """A cell of a notebook raised. Its partial run is kept beside the destination (:func:`failed_path`);
    the destination itself is left as it was, so a good committed notebook is never replaced by a failure.
    ``exec_count``, ``ename`` and ``evalue`` are papermill's: the failing cell and its exception."""

    def __init__(self, message: str, exec_count: int | None, ename: str, evalue: str) -> None:
        super().__init__(message)
        self.exec_count, self.ename, self.evalue = exec_count, ename, evalue


def failed_path(dst: str | Path) -> Path:
    """Where a failed run of the notebook ``dst`` is kept: ``<dst stem>.failed.ipynb`` beside it."""
    dst = Path(dst)
    return dst.with_name(f"{dst.stem}.failed.ipynb")


def _write_stripped(src: Path, dst: Path) -> None:
    atomic_write_text(dst, nbformat.writes(strip_volatile(nbformat.read(src, as_version=4))) + "\n")


def execute_notebook(src: str | Path, dst: str | Path, parameters: dict[str, Any],
                     cwd: str | Path = ".", timeout: int = 1800, progress: bool = True) -> Path:
    """Execute ``src`` with ``parameters`` injected after its ``parameters`` cell; write ``dst``.

    A missing ``src`` or an unknown ``profile`` parameter (see :func:`check_profile`) is refused before
    anything runs or is written. On a failing cell a :class:`NotebookError` names the cell and its
    exception in one line; the partial run goes to :func:`failed_path` (for inspection) and ``dst`` is
    not touched. A success writes ``dst`` atomically and removes an earlier failed run's file.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    if not Path(src).is_file():
        raise MissingFileError(f"notebook {src} not found (the project's notebooks are in notebooks/)")
    check_profile(src, parameters, cwd)
    dst = Path(dst)
    tmp = dst.with_name(f".{dst.name}.running.ipynb")
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        pm.execute_notebook(str(src), str(tmp), parameters=parameters, kernel_name=KERNEL,
                            language="python", cwd=str(cwd), execution_timeout=timeout,
                            progress_bar=progress)
        _write_stripped(tmp, dst)
    except PapermillExecutionError as err:
        failed = failed_path(dst)
        if tmp.exists():
            _write_stripped(tmp, failed)
        evalue = (str(err.evalue).strip().splitlines() or [""])[0]
        raise NotebookError(f"{src} failed in cell {err.exec_count}: {err.ename}: {evalue} (the partial run is in "
                            f"{failed}; {dst} was left as it was)", err.exec_count, err.ename, evalue) from None
    finally:
        tmp.unlink(missing_ok=True)
    failed_path(dst).unlink(missing_ok=True)
    return dst

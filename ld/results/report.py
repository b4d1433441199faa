"""Batch reports: execute the analysis notebooks with papermill and render every notebook of a profile
to self-contained HTML (figures embedded), with an index page linking them."""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import nbformat

from ld.errors import LDError
from ld.io import atomic_write_text
from ld.results.notebooks import execute_notebook

# (notebook, executed by `ld report`?): the table notebook is executed by the pipeline's `table` stage.
REPORTS: tuple[tuple[str, bool], ...] = (("runs_table", False), ("ambiguity", True), ("compare_runs", True))


class ReportError(LDError):
    """One or more notebooks failed; the others' reports were written."""


def render_html(notebook: str | Path) -> str:
    """An executed notebook as one HTML page, images embedded as data URIs."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nbformat.read(notebook, as_version=4))
    return body


def _failure(err: Exception) -> str:
    count = getattr(err, "exec_count", None)
    name, value = getattr(err, "ename", type(err).__name__), getattr(err, "evalue", str(err))
    return f"cell {count}: {name}: {value}" if count is not None else f"{name}: {value}"


def build_reports(profile: str, out_dir: str | Path, parameters: dict[str, Any] | None = None,
                  notebooks_dir: str | Path = "notebooks", timeout: int = 1800) -> Path:
    """Execute and render the profile's reports into ``out_dir``; returns ``out_dir/index.html``.

    Executed notebooks go to ``results/<profile>/notebooks/``. A failing notebook does not stop the
    others; after all of them a :class:`ReportError` names each failed notebook and cell.
    """
    out_dir = Path(out_dir)
    executed_dir = Path("results") / profile / "notebooks"
    parameters = {"profile": profile, **(parameters or {})}
    written, failed = [], {}
    for name, execute in REPORTS:
        executed = executed_dir / f"{name}.ipynb"
        try:
            if execute:
                execute_notebook(Path(notebooks_dir) / f"{name}.ipynb", executed, parameters, timeout=timeout)
            elif not executed.is_file():
                raise FileNotFoundError(f"{executed} does not exist: run the `table` stage first (dvc repro)")
        except Exception as err:  # papermill raises PapermillExecutionError with the failing cell
            failed[name] = _failure(err)
        if executed.is_file():  # a failed notebook is still rendered, up to its failing cell
            atomic_write_text(out_dir / f"{name}.html", render_html(executed))
            written.append(name)
    def status(n: str) -> str:
        return f" (failed: {html.escape(failed[n])})" if n in failed else ""

    items = "\n".join(f'<li><a href="{n}.html">{n}</a>{status(n)}</li>' for n in written)
    items += "".join(f"<li>{n}: not written ({html.escape(m)})</li>" for n, m in failed.items() if n not in written)
    index = atomic_write_text(out_dir / "index.html", f"<!doctype html><html><head><meta charset='utf-8'>"
                              f"<title>ld-workspace reports: {profile}</title></head><body>"
                              f"<h1>ld-workspace reports, profile <code>{profile}</code></h1><ul>\n{items}\n</ul>"
                              f"</body></html>\n")
    if failed:
        raise ReportError("notebooks failed: " + "; ".join(f"{n} ({m})" for n, m in failed.items()) +
                          f". The other reports are in {out_dir}.")
    return index

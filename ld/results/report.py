"""Batch reports: execute the analysis notebooks with papermill and render the profile's notebooks to
self-contained HTML (figures embedded), with an index page that opens with the headline table and the
seed study's figure.

Everything a report writes is under its output folder ``out`` (default ``results/<profile>``):
``out/reports/`` (the HTML pages and ``index.html``), ``out/notebooks/`` (the executed analysis
notebooks) and ``out/figures/<figures>/`` (their figures, the notebooks' ``figures_dir`` parameter).
The notebooks executed by other stages (run table, paper tables, seed study, claims, and the ambiguity
analysis) are read from ``results/<profile>/notebooks/`` and only rendered; the analysis notebooks
(``figures`` set) are executed again when ``out`` is another folder (``ld report --out DIR``).
"""
from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from ld.errors import LDError
from ld.io import atomic_write_text
from ld.layout import results_dir
from ld.results.notebooks import NotebookError, execute_notebook, failed_path


@dataclass(frozen=True)
class Report:
    """One page of the report: an executed notebook rendered to ``<name>.html``.

    ``figures``: the figure folder of an analysis notebook, which the report executes into its output
    folder (its ``figures_dir``), None for a notebook only rendered; ``stage``: the dvc.yaml stage that
    executes it in ``results/<profile>`` (a page with a stage is only rendered there)."""
    name: str
    title: str
    figures: str | None = None
    stage: str | None = None

    def executed(self, out: Path, results: Path) -> bool:
        """Whether the report executes this page's notebook into ``out`` (else renders ``results``')."""
        return self.figures is not None and (self.stage is None or out != results)


REPORTS: tuple[Report, ...] = (
    Report("runs_table", "Every run: COCO and VOC metrics", stage="table"),
    Report("claims", "The paper's claims, tested: one row per claim, with a verdict", stage="claims"),
    Report("ambiguity", "Localization ambiguity: the edge distributions of teacher, baseline and LD student",
           figures="ambiguity", stage="ambiguity"),
    Report("compare_runs", "Training curves and AP of every run", figures="compare"),
    Report("seeds_table", "The seed study: mean and spread over seeds", stage="seeds_table"),
)


def paper_reports(tables: list[str]) -> tuple[Report, ...]:
    """The paper tables' pages (``paper_table@<table>`` executes ``paper_<table>.ipynb``)."""
    return tuple(Report(f"paper_{t}", f"Paper table {t}: the paper's numbers beside ours", stage=f"paper_table@{t}")
                 for t in tables)


class ReportError(LDError):
    """One or more notebooks failed; the others' reports were written."""


# Every page: long table cells wrap (no ellipsis, no page wider than the window), the caveat stands out
PAGE_STYLE = ("table{max-width:100%}td,th{white-space:normal!important;overflow-wrap:break-word;"
              "max-width:40em;text-align:left}pre{white-space:pre-wrap}.ld-caveat{background:#fff3cd;"
              "border:1px solid #e0b000;padding:0.6em 1em;margin:0.5em 0 1em;font-family:sans-serif}")


def caveat_banner(caveat: str | None) -> str:
    """The profile's caveat (``params.yaml: profiles.<profile>.caveat``) as a banner, '' without one."""
    return f"<div class='ld-caveat'><b>Not to be read:</b> {html.escape(caveat)}</div>" if caveat else ""


def render_html(notebook: str | Path, caveat: str | None = None) -> str:
    """An executed notebook as one HTML page, images embedded as data URIs: its outputs only (no code, no
    injected parameters), long cells wrapped, the profile's ``caveat`` as a banner at its top."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    head, sep, rest = body.partition("<body")
    rest_head, close, content = rest.partition(">")
    return (head.replace("</head>", f"<style>{PAGE_STYLE}</style>\n</head>", 1) + sep + rest_head + close
            + "\n" + caveat_banner(caveat) + content)


def _failure(err: Exception) -> str:
    if isinstance(err, NotebookError):
        return f"cell {err.exec_count}: {err.ename}: {err.evalue}"
    return f"{type(err).__name__}: {err}"


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f"<img alt='{html.escape(path.name)}' src='data:image/png;base64,{data}'>"


def _html_table(csv: Path) -> str:
    """A table CSV as HTML, its cells as written (a delta keeps its sign, n/a stays n/a)."""
    import pandas as pd

    return pd.read_csv(csv, dtype=str, keep_default_na=False).to_html(index=False, border=0)


def index_page(profile: str, results: Path, pages: list[tuple[Report, bool, str | None]],
               caveat: str | None = None) -> str:
    """``index.html``: the profile's ``caveat``, the headline table (``tables/runs.csv``), the claims table,
    the seed study's figure and table, then each page with its status (``pages``: report, whether its page
    was written, its failure or None)."""
    parts = [caveat_banner(caveat), f"<h1>ld-workspace, profile <code>{html.escape(profile)}</code></h1>"]
    headline, claims, seeds_fig, seeds = (results / "tables" / "runs.csv", results / "tables" / "claims.csv",
                                          results / "figures" / "seeds_ap.png", results / "tables" / "seeds.csv")
    if headline.is_file():
        parts += ["<h2>Every run</h2>", _html_table(headline)]
    else:
        parts.append(f"<p>No run table yet ({html.escape(str(headline))}: `dvc repro table`).</p>")
    if claims.is_file():
        parts += ["<h2>The paper's claims</h2>", _html_table(claims)]
    if seeds_fig.is_file() or seeds.is_file():
        parts.append("<h2>The seed study</h2>")
        parts += [_image(seeds_fig)] if seeds_fig.is_file() else []
        parts += [_html_table(seeds)] if seeds.is_file() else []
    items = []
    for report, written, failed in pages:
        link = f'<a href="{report.name}.html">{html.escape(report.title)}</a>' if written else \
            html.escape(f"{report.title}: not written")
        items.append(f"<li>{link}" + (f" <b>(failed: {html.escape(failed)})</b>" if failed else "") + "</li>")
    parts += ["<h2>Reports</h2>", "<ul>", *items, "</ul>"]
    style = "body{font-family:sans-serif;max-width:70em;margin:2em auto}table{border-collapse:collapse}" \
            "td,th{padding:2px 8px;text-align:right}tr:nth-child(even){background:#f3f3f3}img{max-width:100%}" \
            + PAGE_STYLE
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>ld-workspace: {html.escape(profile)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


def build_reports(profile: str, out: str | Path | None = None, parameters: dict[str, Any] | None = None,
                  notebooks_dir: str | Path = "notebooks", timeout: int = 1800, paper_tables: list[str] = (),
                  only: list[str] | None = None, caveat: str | None = None) -> Path:
    """Execute and render the profile's reports under ``out`` (see the module's docstring); returns
    ``out/reports/index.html``. ``only``: these pages alone (names of :data:`REPORTS` / ``paper_<table>``);
    ``caveat``: the profile's, a banner atop every page (:func:`caveat_banner`).

    A failing notebook does not stop the others; it never replaces an executed notebook (its partial
    run is rendered instead); after all of them a :class:`ReportError` names each failed page and cell.
    """
    results = results_dir(profile)
    out = Path(out) if out is not None else results
    every = (*REPORTS, *paper_reports(list(paper_tables)))
    reports = [r for r in every if only is None or r.name in only]
    unknown = sorted(set(only or ()) - {r.name for r in reports})
    if unknown:
        raise ReportError(f"unknown report page(s) {unknown}: the pages are {[r.name for r in every]}")
    pages, failed = [], {}
    for report in reports:
        if report.executed(out, results):
            notebook = out / "notebooks" / f"{report.name}.ipynb"
            params = {"profile": profile, **(parameters or {}),
                      "figures_dir": str(out / "figures" / report.figures)}
            try:
                execute_notebook(Path(notebooks_dir) / f"{report.name}.ipynb", notebook, params, timeout=timeout)
            except LDError as err:  # NotebookError names the failing cell; a bad profile or file, the file
                failed[report.name] = _failure(err)
                notebook = failed_path(notebook) if isinstance(err, NotebookError) else None
        else:
            notebook = results / "notebooks" / f"{report.name}.ipynb"
            if not notebook.is_file():
                failed[report.name] = f"{notebook} does not exist: run the `{report.stage}` stage first (dvc repro)"
        written = notebook is not None and notebook.is_file()
        if written:  # a failed notebook is rendered up to its failing cell
            atomic_write_text(out / "reports" / f"{report.name}.html", render_html(notebook, caveat))
        pages.append((report, written, failed.get(report.name)))
    index = atomic_write_text(out / "reports" / "index.html", index_page(profile, results, pages, caveat))
    if failed:
        raise ReportError("notebooks failed: " + "; ".join(f"{n} ({m})" for n, m in failed.items()) +
                          f". The other reports are in {out / 'reports'}.")
    return index

"""What ``dvc metrics`` and ``dvc plots`` show of a profile: the headline metrics and the overlaid curves.

- ``results/<profile>/summary.json``: run -> AP, AP50, AP75 (COCO, pycocotools) and VOC_AP (the paper's
  VOC "AP"), as COCO's fractions. It is the only file dvc.yaml declares as ``metrics``, so
  ``dvc metrics diff`` and ``dvc exp show --only-changed`` compare runs in a few columns; the per-run
  files under ``results/<profile>/metrics/`` keep every number.
- ``results/<profile>/plots/train_<term>.csv``: one loss term of every run, long format (step, run,
  value), which dvc.yaml's top-level plots draw as one chart per term, a line per run;
  :func:`draw_training_curves` draws one term of many runs so that a person tells every run apart.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ld.errors import BadFileError
from ld.io import atomic_write_json, atomic_write_text
from ld.results.tables import distinct_colors, run_role

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

# summary key -> (section, key) of a run's metrics JSON (ld.engine.evaluate)
HEADLINE: dict[str, tuple[str, str]] = {"AP": ("coco", "AP"), "AP50": ("coco", "AP50"), "AP75": ("coco", "AP75"),
                                        "VOC_AP": ("voc", "AP")}


def headline(metrics: dict[str, Any]) -> dict[str, float]:
    """The headline numbers of one run's metrics (those it has: a run without VOC metrics has no VOC_AP)."""
    return {name: metrics[section][key] for name, (section, key) in HEADLINE.items()
            if key in (metrics.get(section) or {})}


def summarize(metrics_dir: str | Path, runs: list[str]) -> dict[str, dict[str, float]]:
    """``{run: headline}`` for ``runs`` in their order; a run without a metrics file is left out."""
    summary = {}
    for run in runs:
        path = Path(metrics_dir) / f"{run}.json"
        if not path.is_file():
            continue
        try:
            summary[run] = headline(json.loads(path.read_text()))
        except (json.JSONDecodeError, AttributeError, TypeError) as err:
            raise BadFileError(f"metrics file {path} is not a metrics JSON of `ld eval` ({err}); evaluate the run "
                               "again (dvc repro)") from err
    return summary


def write_summary(metrics_dir: str | Path, runs: list[str], out: str | Path) -> Path:
    """Write :func:`summarize` to ``out`` (atomically)."""
    return atomic_write_json(out, summarize(metrics_dir, runs))


# The loss terms a run logs (ld.engine.live: ``train/<term>``), each one chart of dvc.yaml's top-level plots
TERMS: tuple[str, ...] = ("loss", "loss_cls", "loss_bbox", "loss_dfl", "loss_ld", "loss_ld_vlr", "loss_kd",
                          "loss_centerness", "loss_im")


def read_curve(tsv: str | Path) -> list[tuple[int, float]]:
    """(step, value) rows of a DVCLive plot file (``plots/metrics/train/<term>.tsv``)."""
    with open(tsv, newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    return [(int(step), float(value)) for step, value in rows[1:]]


def write_curves(live_root: str | Path, runs: list[str], out_dir: str | Path) -> list[Path]:
    """``out_dir/train_<term>.csv`` for each of :data:`TERMS`: the term's curve of every run that logs it
    (``live_root/<run>/plots/metrics/train/<term>.tsv``), as ``step,run,<term>`` rows, runs in order."""
    written = []
    for term in TERMS:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["step", "run", term])
        for run in runs:
            tsv = Path(live_root) / run / "plots" / "metrics" / "train" / f"{term}.tsv"
            if tsv.is_file():
                writer.writerows((step, run, value) for step, value in read_curve(tsv))
        written.append(atomic_write_text(Path(out_dir) / f"train_{term}.csv", buffer.getvalue()))
    return written


TEACHERS_PANEL = "teachers"
BASELINE_COLOR = "black"


def curve_panels(runs: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    """The runs of a curves figure grouped into panels, panel title -> its runs (each a
    :func:`~ld.results.tables.runs_from_params` row: ``run``, ``model``, ``method``, ``teacher``): the
    teachers together in the first panel ('teachers'), then one panel per student model (its ``model``,
    e.g. 'GFocalV1 R-18 1x') in the order the runs come, its baseline first, then its distilled runs in order.
    """
    panels: dict[str, list[dict[str, str]]] = {}
    teachers = [r for r in runs if run_role(r["method"]) == "teacher"]
    if teachers:
        panels[TEACHERS_PANEL] = teachers
    for row in runs:
        if run_role(row["method"]) != "teacher":
            panels.setdefault(row["model"], []).append(row)
    return {title: sorted(rows, key=lambda r: run_role(r["method"]) != "baseline")  # stable: the order kept
            for title, rows in panels.items()}


def panel_title(panel: str, rows: list[dict[str, str]]) -> str:
    """What a panel of :func:`curve_panels` shows, in words."""
    if panel == TEACHERS_PANEL:
        return "teachers (trained without a teacher)"
    if any(run_role(r["method"]) == "baseline" for r in rows):
        return f"{panel}: its baseline (black) and its distilled students"
    return f"{panel}: distilled students (no baseline of this model drawn)"


def curve_styles(rows: list[dict[str, str]]) -> dict[str, dict[str, Any]]:
    """run -> its line's ``label``, ``color``, ``lw`` in one panel of :func:`curve_panels`: the baseline
    black and thicker, the other runs :func:`~ld.results.tables.distinct_colors`, no two alike. The label
    is the run and what it is: 'gfl_r18_1x (baseline)', 'ld_r18_gfl_r50_1x (Main LD)', a teacher's its model."""
    others = [r for r in rows if run_role(r["method"]) != "baseline"]
    colors = dict(zip((r["run"] for r in others), distinct_colors(len(others))))
    styles = {}
    for row in rows:
        role = run_role(row["method"])
        what = row["model"] if role == "teacher" else row["method"]
        styles[row["run"]] = {"label": f"{row['run']} ({what})", "color": colors.get(row["run"], BASELINE_COLOR),
                              "lw": 1.6 if role == "baseline" else 1.0, "zorder": 3 if role == "baseline" else 2}
    return styles


def draw_training_curves(curves: pd.DataFrame, runs: list[dict[str, str]], *, value: str = "loss",
                         ylabel: str = "total training loss", title: str = "", ncols: int = 2) -> Figure:
    """One loss term of many runs, readable with 20 and more: a panel per group of :func:`curve_panels`
    (the teachers, then each student model with its baseline), each run a colour of its own within its
    panel (:func:`curve_styles`), the panel's legend beside it, outside the axes. ``curves``: a
    ``train_<term>.csv`` of :func:`write_curves` (``step``, ``run``, ``value``); a run without a curve
    is left out, a panel without any curve too. Returns a Figure on an Agg canvas (not registered with
    pyplot); one empty axes saying so when no run has a curve."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    drawn = set(curves.run)
    panels = {t: [r for r in rows if r["run"] in drawn] for t, rows in curve_panels(runs).items()}
    panels = {t: rows for t, rows in panels.items() if rows}
    ncols = max(1, min(ncols, len(panels)))
    nrows = max(1, -(-len(panels) // ncols))
    fig = Figure(figsize=(7.4 * ncols, 2.3 * nrows + 0.5), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (panel, rows) in zip(axes, panels.items()):
        for run, style in curve_styles(rows).items():
            curve = curves[curves.run == run]
            ax.plot(curve.step, curve[value], **style)
        ax.set_title(panel_title(panel, rows), fontsize=9, loc="left")
        ax.set_yscale("log")  # warm-up spikes and detectors' different scales beside the curves' tails
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))  # ticks 0.5, 1, 2, 5, 10, ... written plainly
        ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("iteration", fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(which="both", labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    for ax in axes[len(panels):]:
        ax.set_axis_off()
    if not panels:
        axes[0].text(0.5, 0.5, "no run has a training curve", ha="center", va="center", transform=axes[0].transAxes)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig

"""The gain of a distillation recipe against the strength of its teacher: the same recipe (Main LD; GI
feature imitation alone) into the same student from teachers of different AP, each student's AP against its
baseline's over the seed study's seeds (the claims notebook's ``teacher_strength`` table and figure).

An audit of the mini study found the gain of GI imitation tracking the teacher-student gap (full LD + GI over
full LD: +6 AP from the 28.6 AP teacher, +1.1 from a 19.8 AP one); this sets that dependence beside LD's, on
teachers the study trains anyway: the R-50 2x teacher, the teacher assistant R-34 and the baseline R-18 itself
(as Self-LD).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ld.frames import percent, write_frame
from ld.results.claims import ap_difference

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# recipe -> its study runs, one per teacher (params.yaml study: students and imitation)
RECIPES: dict[str, tuple[str, ...]] = {
    "Main LD": ("ld_r18_gfl_r50_1x", "ld_r18_ld_r34_1x", "selfld_r18_1x"),
    "GI imitation alone": ("im_gibox_r18_gfl_r50_1x", "im_gibox_r18_ld_r34_1x", "im_gibox_r18_gfl_r18_1x"),
}
COLUMNS = ["recipe", "run", "teacher", "teacher_AP", "baseline", "n", "delta", "se", "low", "high", "test"]


def teacher_strength(summary: pd.DataFrame, per_seed: pd.DataFrame, main_seed: int,
                     recipes: dict[str, tuple[str, ...]] = RECIPES) -> pd.DataFrame:
    """One row per run of ``recipes`` that the study ran (``summary``: :func:`ld.results.study.seed_summary`;
    ``per_seed``: :func:`ld.results.study.seed_runs`): its teacher and the AP of the teacher's model (its
    ``main_seed`` one: the model every seed distils from), the baseline of its model, and the AP difference to
    it (:func:`ld.results.claims.ap_difference`: paired where the seeds start from the same weights) with its
    standard error and 95% interval (``low``, ``high``; NaN with fewer than two seeds). Fractions, not %."""
    done = per_seed[per_seed.status == "ok"]
    teacher_ap = done[done.seed == main_seed].drop_duplicates("run").set_index("run").AP
    by_run = summary.set_index("run")
    rows = []
    for recipe, runs in recipes.items():
        for run in runs:
            if run not in by_run.index or not by_run.loc[run, "baseline"] or not by_run.loc[run, "n"]:
                continue
            row = by_run.loc[run]
            diff = ap_difference(summary, per_seed, run, row.baseline)
            low, high = diff.interval() or (float("nan"), float("nan"))
            test = "" if diff.se is None else "paired t" if diff.paired else "Welch t"
            rows.append({"recipe": recipe, "run": run, "teacher": row.teacher,
                         "teacher_AP": teacher_ap.get(row.teacher, float("nan")), "baseline": row.baseline,
                         "n": int(row.n), "delta": diff.delta, "se": diff.se, "low": low, "high": high, "test": test})
    return pd.DataFrame.from_records(rows, columns=COLUMNS)


def write_teacher_strength(frame: pd.DataFrame, stem: str | Path) -> tuple[Path, Path]:
    """:func:`teacher_strength`'s frame as ``stem.csv`` / ``stem.md``, AP in % (differences signed)."""
    shown = percent(percent(frame, ["teacher_AP", "se"]), ["delta", "low", "high"], delta=True)
    return write_frame(shown.rename(columns={"se (%)": "delta se (%)", "low (%)": "95% CI low (%)",
                                             "high (%)": "95% CI high (%)"}), stem)


def draw_teacher_strength(frame: pd.DataFrame, profile: str = "") -> Figure:
    """Each recipe's AP gain over the baseline (dots with their 95% interval, in AP points) against its
    teacher's AP, one colour and line per recipe, each dot labelled with its teacher's run. ``frame``:
    :func:`teacher_strength`. Returns a Figure on an Agg canvas (not registered with pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for i, (recipe, rows) in enumerate(frame.groupby("recipe", sort=False)):
        rows = rows.dropna(subset=["teacher_AP"]).sort_values("teacher_AP")
        x, y = 100 * rows.teacher_AP, 100 * rows.delta
        low, high = (y - 100 * rows.low).fillna(0), (100 * rows.high - y).fillna(0)
        ax.errorbar(x, y, yerr=[low, high], fmt="o-", color=f"C{i}", capsize=3, label=recipe)
        for xi, yi, teacher in zip(x, y, rows.teacher):
            ax.annotate(teacher, (xi, yi), textcoords="offset points", xytext=(5, 5), fontsize=7, color=f"C{i}")
    ax.axhline(0, color="k", lw=0.8)
    ax.margins(x=0.12)  # room for the labels of the outer dots
    ax.set_xlabel("the teacher's COCO AP (%)")
    ax.set_ylabel("the student's AP minus its baseline's (points)")
    ax.set_title("Gain over the baseline against the teacher's strength (95% intervals)"
                 + (f", profile {profile}" if profile else ""), fontsize=10)
    ax.grid(alpha=0.3)
    if len(frame):
        ax.legend(fontsize=8)
    return fig

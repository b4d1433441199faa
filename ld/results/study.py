"""The seed study's tables: each study run's AP per seed, their mean and spread, and the difference of
each student to the baseline of its model (ld.engine.seed_study trains the runs; notebooks/seeds_table.ipynb
and the claims table read them), and the study's figure (:func:`draw_seed_study`)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ld.frames import PERCENT, ap_points, format_ap, percent, write_frame
from ld.layout import CONFIGS, STUDY_ONLY, config_file, eval_stage, seed_metrics, seeds_stage, study_runs
from ld.results.tables import (
    ROLE_COLORS,
    ROLES,
    describe_config,
    read_metrics_file,
    role_legend,
    runs_from_params,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SEED_METRICS: tuple[str, ...] = ("AP", "AP50", "AP75")


def study_rows(params: dict[str, Any], configs_dir: str | Path = CONFIGS) -> list[dict[str, str]]:
    """The seed study's rows, labelled: ``{role, run, teacher, section, model, method}`` for each teacher of
    a student (trained once; role 'teacher', unless it is itself a study run, as Self-LD's), then each
    baseline, each student and each run of the study only (role 'student') of ``params['study']``
    (ld.layout.study_runs)."""
    runs = study_runs(params)
    labels = {row["run"]: row for row in runs_from_params(params, configs_dir)}
    for spec in runs:  # a run of the study only: labelled from its config, as runs_from_params labels the others
        if spec["section"] == STUDY_ONLY:
            model, method = describe_config(config_file(spec["run"], configs_dir))
            labels[spec["run"]] = {"model": model, "method": method}
    studied = {r["run"] for r in runs}
    teachers = [t for t in dict.fromkeys(r["teacher"] for r in runs if r["teacher"]) if t not in studied]
    rows = [{"role": "teacher", "run": t, "teacher": labels.get(t, {}).get("teacher", ""), "section": ""}
            for t in teachers]
    rows += [{"role": "student" if r["teacher"] else "baseline", **r} for r in runs]
    return [{**row, "model": labels.get(row["run"], {}).get("model", ""),
             "method": labels.get(row["run"], {}).get("method", "")} for row in rows]


def initial_weights(metrics: dict[str, Any]) -> str | None:
    """The digest of the initial weights of the model a metrics file evaluated (``ld eval`` copies it from the
    run's config), or None (an imported teacher; a model trained before it was recorded)."""
    value = metrics.get("initial_weights")
    return value if isinstance(value, str) and value else None


def seed_runs(metrics_dir: str | Path, seeds_dir: str | Path, rows: list[dict[str, str]],
              seeds: list[int] | dict[str, list[int]], nms: str | None = None) -> pd.DataFrame:
    """One row per (run, seed) of the seed study (``rows``: :func:`study_rows`): ``seeds`` (one list for
    every run, or each run's: :func:`ld.layout.seeds_by_run`) begin with the main seed, read from the
    main pipeline's ``metrics_dir/<run>.json``, the others from ``seeds_dir/<run>/seed<k>.json``; a teacher
    has the main seed alone, a run of the study only has every seed in ``seeds_dir``. ``nms``: the seeds
    study's evaluation with that NMS (``seed<k>.<nms>.json``; the main pipeline's has none). Column
    ``seeds_stage``: True where the seeds stage trained the model (those evaluated with both NMS). Missing
    files are rows marked 'not run'; a malformed file is a :class:`BadFileError` naming the stage that
    writes it."""
    metrics_dir, seeds_dir = Path(metrics_dir), Path(seeds_dir)
    records = []
    for row in rows:
        run_seeds = seeds[row["run"]] if isinstance(seeds, dict) else seeds
        for i, seed in enumerate(run_seeds[:1] if row["role"] == "teacher" else run_seeds):
            run, by_seeds_stage = row["run"], i > 0 or row.get("section") == STUDY_ONLY
            if not by_seeds_stage and nms is not None:
                continue
            if not by_seeds_stage:  # the main pipeline's evaluation (no stage named for a teacher: trained or imported)
                path = metrics_dir / f"{run}.json"
                stage = eval_stage(run, row["teacher"]) if row["role"] != "teacher" else None
            else:
                path, stage = seed_metrics(seeds_dir / run, seed, nms), seeds_stage(run, row["section"])
            metrics = read_metrics_file(path, stage)
            values = {k: metrics["coco"].get(k) if metrics else None for k in SEED_METRICS}
            records.append({**row, "seed": seed, **values, "status": "ok" if metrics else "not run",
                            "initial_weights": initial_weights(metrics) if metrics else None,
                            "seeds_stage": by_seeds_stage})
    columns = ["role", "model", "method", "run", "teacher", "seed", *SEED_METRICS, "status", "initial_weights",
               "seeds_stage"]
    return pd.DataFrame.from_records(records, columns=columns)


def seed_runs_shown(per_seed: pd.DataFrame) -> pd.DataFrame:
    """The per-seed table of :func:`seed_runs` as people read it: AP, AP50, AP75 in % ('AP (%)', ...), and the
    first 12 hex digits of each model's initial weights (equal at a seed: the two runs are paired)."""
    shown = per_seed.drop(columns=["role", "seeds_stage"]).assign(initial_weights=per_seed.initial_weights.str[:12])
    return percent(shown, SEED_METRICS).rename(columns={"initial_weights": "initial weights"})


def welch_se(std1, n1, std2, n2):
    """The standard error ``sqrt(s1²/n1 + s2²/n2)`` of a difference of two independent means (scalars or
    Series alike)."""
    return (std1 ** 2 / n1 + std2 ** 2 / n2) ** 0.5


def seed_summary(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Mean and spread of AP per run over its seeds (``n``, mean, sample std, min, max), and the difference
    of means to the baseline of the same model (the study's baseline run with that ``model``) with its
    standard error ``sqrt(s1²/n1 + s2²/n2)``."""
    done = per_seed[per_seed.status == "ok"].astype({"AP": float})
    rows = []
    for run, group in per_seed.groupby("run", sort=False):
        ap = done.AP[done.run == run]
        rows.append({**group.iloc[0][["role", "model", "method", "run", "teacher"]].to_dict(), "n": len(ap),
                     "AP_mean": ap.mean() if len(ap) else None, "AP_std": ap.std(ddof=1) if len(ap) > 1 else None,
                     "AP_min": ap.min() if len(ap) else None, "AP_max": ap.max() if len(ap) else None})
    summary = pd.DataFrame.from_records(rows)
    baselines = summary[summary.role == "baseline"].drop_duplicates("model").set_index("model")
    deltas, ses, refs = [], [], []
    for row in summary.itertuples():
        base = baselines.loc[row.model] if row.role == "student" and row.model in baselines.index else None
        refs.append(base.run if base is not None else "")
        deltas.append(row.AP_mean - base.AP_mean if base is not None else None)
        ses.append(welch_se(row.AP_std, row.n, base.AP_std, base.n) if base is not None and row.n > 1 and base.n > 1
                   else None)
    summary["baseline"], summary["delta_vs_baseline"], summary["delta_se"] = refs, deltas, ses
    return summary


def pm(mean, spread, *, delta: bool = False) -> str:
    """'mean ± spread' in % (:func:`ld.results.tables.format_ap`; ``delta``: the mean signed), the mean
    alone without a spread, '' without a mean."""
    mean, spread = format_ap(mean, delta=delta), format_ap(spread)
    return mean + (f" ± {spread}" if mean and spread else "")


def write_seed_summary(summary: pd.DataFrame, stem: str | Path) -> tuple[Path, Path]:
    """The seed study's table in %: ``stem.csv`` one number a column ('AP mean (%)', 'AP std (%)', ...,
    'delta vs baseline (%)' signed, 'delta se (%)'), ``stem.md`` 'mean ± std', the range and the
    difference to the baseline of the same model as '+d ± s.e.' (no spread where a run has one seed)."""
    shown = pd.DataFrame({
        "model": summary.model, "method": summary.method.where(summary.role != "teacher", "teacher"),
        "teacher": summary.teacher, "run": summary.run, "seeds": summary.n,
        "AP mean ± std" + PERCENT: [pm(m, s) for m, s in zip(summary.AP_mean, summary.AP_std)],
        "AP range" + PERCENT: [f"{format_ap(lo)} – {format_ap(hi)}" if n else "" for lo, hi, n in
                               zip(summary.AP_min, summary.AP_max, summary.n)],
        "Δ AP vs baseline ± s.e." + PERCENT: [pm(d, se, delta=True) for d, se in
                                              zip(summary.delta_vs_baseline, summary.delta_se)]})
    table = percent(percent(summary.drop(columns=["role"]), ["AP_mean", "AP_std", "AP_min", "AP_max", "delta_se"]),
                    ["delta_vs_baseline"], delta=True)
    return write_frame(table, stem, shown)


SEED_ROLE_LABELS = {"teacher": "teacher (trained once: one seed)", "baseline": "baseline (no teacher)",
                    "student": "distilled student"}


def draw_seed_study(per_seed: pd.DataFrame, summary: pd.DataFrame, profile: str = "") -> Figure:
    """The seed study's figure: per run of ``summary`` (:func:`seed_summary`, in its order) its AP per seed
    (dots, side by side in seed order) and their mean (a black bar), coloured by the run's role
    (:data:`~ld.results.tables.ROLE_COLORS`: teachers grey, baselines blue, distilled students green) with
    a legend saying so, beside the axes; a thin line between two roles. ``per_seed``: :func:`seed_runs`.
    Returns a Figure on an Agg canvas (not registered with pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    done = per_seed[per_seed.status == "ok"]
    fig = Figure(figsize=(max(6.0, 0.42 * len(summary) + 3.0), 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for i, row in enumerate(summary.itertuples()):
        ap = done.AP[done.run == row.run].map(ap_points).tolist()
        offsets = [0.09 * (k - (len(ap) - 1) / 2) for k in range(len(ap))]
        ax.scatter([i + o for o in offsets], ap, color=ROLE_COLORS[row.role], alpha=0.85, s=26, zorder=5)
        if row.n:
            ax.hlines(ap_points(row.AP_mean), i - 0.3, i + 0.3, color="k", lw=2, zorder=4)
        if i and row.role != summary.role.iloc[i - 1]:
            ax.axvline(i - 0.5, color="0.7", lw=0.8)
    ax.set_xticks(range(len(summary)), summary.run, rotation=35, ha="right", fontsize=8)
    ax.set_xlim(-0.6, len(summary) - 0.4)
    ax.set_ylabel("COCO AP (%)")
    ax.set_title(f"AP per seed (dots) and its mean (bar){f', profile {profile}' if profile else ''}", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    roles = [r for r in ROLES if r in set(summary.role)]
    handles, labels = role_legend(roles, SEED_ROLE_LABELS)
    handles.append(Line2D([], [], color="k", lw=2))
    labels.append("mean over the seeds")
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    return fig

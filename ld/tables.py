"""Results tables: metrics JSON of each run -> one DataFrame -> Markdown + CSV."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from ld.io import atomic_write_text

TABLE_METRICS: tuple[str, ...] = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR100")


def runs_from_params(params: dict[str, Any]) -> list[dict[str, str]]:
    """Every run of ``params.yaml``, in table order: ``{run, method, teacher}`` each.

    Runs come from the params (never from globbing ``results/``, which may hold stale files).
    """
    distill = params.get("distill") or {}
    teachers = {spec["teacher"] for spec in distill.values()}
    rows = [{"run": run, "method": "teacher" if run in teachers else "baseline", "teacher": ""}
            for run in params.get("train") or []]
    rows += [{"run": run, "method": "LD", "teacher": spec["teacher"]} for run, spec in distill.items()]
    return rows


def metrics_table(metrics_dir: str | Path, runs: list[dict[str, str]]) -> pd.DataFrame:
    """One row per run with its COCO metrics; a run without a metrics file is marked 'not run'."""
    metrics_dir = Path(metrics_dir)
    records = []
    for row in runs:
        path = metrics_dir / f"{row['run']}.json"
        record = dict(row)
        if path.is_file():
            metrics = json.loads(path.read_text())
            record.update({k: metrics.get(k) for k in TABLE_METRICS})
            record["status"] = "ok"
        else:
            record.update({k: None for k in TABLE_METRICS})
            record["status"] = "not run"
        records.append(record)
    return pd.DataFrame.from_records(records, columns=["run", "method", "teacher", *TABLE_METRICS, "status"])


def _percent(value) -> str:
    if value is None or pd.isna(value):
        return ""
    return "n/a" if value < 0 else f"{100 * value:.1f}"


def write_table(df: pd.DataFrame, stem: str | Path) -> tuple[Path, Path]:
    """Write ``stem.md`` and ``stem.csv`` atomically.

    The Markdown shows metrics in percent, 'n/a' where COCO has no ground truth of that size
    (pycocotools' -1) and nothing for runs not run; the CSV keeps the exact values.
    """
    stem = Path(stem)
    shown = df.copy()
    for col in TABLE_METRICS:
        shown[col] = [_percent(v) for v in df[col]]
    md = atomic_write_text(stem.with_suffix(".md"), shown.to_markdown(index=False) + "\n")
    csv = atomic_write_text(stem.with_suffix(".csv"), df.to_csv(index=False, float_format="%.6f"))
    return md, csv


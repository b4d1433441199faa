"""Results tables: metrics JSON of each run -> one DataFrame -> Markdown + CSV."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from ld.io import atomic_write_text

TABLE_METRICS: tuple[str, ...] = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR100")


DISTILL_TERMS = (("ld_main", "Main LD"), ("ld_vlr", "VLR LD"), ("kd_main", "Main KD"))


def describe_config(config: str | Path) -> tuple[str, str]:
    """``(model, method)`` of a row config, e.g. ``('GFocalV1 R-18 1x', 'Main LD + VLR LD')``;
    the method is empty for a detector trained without distillation."""
    from mmengine.config import Config

    cfg = Config.fromfile(str(config))
    head = cfg.model.bbox_head
    family = "GFocalV2" if "v2" in head.type else "GFocalV1"
    model = f"{family} R-{cfg.model.backbone.depth} {cfg.get('schedule', '1x')}"
    method = " + ".join(label for key, label in DISTILL_TERMS if head.get(key, {}).get("enabled"))
    return model, method


def runs_from_params(params: dict[str, Any], configs_dir: str | Path = "pipelines/configs") -> list[dict[str, str]]:
    """Every run of ``params.yaml``, in table order: ``{run, model, method, teacher}`` each.

    Runs come from the params (never from globbing ``results/``, which may hold stale files). A
    trained run is the 'baseline' of the distilled runs of the same model, else a 'teacher' if it
    teaches; a distilled run's method lists its LD terms, marked 'Self-LD' when the teacher is the
    same model.
    """
    configs_dir = Path(configs_dir)
    distill = params.get("distill") or {}
    teachers = {spec["teacher"] for spec in distill.values()}
    models = {run: describe_config(configs_dir / f"{run}.py") for run in [*(params.get("train") or []), *distill]}
    distilled_models = {models[run][0] for run in distill}
    rows = [{"run": run, "model": models[run][0], "teacher": "",
             "method": "teacher" if run in teachers and models[run][0] not in distilled_models else "baseline"}
            for run in params.get("train") or []]
    for run, spec in distill.items():
        model, method = models[run]
        if models.get(spec["teacher"], ("",))[0] == model:
            method = f"Self-LD ({method})"
        rows.append({"run": run, "model": model, "method": method, "teacher": spec["teacher"]})
    return rows


def _read_metrics(metrics_dir: Path, run: str) -> dict[str, float] | None:
    """The COCO metrics of a run's metrics file (``{"coco": {...}, "voc": {...}}``), if it exists."""
    path = metrics_dir / f"{run}.json"
    return json.loads(path.read_text())["coco"] if path.is_file() else None


def metrics_table(metrics_dir: str | Path, runs: list[dict[str, str]]) -> pd.DataFrame:
    """One row per run with its COCO metrics and its teacher's AP; a run without a metrics file is
    marked 'not run' and left empty."""
    metrics_dir = Path(metrics_dir)
    records = []
    for row in runs:
        metrics = _read_metrics(metrics_dir, row["run"])
        teacher = _read_metrics(metrics_dir, row["teacher"]) if row["teacher"] else None
        record = {**row, **{k: (metrics or {}).get(k) for k in TABLE_METRICS},
                  "teacher_AP": (teacher or {}).get("AP"), "status": "ok" if metrics else "not run"}
        records.append(record)
    return pd.DataFrame.from_records(records, columns=["run", "model", "method", "teacher", *TABLE_METRICS,
                                                      "teacher_AP", "status"])


def _percent(value) -> str:
    if value is None or pd.isna(value):
        return ""
    return "n/a" if value < 0 else f"{100 * value:.1f}"


def write_table(df: pd.DataFrame, stem: str | Path) -> tuple[Path, Path]:
    """Write ``stem.md`` and ``stem.csv`` atomically.

    The Markdown shows metrics in percent, 'n/a' where COCO has no ground truth of that size
    (pycocotools' -1) and nothing for runs not run; the CSV keeps the exact values.
    """
    shown = df.copy()
    for col in (*TABLE_METRICS, "teacher_AP"):
        shown[col] = [_percent(v) for v in df[col]]
    return write_frame(df, stem, shown)


def write_frame(df: pd.DataFrame, stem: str | Path, shown: pd.DataFrame | None = None) -> tuple[Path, Path]:
    """Write ``stem.csv`` (exact values) and ``stem.md`` (``shown``, default ``df``), atomically."""
    stem = Path(stem)
    md = atomic_write_text(stem.with_suffix(".md"), (df if shown is None else shown).to_markdown(index=False) + "\n")
    csv = atomic_write_text(stem.with_suffix(".csv"), df.to_csv(index=False, float_format="%.6f"))
    return md, csv


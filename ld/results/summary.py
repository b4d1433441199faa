"""What ``dvc metrics`` and ``dvc plots`` show of a profile: the headline metrics and the overlaid curves.

- ``results/<profile>/summary.json``: run -> AP, AP50, AP75 (COCO, pycocotools) and VOC_AP (the paper's
  VOC "AP"), as COCO's fractions. It is the only file dvc.yaml declares as ``metrics``, so
  ``dvc metrics diff`` and ``dvc exp show --only-changed`` compare runs in a few columns; the per-run
  files under ``results/<profile>/metrics/`` keep every number.
- ``results/<profile>/plots/train_<term>.csv``: one loss term of every run, long format (step, run,
  value), which dvc.yaml's top-level plots draw as one chart per term, a line per run.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from ld.errors import BadFileError
from ld.io import atomic_write_json, atomic_write_text

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

"""The LD paper's tables as data: each row's teacher, student, schedule, batch, the numbers the upstream
README reports (HikariTJU/LD; COCO val or test-dev, VOC07 test with COCO-style AP), and the config of
``pipelines/configs`` that reproduces it.

A table here is what its notebook compares against: ``paper_table`` joins the paper's numbers with a
profile's metrics (``results/<profile>/metrics/<run>.json``) and marks the rows that profile did not
run; ``runs_for`` gives the ``train`` / ``distill`` lists that run a table's rows (``ld paper run``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from ld.errors import ConfigError
from ld.results.tables import read_metrics

# (teacher label or "", student label, schedule, batch, {metric: paper value in %}, our run, its teacher run)
Row = tuple[str, str, str, int, dict[str, float], str, str]


def _m(ap, ap50=None, ap75=None, ar100=None) -> dict[str, float]:
    values = {"AP": ap, "AP50": ap50, "AP75": ap75, "AR100": ar100}
    return {k: v for k, v in values.items() if v is not None}


TABLES: dict[str, dict[str, Any]] = {
    "gflv1_coco": {
        "title": "GFocalV1 with LD on COCO (val2017)", "profile": "coco", "split": "COCO val2017",
        "rows": [
            ("", "R-18", "1x", 6, _m(35.8, 53.1, 38.2), "gfl_r18_1x", ""),
            ("R-101", "R-18", "1x", 6, _m(36.5, 52.9, 39.3), "ld_r18_gfl_r101_1x", "gfl_r101_2x"),
            ("", "R-34", "1x", 6, _m(38.9, 56.6, 42.2), "gfl_r34_1x", ""),
            ("R-101", "R-34", "1x", 6, _m(39.8, 56.6, 43.1), "ld_r34_gfl_r101_1x", "gfl_r101_2x"),
            ("", "R-50", "1x", 6, _m(40.1, 58.2, 43.1), "gfl_r50_1x", ""),
            ("R-101", "R-50", "1x", 6, _m(41.1, 58.7, 44.9), "ld_r50_gfl_r101_1x", "gfl_r101_2x"),
            ("", "R-101", "2x", 6, _m(44.6, 62.9, 48.4), "gfl_r101_2x", ""),
            ("R-101-DCN", "R-101", "2x", 6, _m(45.4, 63.1, 49.5), "ld_r101_gfl_r101_dcn_2x", "gfl_r101_dcn_2x"),
        ]},
    "selfld_coco": {
        "title": "GFocalV1 with Self-LD on COCO (val2017)", "profile": "coco", "split": "COCO val2017",
        "rows": [
            ("", "R-18", "1x", 6, _m(35.8, 53.1, 38.2), "gfl_r18_1x", ""),
            ("R-18", "R-18", "1x", 6, _m(36.1, 52.9, 38.5), "selfld_r18_1x", "gfl_r18_1x"),
            ("", "R-50", "1x", 6, _m(40.1, 58.2, 43.1), "gfl_r50_1x", ""),
            ("R-50", "R-50", "1x", 6, _m(40.6, 58.2, 43.8), "selfld_r50_1x", "gfl_r50_1x"),
            ("", "X-101-32x4d-DCN", "1x", 4, _m(46.9, 65.4, 51.1), "gfl_x101_dcn_1x", ""),
            ("X-101-32x4d-DCN", "X-101-32x4d-DCN", "1x", 4, _m(47.5, 65.8, 51.8), "selfld_x101_dcn_1x",
             "gfl_x101_dcn_1x"),
        ]},
    "gflv2_coco": {
        "title": "GFocalV2 with LD on COCO (paper: test-dev; ours: the profile's validation split)",
        "profile": "coco", "split": "COCO test-dev",
        "rows": [
            ("", "R-50", "2x", 16, _m(44.4, 62.3, 48.5, 62.4), "gflv2_r50_2x", ""),
            ("R-101", "R-50", "2x", 16, _m(44.8, 62.4, 49.0, 63.1), "ld_gflv2_r50_gflv2_r101_2x", "gflv2_r101_2x"),
            ("", "R-101", "2x", 16, _m(46.0, 64.1, 50.2, 63.5), "gflv2_r101_2x", ""),
            ("R-101-DCN", "R-101", "2x", 16, _m(46.8, 64.5, 51.1, 64.3), "ld_gflv2_r101_gflv2_r101_dcn_2x",
             "gflv2_r101_dcn_2x"),
            ("", "R-101-DCN", "2x", 16, _m(48.2, 66.6, 52.6, 64.4), "gflv2_r101_dcn_2x", ""),
            ("R2-101-DCN", "R-101-DCN", "2x", 16, _m(49.1, 67.1, 53.7, 65.6), "ld_gflv2_r101_dcn_gflv2_r2_101_dcn_2x",
             "gflv2_r2_101_dcn_2x"),
            ("", "X-101-32x4d-DCN", "2x", 16, _m(49.0, 67.6, 53.4, 64.7), "gflv2_x101_dcn_2x", ""),
            ("R2-101-DCN", "X-101-32x4d-DCN", "2x", 16, _m(50.2, 68.3, 54.9, 66.3),
             "ld_gflv2_x101_dcn_gflv2_r2_101_dcn_2x", "gflv2_r2_101_dcn_2x"),
            ("", "R2-101-DCN", "2x", 16, _m(50.5, 68.9, 55.1, 66.2), "gflv2_r2_101_dcn_2x", ""),
            ("R2-101-DCN", "R2-101-DCN", "2x", 16, _m(51.0, 69.1, 55.9, 66.8), "selfld_gflv2_r2_101_dcn_2x",
             "gflv2_r2_101_dcn_2x"),
        ]},
    "voc": {
        "title": "GFocalV1 with LD on VOC (07+12 trainval -> VOC07 test, COCO-style AP, 4 epochs; the teachers "
                 "are separate 16-epoch runs)",
        "profile": "voc", "split": "VOC2007 test",
        "rows": [
            ("", "R-18", "4 ep", 6, _m(51.8, 75.8, 56.3), "gfl_r18_1x", ""),
            ("R-101", "R-18", "4 ep", 6, _m(53.0, 75.9, 57.6), "ld_r18_gfl_r101_1x", "gfl_r101_2x"),
            ("", "R-50", "4 ep", 6, _m(55.8, 79.0, 60.7), "gfl_r50_1x", ""),
            ("R-101", "R-50", "4 ep", 6, _m(56.1, 78.5, 61.2), "ld_r50_gfl_r101_1x", "gfl_r101_2x"),
            ("", "R-34", "4 ep", 6, _m(55.7, 78.9, 60.6), "gfl_r34_1x", ""),
            ("R-101-DCN", "R-34", "4 ep", 6, _m(56.7, 78.4, 62.1), "ld_r34_gfl_r101_dcn_1x", "gfl_r101_dcn_2x"),
            ("", "R-101", "4 ep", 6, _m(57.6, 80.4, 62.7), "gfl_r101_1x", ""),
            ("R-101-DCN", "R-101", "4 ep", 6, _m(58.4, 80.2, 63.7), "ld_r101_gfl_r101_dcn_1x", "gfl_r101_dcn_2x"),
        ]},
    "full_ld_coco": {
        "title": "Full LD (Main LD + VLR LD + Main KD) on COCO (val2017), the upstream repository's later rows",
        "profile": "coco", "split": "COCO val2017",
        "rows": [
            ("", "R-18", "1x", 6, _m(35.8), "gfl_r18_1x", ""),
            ("R-101", "R-18", "1x", 6, _m(37.5), "ld_full_r18_gfl_r101_1x", "gfl_r101_2x"),
            ("", "R-34", "1x", 6, _m(38.9), "gfl_r34_1x", ""),
            ("R-101", "R-34", "1x", 6, _m(41.0), "ld_full_r34_gfl_r101_1x", "gfl_r101_2x"),
            ("", "R-50", "1x", 6, _m(40.1), "gfl_r50_1x", ""),
            ("R-101", "R-50", "1x", 6, _m(42.1), "ld_full_r50_gfl_r101_1x", "gfl_r101_2x"),
        ]},
}
METRICS = ("AP", "AP50", "AP75", "AR100")


def table_spec(name: str) -> dict[str, Any]:
    if name not in TABLES:
        raise ConfigError(f"unknown paper table {name!r}; tables: {sorted(TABLES)}")
    return TABLES[name]


def runs_for(names: list[str]) -> dict[str, Any]:
    """``{"train": [...], "distill": {run: {teacher}}}`` that trains every row of the tables ``names``
    (teachers first, each run once), in ``params.yaml``'s format."""
    train, distill = [], {}
    for name in names:
        for _, _, _, _, _, run, teacher in table_spec(name)["rows"]:
            if teacher:
                distill[run] = {"teacher": teacher}
                if teacher not in train and teacher not in distill:
                    train.append(teacher)
            elif run not in train:
                train.append(run)
    # a teacher that is itself distilled (none in the paper's tables) would be listed by distill
    return {"train": [r for r in train if r not in distill], "distill": distill}


def paper_table(name: str, metrics_dir: str | Path) -> pd.DataFrame:
    """The paper's rows of table ``name`` with, per metric, the paper's value, ours (in %, from
    ``metrics_dir/<run>.json``) and ours minus the paper's; rows without a metrics file are 'not run'."""
    metrics_dir = Path(metrics_dir)
    records = []
    for teacher, student, schedule, batch, paper, run, teacher_run in table_spec(name)["rows"]:
        path = metrics_dir / f"{run}.json"
        ours = read_metrics(path)  # None if not run; a damaged file is an error naming it
        found = json.loads(path.read_text()) if ours is not None else {}
        record = {"teacher": teacher or "--", "student": student, "schedule": schedule, "batch": batch, "run": run,
                  "teacher_run": teacher_run}
        for metric in METRICS:
            value = paper.get(metric)
            mine = None if ours is None or metric not in ours else round(100 * ours[metric], 1)
            record[f"paper_{metric}"] = value
            record[f"ours_{metric}"] = mine
            record[f"diff_{metric}"] = None if value is None or mine is None else round(mine - value, 1)
        record["published_AP"] = found.get("published", {}).get("AP")  # an imported teacher's own claim
        record["status"] = "ok" if ours is not None else "not run in this profile"
        records.append(record)
    reported = {m for row in table_spec(name)["rows"] for m in row[4]}
    columns = [c for c in records[0] if not c.startswith(("paper_", "ours_", "diff_")) or c.split("_")[1] in reported]
    if all(r["published_AP"] is None for r in records):
        columns.remove("published_AP")
    return pd.DataFrame.from_records(records, columns=columns)

import json
import re

import pandas as pd
import pytest

from ld.results.tables import metrics_table, runs_from_params, write_table

PARAMS = {"train": ["gfl_r50_2x", "gfl_r18_1x"], "distill": {"ld_r18_gfl_r50_1x": {"teacher": "gfl_r50_2x"}}}


@pytest.fixture(autouse=True)
def _configs(repo_root):
    return repo_root


def test_runs_come_from_params_with_their_roles():
    params = {"train": ["gfl_r50_2x", "gfl_r18_1x"],
              "distill": {"ld_full_r18_gfl_r50_1x": {"teacher": "gfl_r50_2x"},
                          "selfld_r18_1x": {"teacher": "gfl_r18_1x"}}}
    rows = runs_from_params(params)
    assert [(r["run"], r["model"], r["method"], r["teacher"]) for r in rows] == [
        ("gfl_r50_2x", "GFocalV1 R-50 2x", "teacher", ""),
        ("gfl_r18_1x", "GFocalV1 R-18 1x", "baseline", ""),  # teaches Self-LD, but is R-18's baseline
        ("ld_full_r18_gfl_r50_1x", "GFocalV1 R-18 1x", "Main LD + VLR LD + Main KD", "gfl_r50_2x"),
        ("selfld_r18_1x", "GFocalV1 R-18 1x", "Self-LD (Main LD)", "gfl_r18_1x")]


def test_an_imported_teacher_is_a_run_of_its_own():
    params = {"train": ["gfl_r18_1x"], "teachers": {"gfl_r101_2x": {"checkpoint": "x.pth"}},
              "distill": {"ld_r18_gfl_r101_1x": {"teacher": "gfl_r101_2x"}}}
    rows = runs_from_params(params)
    assert [(r["run"], r["method"], r["teacher"]) for r in rows] == [
        ("gfl_r18_1x", "baseline", ""), ("gfl_r101_2x", "imported teacher", ""),
        ("ld_r18_gfl_r101_1x", "Main LD", "gfl_r101_2x")]


def test_missing_metrics_are_marked_not_run_and_stale_files_ignored(tmp_path):
    (tmp_path / "gfl_r18_1x.json").write_text(json.dumps({"coco": {
        "AP": 0.25, "AP50": 0.5, "AP75": 0.2, "APs": 0.1, "APm": 0.3, "APl": -1.0, "AR100": 0.4}}))
    (tmp_path / "stale_run.json").write_text(json.dumps({"coco": {"AP": 0.9}}))
    df = metrics_table(tmp_path, runs_from_params(PARAMS))
    assert list(df.run) == ["gfl_r50_2x", "gfl_r18_1x", "ld_r18_gfl_r50_1x"]
    assert list(df.status) == ["not run", "ok", "not run"]
    assert df.loc[1, "AP"] == 0.25 and pd.isna(df.loc[0, "AP"])


def test_distilled_rows_show_their_teachers_ap(tmp_path):
    for run, ap in (("gfl_r50_2x", 0.5), ("ld_r18_gfl_r50_1x", 0.3)):
        (tmp_path / f"{run}.json").write_text(json.dumps({"coco": {"AP": ap}}))
    df = metrics_table(tmp_path, runs_from_params(PARAMS)).set_index("run")
    assert df.loc["ld_r18_gfl_r50_1x", "teacher_AP"] == 0.5
    assert pd.isna(df.loc["gfl_r18_1x", "teacher_AP"])


def test_write_table_writes_markdown_in_percent_and_exact_csv(tmp_path):
    (tmp_path / "gfl_r18_1x.json").write_text(json.dumps({"coco": dict.fromkeys(
        ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR100"], 0.4321)}))
    df = metrics_table(tmp_path, runs_from_params(PARAMS))
    md, csv = write_table(df, tmp_path / "tables" / "slice")
    assert re.search(r"\| gfl_r18_1x +\| GFocalV1 R-18 1x +\| baseline +\| +\| +43\.2 \|", md.read_text())
    back = pd.read_csv(csv)
    assert back.loc[1, "AP"] == 0.4321 and back.loc[0, "status"] == "not run"


def test_size_range_without_ground_truth_reads_n_a(tmp_path):
    (tmp_path / "gfl_r18_1x.json").write_text(json.dumps({"coco": {**dict.fromkeys(
        ["AP", "AP50", "AP75", "APs", "APm", "AR100"], 0.5), "APl": -1.0}}))
    md, _ = write_table(metrics_table(tmp_path, runs_from_params(PARAMS)), tmp_path / "t")
    row = next(line for line in md.read_text().splitlines() if "gfl_r18_1x" in line)
    assert "n/a" in row and "-100" not in row

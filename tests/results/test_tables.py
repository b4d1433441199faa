import json
import re

import pandas as pd
import pytest
from matplotlib.colors import to_rgb

from ld.frames import ap_points, format_ap, percent, write_frame
from ld.results.tables import (
    ROLE_COLORS,
    distinct_colors,
    metrics_table,
    run_role,
    runs_from_params,
    runs_shown,
    wrap_title,
)

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


def test_ap_reads_as_the_paper_prints_it_percent_with_one_decimal():
    assert format_ap(0.40123) == "40.1" and format_ap(0.4) == "40.0" and format_ap(1.0) == "100.0"
    assert ap_points(0.40123) == 40.1 and format_ap(40.1, fraction=False) == "40.1"
    assert format_ap(-1.0) == "n/a" and pd.isna(ap_points(-1.0))  # COCO: no objects of that size
    assert format_ap(None) == format_ap(float("nan")) == format_ap(pd.NA) == ""  # not run
    assert format_ap(0.8, fraction=False, delta=True) == "+0.8"
    assert format_ap(-1.7, fraction=False, delta=True) == "-1.7"  # a delta's sign is kept
    assert format_ap(-0.0004, delta=True) == "+0.0"  # no '-0.0'


def test_percent_formats_the_columns_and_names_the_unit_in_the_header():
    frame = pd.DataFrame({"run": ["a", "b"], "AP": [0.40123, None], "teacher_AP": [0.5, -1.0]})
    shown = percent(frame, ["AP", "teacher_AP"])
    assert list(shown.columns) == ["run", "AP (%)", "teacher AP (%)"]
    assert shown.values.tolist() == [["a", "40.1", "50.0"], ["b", "", "n/a"]]
    assert frame.AP[0] == 0.40123  # the data frame is left as it was


def test_runs_table_is_in_percent_in_markdown_and_csv_alike(tmp_path):
    (tmp_path / "gfl_r18_1x.json").write_text(json.dumps({"coco": {**dict.fromkeys(
        ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR100"], 0.40123), "AP": 0.4}}))
    md, csv = write_frame(runs_shown(metrics_table(tmp_path, runs_from_params(PARAMS))), tmp_path / "tables" / "runs")
    text = md.read_text()
    assert "| AP (%) | AP50 (%) |" in re.sub(" +", " ", text)
    # '40.0', not '40'
    assert re.search(r"\| gfl_r18_1x +\| GFocalV1 R-18 1x +\| baseline +\| +\| +40\.0 \| +40\.1 \|", text)
    lines = csv.read_text().splitlines()
    assert lines[0] == ("run,model,method,teacher,AP (%),AP50 (%),AP75 (%),APs (%),APm (%),APl (%),AR100 (%),"
                        "teacher AP (%),status")
    assert lines[2] == "gfl_r18_1x,GFocalV1 R-18 1x,baseline,,40.0,40.1,40.1,40.1,40.1,40.1,40.1,,ok"
    assert lines[1].endswith(",,,,,,,,,not run")  # not run: empty, never 0
    back = pd.read_csv(csv)
    assert back.loc[1, "AP50 (%)"] == 40.1


def test_size_range_without_ground_truth_reads_n_a(tmp_path):
    (tmp_path / "gfl_r18_1x.json").write_text(json.dumps({"coco": {**dict.fromkeys(
        ["AP", "AP50", "AP75", "APs", "APm", "AR100"], 0.5), "APl": -1.0}}))
    md, csv = write_frame(runs_shown(metrics_table(tmp_path, runs_from_params(PARAMS))), tmp_path / "t")
    for text in (md.read_text(), csv.read_text()):
        row = next(line for line in text.splitlines() if "gfl_r18_1x" in line)
        cells = [cell.strip() for cell in re.split("[|,]", row)]
        assert "n/a" in cells and not {"-1", "-1.0", "-100.0"} & set(cells)


# --- figures -------------------------------------------------------------------------------------------

def _is_grey(color):
    r, g, b = to_rgb(color)
    return max(r, g, b) - min(r, g, b) < 0.05  # black, greys and white alike


@pytest.mark.parametrize("n", [1, 2, 9, 10, 12, 18, 19, 20, 40])
def test_n_runs_get_n_distinct_colours_none_grey(n):
    colors = distinct_colors(n)
    assert len(colors) == n and len({to_rgb(c) for c in colors}) == n
    assert not [c for c in colors if _is_grey(c)]  # grey is a teacher's, black a baseline's
    closest = min(sum((a - b) ** 2 for a, b in zip(to_rgb(c1), to_rgb(c2))) ** 0.5
                  for i, c1 in enumerate(colors) for c2 in colors[i + 1:]) if n > 1 else 1
    assert closest > (0.1 if n <= 20 else 0), "two colours a reader cannot tell apart"


def test_a_runs_role_follows_its_method_and_teachers_alone_are_grey():
    assert [run_role(m) for m in ("teacher", "imported teacher", "baseline", "Main LD", "Self-LD (Main LD)")] == [
        "teacher", "teacher", "baseline", "student", "student"]
    assert [r for r, c in ROLE_COLORS.items() if _is_grey(c)] == ["teacher"]


def test_a_long_title_is_wrapped_to_the_figure_width():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    title = "LD for other dense detectors on COCO (val2017): RetinaNet, FCOS and ATSS with general-distribution " * 2
    assert wrap_title("short", 8) == "short"
    fig = Figure(figsize=(8, 3), layout="constrained")
    FigureCanvasAgg(fig)
    fig.add_subplot()
    text = fig.suptitle(wrap_title(title, 8, 9), fontsize=9)
    fig.canvas.draw()
    box, page = text.get_window_extent(), fig.bbox
    assert text.get_text().count("\n") >= 1 and box.x0 >= page.x0 and box.x1 <= page.x1

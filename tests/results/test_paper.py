"""The paper's tables: every row has a config that names the row's teacher, the runs of a table train
teachers before students, and the table joins the paper's numbers with ours."""
from __future__ import annotations

import json
import re

import pytest
from mmengine.config import Config

from ld.engine.train import is_distiller
from ld.errors import ConfigError
from ld.frames import write_frame
from ld.results.paper import TABLES, draw_paper_table, paper_shown, paper_table, row_labels, runs_for
from ld.results.tables import describe_config

ROWS = [(name, row) for name, spec in TABLES.items() for row in spec["rows"]]


@pytest.mark.parametrize("table,row", ROWS, ids=[f"{n}-{r[5]}" for n, r in ROWS])
def test_each_row_has_a_config_with_its_teacher_and_student(table, row, repo_root):
    teacher_label, student, schedule, _, paper, run, teacher_run = row
    cfg = Config.fromfile(f"pipelines/configs/{run}.py")
    assert is_distiller(cfg) == bool(teacher_run)
    assert cfg.get("teacher") == (teacher_run or None)
    model, _ = describe_config(f"pipelines/configs/{run}.py")
    assert model.split()[1] == student, (model, student)  # 'GFocalV1 R-18 1x' -> 'R-18'
    assert ("GFocalV2" in model) == table.startswith("gflv2")
    if schedule in ("1x", "2x"):
        assert cfg.get("schedule", "1x") == schedule
    if teacher_run:
        assert describe_config(f"pipelines/configs/{teacher_run}.py")[0].split()[1] == teacher_label
    assert 0 < paper["AP"] < 100


def test_a_rows_fields_are_named():
    from ld.results.paper import Row

    assert Row._fields == ("teacher", "student", "schedule", "batch", "paper", "run", "teacher_run")
    row = TABLES["gflv1_coco"]["rows"][1]
    assert isinstance(row, Row) and row == ("R-101", "R-18", "1x", 6, row.paper, "ld_r18_gfl_r101_1x", "gfl_r101_2x")
    assert (row.teacher, row.student, row.schedule, row.batch) == ("R-101", "R-18", "1x", 6)
    assert (row.run, row.teacher_run, row.paper["AP"]) == ("ld_r18_gfl_r101_1x", "gfl_r101_2x", 36.5)
    assert all(isinstance(r, Row) for _, r in ROWS)


def test_baseline_rows_shared_between_tables_are_written_once():
    from ld.results.paper import GFL_R18_1X, GFL_R34_1X, GFL_R50_1X

    def holding(row):
        return sorted(name for name, spec in TABLES.items() if any(r is row for r in spec["rows"]))

    assert holding(GFL_R18_1X) == ["gflv1_coco", "selfld_coco"]
    assert holding(GFL_R50_1X) == ["gflv1_coco", "imitation_coco", "selfld_coco"]
    assert holding(GFL_R34_1X) == ["gflv1_coco"]
    full = {r.run: r for r in TABLES["full_ld_coco"]["rows"] if not r.teacher_run}
    for shared in (GFL_R18_1X, GFL_R34_1X, GFL_R50_1X):  # the full-LD table reports their AP alone
        assert full[shared.run] == shared._replace(paper={"AP": shared.paper["AP"]})
    # no COCO val2017 table writes its own copy of a baseline another one has
    coco_val = [r for spec in TABLES.values() if spec["split"] == "COCO val2017" for r in spec["rows"]]
    for row in coco_val:
        for other in coco_val:
            if not row.teacher_run and row.run == other.run:
                assert row._replace(paper=None) == other._replace(paper=None)
                assert row.paper["AP"] == other.paper["AP"]
                assert row is other or row.paper.keys() != other.paper.keys()


def test_a_tables_runs_put_teachers_in_train_and_students_in_distill():
    runs = runs_for(["gflv1_coco"])
    assert runs["train"] == ["gfl_r18_1x", "gfl_r101_2x", "gfl_r34_1x", "gfl_r50_1x", "gfl_r101_dcn_2x"]
    assert runs["distill"]["ld_r101_gfl_r101_dcn_2x"] == {"teacher": "gfl_r101_dcn_2x"}
    assert len(runs["distill"]) == 4
    both = runs_for(["selfld_coco", "voc"])
    assert "gfl_x101_dcn_1x" in both["train"] and both["distill"]["selfld_r50_1x"] == {"teacher": "gfl_r50_1x"}
    with pytest.raises(ConfigError, match="unknown paper table"):
        runs_for(["table_9"])


def test_paper_table_gives_ours_and_the_difference_and_marks_rows_not_run(tmp_path):
    (tmp_path / "gfl_r18_1x.json").write_text(json.dumps({"coco": {"AP": 0.3412, "AP50": 0.5, "AP75": 0.36}}))
    frame = paper_table("gflv1_coco", tmp_path)
    first = frame.iloc[0]
    assert first.ours_AP == 34.1 and first.diff_AP == pytest.approx(34.1 - 35.8) and first.status == "ok"
    assert (frame.status[1:] == "not run in this profile").all() and frame.ours_AP[1:].isna().all()
    full = paper_table("full_ld_coco", tmp_path)  # the paper reports AP alone there
    assert "paper_AP50" not in full and list(full.paper_AP) == [35.8, 37.5, 38.9, 41.0, 40.1, 42.1]


def test_paper_table_shows_paper_ours_and_signed_difference_in_percent(tmp_path):
    (tmp_path / "gfl_r18_1x.json").write_text(json.dumps({"coco": {"AP": 0.3663, "AP50": 0.5, "AP75": 0.38149}}))
    shown = paper_shown(paper_table("gflv1_coco", tmp_path))
    assert list(shown.columns[5:8]) == ["paper AP (%)", "ours AP (%)", "diff AP (%)"]
    assert "teacher_run" not in shown
    first = shown.iloc[0]
    assert (first["paper AP (%)"], first["ours AP (%)"], first["diff AP (%)"]) == ("35.8", "36.6", "+0.8")
    assert (first["paper AP50 (%)"], first["ours AP50 (%)"], first["diff AP50 (%)"]) == ("53.1", "50.0", "-3.1")
    assert (first["ours AP75 (%)"], first["diff AP75 (%)"]) == ("38.1", "-0.1")
    not_run = shown.iloc[1]
    assert (not_run["paper AP (%)"], not_run["ours AP (%)"], not_run["diff AP (%)"]) == ("36.5", "", "")
    md, csv = write_frame(shown, tmp_path / "paper_gflv1_coco")
    assert "| 35.8 | 36.6 | +0.8 |" in re.sub(" +", " ", md.read_text())
    assert csv.read_text().splitlines()[1].startswith("--,R-18,1x,6,gfl_r18_1x,35.8,36.6,+0.8,53.1,50.0,-3.1,")


@pytest.mark.parametrize("run", ["gfl_r101_dcn_2x", "gfl_x101_dcn_1x", "gflv2_r2_101_dcn_2x"])
def test_the_large_backbones_build_and_run_forward(run, repo_root, tmp_path):
    """DCN (mmcv's op, CPU here), ResNeXt-101 32x4d and Res2Net-101 are available in this stack."""
    import torch
    from mmdet.registry import MODELS

    from ld.engine.train import build_train_config
    from ld.profiles import load_params

    cfg = build_train_config(f"pipelines/configs/{run}.py", load_params(), profile="smoke", work_root=tmp_path)
    model = MODELS.build(cfg.model).eval()
    with torch.no_grad():
        cls, reg = model.bbox_head(model.extract_feat(torch.randn(1, 3, 96, 96)))  # DCN: c5 >= its 3x3 kernel
    assert reg[0].shape[1] == 4 * (cfg.model.bbox_head.reg_max + 1)


def test_paper_run_prints_an_experiment_that_replaces_the_runs(capsys):
    from ld.cli import main

    assert main(["paper", "run", "voc", "--dry-run"]) == 0
    cmd = capsys.readouterr().out.strip()
    assert cmd.startswith("dvc exp run -S profile=voc -S 'train=[gfl_r18_1x, gfl_r101_2x,")
    assert "-S ~distill -S '+distill={ld_r101_gfl_r101_dcn_1x: {teacher: gfl_r101_dcn_2x}" in cmd  # not merged
    assert cmd.endswith("-S 'paper_tables=[voc]' paper_table")


def test_an_imported_teachers_published_ap_is_shown_beside_ours(tmp_path):
    (tmp_path / "gfl_r101_2x.json").write_text(json.dumps({"coco": {"AP": 0.4466}, "published": {"AP": 44.7}}))
    frame = paper_table("gflv1_coco", tmp_path).set_index("run")
    assert frame.loc["gfl_r101_2x", "ours_AP"] == 44.7 and frame.loc["gfl_r101_2x", "published_AP"] == 44.7
    assert frame.published_AP.drop("gfl_r101_2x").isna().all()
    shown = paper_shown(frame.reset_index()).set_index("run")
    assert shown.loc["gfl_r101_2x", "published AP (%)"] == "44.7"  # in % already: not 4470.0
    assert "published_AP" not in paper_table("voc", tmp_path)  # no imported teacher there


@pytest.mark.parametrize("table", sorted(TABLES))
def test_the_figure_names_each_row_once_and_its_whole_title_fits(table, tmp_path):
    frame = paper_table(table, tmp_path)  # nothing run: every row 'not run in this profile'
    labels = row_labels(frame)
    assert len(set(labels)) == len(labels), "two rows of the figure read the same"
    fig = draw_paper_table(frame, TABLES[table]["title"], "smoke")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()] == labels
    title, page = fig._suptitle, fig.bbox
    box = title.get_window_extent(renderer)
    assert title.get_text().replace("\n", " ") == TABLES[table]["title"]
    assert page.x0 <= box.x0 and box.x1 <= page.x1 and box.y1 <= page.y1, "the title is clipped"
    assert not ax.get_legend().get_window_extent(renderer).overlaps(ax.get_window_extent(renderer))


def test_rows_that_read_alike_name_their_runs():
    labels = row_labels(paper_table("detectors_coco", "nowhere"))
    assert labels[:2] == ["R-50 (retina_r50_1x)", "R-101 -> R-50 (ld_retina_r50_retina_r101_1x)"]
    assert row_labels(paper_table("gflv1_coco", "nowhere"))[:2] == ["R-18", "R-101 -> R-18"]  # unique: short

"""The LD paper's tables as data: each row's teacher, student, schedule, batch, the numbers the upstream
README reports (HikariTJU/LD; COCO val or test-dev, VOC07 test with COCO-style AP), and the config of
``pipelines/configs`` that reproduces it. A table whose numbers come from elsewhere says where in its
``source``.

A table here is what its notebook compares against: ``paper_table`` joins the paper's numbers with a
profile's metrics (``results/<profile>/metrics/<run>.json``) and marks the rows that profile did not
run; ``runs_for`` gives the ``train`` / ``distill`` lists that run a table's rows (``ld paper run``);
``draw_paper_table`` draws the paper's AP beside ours, row by row.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pandas as pd

from ld.errors import ConfigError
from ld.frames import ap_points, percent
from ld.results.tables import read_metrics, wrap_title

if TYPE_CHECKING:
    from matplotlib.figure import Figure


class Row(NamedTuple):
    """One line of a paper table: who teaches whom, how it trained, what the paper reports, our run."""

    teacher: str  # the teacher's label as the paper prints it ("" for a baseline, trained without one)
    student: str  # the student's backbone label, e.g. "R-18"
    schedule: str  # "1x", "2x" or the VOC table's "4 ep"
    batch: int  # the paper's mini-batch (images over all GPUs)
    paper: dict[str, float]  # metric -> the paper's value in %
    run: str  # our run, the config pipelines/configs/<run>.py
    teacher_run: str  # the run that teaches ours ("" for a baseline)


def _m(ap, ap50=None, ap75=None, ar100=None) -> dict[str, float]:
    values = {"AP": ap, "AP50": ap50, "AP75": ap75, "AR100": ar100}
    return {k: v for k, v in values.items() if v is not None}


def _baseline(student: str, schedule: str, batch: int, paper: dict[str, float], run: str) -> Row:
    """A row trained without a teacher."""
    return Row(teacher="", student=student, schedule=schedule, batch=batch, paper=paper, run=run, teacher_run="")


def _ap_only(row: Row) -> Row:
    """``row`` as a table that reports AP alone gives it."""
    return row._replace(paper=_m(row.paper["AP"]))


# The GFocalV1 baselines on COCO val2017, written once: the GFocalV1, Self-LD and full-LD tables share them
# (the full-LD table reports their AP alone).
GFL_R18_1X = _baseline(student="R-18", schedule="1x", batch=6, paper=_m(35.8, 53.1, 38.2), run="gfl_r18_1x")
GFL_R34_1X = _baseline(student="R-34", schedule="1x", batch=6, paper=_m(38.9, 56.6, 42.2), run="gfl_r34_1x")
GFL_R50_1X = _baseline(student="R-50", schedule="1x", batch=6, paper=_m(40.1, 58.2, 43.1), run="gfl_r50_1x")

TABLES: dict[str, dict[str, Any]] = {
    "gflv1_coco": {
        "title": "GFocalV1 with LD on COCO (val2017)", "profile": "coco", "split": "COCO val2017",
        "rows": [
            GFL_R18_1X,
            Row(teacher="R-101", student="R-18", schedule="1x", batch=6, paper=_m(36.5, 52.9, 39.3),
                run="ld_r18_gfl_r101_1x", teacher_run="gfl_r101_2x"),
            GFL_R34_1X,
            Row(teacher="R-101", student="R-34", schedule="1x", batch=6, paper=_m(39.8, 56.6, 43.1),
                run="ld_r34_gfl_r101_1x", teacher_run="gfl_r101_2x"),
            GFL_R50_1X,
            Row(teacher="R-101", student="R-50", schedule="1x", batch=6, paper=_m(41.1, 58.7, 44.9),
                run="ld_r50_gfl_r101_1x", teacher_run="gfl_r101_2x"),
            _baseline(student="R-101", schedule="2x", batch=6, paper=_m(44.6, 62.9, 48.4), run="gfl_r101_2x"),
            Row(teacher="R-101-DCN", student="R-101", schedule="2x", batch=6, paper=_m(45.4, 63.1, 49.5),
                run="ld_r101_gfl_r101_dcn_2x", teacher_run="gfl_r101_dcn_2x"),
        ]},
    "selfld_coco": {
        "title": "GFocalV1 with Self-LD on COCO (val2017)", "profile": "coco", "split": "COCO val2017",
        "rows": [
            GFL_R18_1X,
            Row(teacher="R-18", student="R-18", schedule="1x", batch=6, paper=_m(36.1, 52.9, 38.5),
                run="selfld_r18_1x", teacher_run="gfl_r18_1x"),
            GFL_R50_1X,
            Row(teacher="R-50", student="R-50", schedule="1x", batch=6, paper=_m(40.6, 58.2, 43.8),
                run="selfld_r50_1x", teacher_run="gfl_r50_1x"),
            _baseline(student="X-101-32x4d-DCN", schedule="1x", batch=4, paper=_m(46.9, 65.4, 51.1),
                      run="gfl_x101_dcn_1x"),
            Row(teacher="X-101-32x4d-DCN", student="X-101-32x4d-DCN", schedule="1x", batch=4,
                paper=_m(47.5, 65.8, 51.8), run="selfld_x101_dcn_1x", teacher_run="gfl_x101_dcn_1x"),
        ]},
    "gflv2_coco": {
        "title": "GFocalV2 with LD on COCO (paper: test-dev; ours: the profile's validation split)",
        "profile": "coco", "split": "COCO test-dev",
        "rows": [
            _baseline(student="R-50", schedule="2x", batch=16, paper=_m(44.4, 62.3, 48.5, 62.4), run="gflv2_r50_2x"),
            Row(teacher="R-101", student="R-50", schedule="2x", batch=16, paper=_m(44.8, 62.4, 49.0, 63.1),
                run="ld_gflv2_r50_gflv2_r101_2x", teacher_run="gflv2_r101_2x"),
            _baseline(student="R-101", schedule="2x", batch=16, paper=_m(46.0, 64.1, 50.2, 63.5),
                      run="gflv2_r101_2x"),
            Row(teacher="R-101-DCN", student="R-101", schedule="2x", batch=16, paper=_m(46.8, 64.5, 51.1, 64.3),
                run="ld_gflv2_r101_gflv2_r101_dcn_2x", teacher_run="gflv2_r101_dcn_2x"),
            _baseline(student="R-101-DCN", schedule="2x", batch=16, paper=_m(48.2, 66.6, 52.6, 64.4),
                      run="gflv2_r101_dcn_2x"),
            Row(teacher="R2-101-DCN", student="R-101-DCN", schedule="2x", batch=16, paper=_m(49.1, 67.1, 53.7, 65.6),
                run="ld_gflv2_r101_dcn_gflv2_r2_101_dcn_2x", teacher_run="gflv2_r2_101_dcn_2x"),
            _baseline(student="X-101-32x4d-DCN", schedule="2x", batch=16, paper=_m(49.0, 67.6, 53.4, 64.7),
                      run="gflv2_x101_dcn_2x"),
            Row(teacher="R2-101-DCN", student="X-101-32x4d-DCN", schedule="2x", batch=16,
                paper=_m(50.2, 68.3, 54.9, 66.3), run="ld_gflv2_x101_dcn_gflv2_r2_101_dcn_2x",
                teacher_run="gflv2_r2_101_dcn_2x"),
            _baseline(student="R2-101-DCN", schedule="2x", batch=16, paper=_m(50.5, 68.9, 55.1, 66.2),
                      run="gflv2_r2_101_dcn_2x"),
            Row(teacher="R2-101-DCN", student="R2-101-DCN", schedule="2x", batch=16, paper=_m(51.0, 69.1, 55.9, 66.8),
                run="selfld_gflv2_r2_101_dcn_2x", teacher_run="gflv2_r2_101_dcn_2x"),
        ]},
    "voc": {
        "title": "GFocalV1 with LD on VOC (07+12 trainval -> VOC07 test, COCO-style AP, 4 epochs; the teachers "
                 "are separate 16-epoch runs)",
        "profile": "voc", "split": "VOC2007 test",
        "rows": [
            _baseline(student="R-18", schedule="4 ep", batch=6, paper=_m(51.8, 75.8, 56.3), run="gfl_r18_1x"),
            Row(teacher="R-101", student="R-18", schedule="4 ep", batch=6, paper=_m(53.0, 75.9, 57.6),
                run="ld_r18_gfl_r101_1x", teacher_run="gfl_r101_2x"),
            _baseline(student="R-50", schedule="4 ep", batch=6, paper=_m(55.8, 79.0, 60.7), run="gfl_r50_1x"),
            Row(teacher="R-101", student="R-50", schedule="4 ep", batch=6, paper=_m(56.1, 78.5, 61.2),
                run="ld_r50_gfl_r101_1x", teacher_run="gfl_r101_2x"),
            _baseline(student="R-34", schedule="4 ep", batch=6, paper=_m(55.7, 78.9, 60.6), run="gfl_r34_1x"),
            Row(teacher="R-101-DCN", student="R-34", schedule="4 ep", batch=6, paper=_m(56.7, 78.4, 62.1),
                run="ld_r34_gfl_r101_dcn_1x", teacher_run="gfl_r101_dcn_2x"),
            _baseline(student="R-101", schedule="4 ep", batch=6, paper=_m(57.6, 80.4, 62.7), run="gfl_r101_1x"),
            Row(teacher="R-101-DCN", student="R-101", schedule="4 ep", batch=6, paper=_m(58.4, 80.2, 63.7),
                run="ld_r101_gfl_r101_dcn_1x", teacher_run="gfl_r101_dcn_2x"),
        ]},
    "full_ld_coco": {
        "title": "Full LD (Main LD + VLR LD + Main KD) on COCO (val2017), the upstream repository's later rows",
        "profile": "coco", "split": "COCO val2017",
        "rows": [
            _ap_only(GFL_R18_1X),
            Row(teacher="R-101", student="R-18", schedule="1x", batch=6, paper=_m(37.5),
                run="ld_full_r18_gfl_r101_1x", teacher_run="gfl_r101_2x"),
            _ap_only(GFL_R34_1X),
            Row(teacher="R-101", student="R-34", schedule="1x", batch=6, paper=_m(41.0),
                run="ld_full_r34_gfl_r101_1x", teacher_run="gfl_r101_2x"),
            _ap_only(GFL_R50_1X),
            Row(teacher="R-101", student="R-50", schedule="1x", batch=6, paper=_m(42.1),
                run="ld_full_r50_gfl_r101_1x", teacher_run="gfl_r101_2x"),
        ]},
    "detectors_coco": {
        "title": "LD for other dense detectors on COCO (val2017): RetinaNet, FCOS and ATSS with general-distribution "
                 "boxes, R-101 teacher of the same detector -> R-50 student, 1x",
        "profile": "coco", "split": "COCO val2017",
        "source": "AP: third-party notes on the CVPR paper ('RetinaNet, FCOS, ATSS from 36.9, 38.6, 39.2 to 39.0, "
                  "40.6, 41.6'), not checked against the PDF; backbones and batches from upstream's configs "
                  "(HikariTJU/LD configs/ld/ld_retina_r50_1x.py, ld_r50_fcos_r101_1x.py, ld_r50_atss_r101_1x.py: "
                  "the batch is lr / 0.01 x 16)",
        "rows": [
            _baseline(student="R-50", schedule="1x", batch=4, paper=_m(36.9), run="retina_r50_1x"),
            Row(teacher="R-101", student="R-50", schedule="1x", batch=4, paper=_m(39.0),
                run="ld_retina_r50_retina_r101_1x", teacher_run="retina_r101_2x"),
            _baseline(student="R-50", schedule="1x", batch=16, paper=_m(38.6), run="fcos_r50_1x"),
            Row(teacher="R-101", student="R-50", schedule="1x", batch=16, paper=_m(40.6),
                run="ld_fcos_r50_fcos_r101_1x", teacher_run="fcos_r101_2x"),
            _baseline(student="R-50", schedule="1x", batch=16, paper=_m(39.2), run="atss_r50_1x"),
            Row(teacher="R-101", student="R-50", schedule="1x", batch=16, paper=_m(41.6),
                run="ld_atss_r50_atss_r101_1x", teacher_run="atss_r101_2x"),
        ]},
    "imitation_coco": {
        "title": "Logit mimicking vs feature imitation on COCO (val2017), GFocalV1 R-101 -> R-50, 1x: feature "
                 "imitation alone on each region, Main LD (\"Main Region\"), full LD (\"Ours\") and full LD + GI "
                 "imitation",
        "profile": "coco", "split": "COCO val2017",
        "source": "the upstream README's 'Logit Mimicking vs. Feature Imitation' table (HikariTJU/LD README.md at "
                  "4287990c); 'Ours + GI imitation' from its weights list (box AP only)",
        "rows": [
            GFL_R50_1X,
            Row(teacher="R-101", student="R-50", schedule="1x", batch=6, paper=_m(40.7, 58.6, 44.0),
                run="im_fitnet_r50_gfl_r101_1x", teacher_run="gfl_r101_2x"),
            Row(teacher="R-101", student="R-50", schedule="1x", batch=6, paper=_m(40.7, 58.6, 44.2),
                run="im_inside_gt_r50_gfl_r101_1x", teacher_run="gfl_r101_2x"),
            Row(teacher="R-101", student="R-50", schedule="1x", batch=6, paper=_m(41.1, 58.7, 44.4),
                run="ld_r50_gfl_r101_1x", teacher_run="gfl_r101_2x"),
            Row(teacher="R-101", student="R-50", schedule="1x", batch=6, paper=_m(41.1, 58.8, 44.8),
                run="im_finegrained_r50_gfl_r101_1x", teacher_run="gfl_r101_2x"),
            Row(teacher="R-101", student="R-50", schedule="1x", batch=6, paper=_m(40.8, 58.6, 44.2),
                run="im_decouple_r50_gfl_r101_1x", teacher_run="gfl_r101_2x"),
            Row(teacher="R-101", student="R-50", schedule="1x", batch=6, paper=_m(41.5, 59.6, 45.2),
                run="im_gibox_r50_gfl_r101_1x", teacher_run="gfl_r101_2x"),
            Row(teacher="R-101", student="R-50", schedule="1x", batch=6, paper=_m(42.1, 60.3, 45.6),
                run="ld_full_r50_gfl_r101_1x", teacher_run="gfl_r101_2x"),
            Row(teacher="R-101", student="R-50", schedule="1x", batch=6, paper=_m(42.4),
                run="ld_full_gi_r50_gfl_r101_1x", teacher_run="gfl_r101_2x"),
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
        for row in table_spec(name)["rows"]:
            run, teacher = row.run, row.teacher_run
            if teacher:
                distill[run] = {"teacher": teacher}
                if teacher not in train and teacher not in distill:
                    train.append(teacher)
            elif run not in train:
                train.append(run)
    # a teacher that is itself distilled (none in the paper's tables) would be listed by distill
    return {"train": [r for r in train if r not in distill], "distill": distill}


def paper_table(name: str, metrics_dir: str | Path) -> pd.DataFrame:
    """The paper's rows of table ``name`` with, per metric, the paper's value, ours and ours minus the
    paper's, all in % with one decimal (ours from ``metrics_dir/<run>.json``, rounded before the
    difference, as both are printed); rows without a metrics file are 'not run in this profile'."""
    metrics_dir = Path(metrics_dir)
    records = []
    for row in table_spec(name)["rows"]:
        path = metrics_dir / f"{row.run}.json"
        ours = read_metrics(path)  # None if not run; a damaged file is an error naming it
        found = json.loads(path.read_text()) if ours is not None else {}
        record = {"teacher": row.teacher or "--", "student": row.student, "schedule": row.schedule,
                  "batch": row.batch, "run": row.run, "teacher_run": row.teacher_run}
        for metric in METRICS:
            value = row.paper.get(metric)
            mine = ap_points((ours or {}).get(metric))  # NaN: not run, or COCO's -1
            record[f"paper_{metric}"] = value
            record[f"ours_{metric}"] = mine
            record[f"diff_{metric}"] = ap_points(None if value is None else mine - value, fraction=False, delta=True)
        record["published_AP"] = found.get("published", {}).get("AP")  # an imported teacher's own claim
        record["status"] = "ok" if ours is not None else "not run in this profile"
        records.append(record)
    reported = {m for row in table_spec(name)["rows"] for m in row.paper}
    columns = [c for c in records[0] if not c.startswith(("paper_", "ours_", "diff_")) or c.split("_")[1] in reported]
    if all(r["published_AP"] is None for r in records):
        columns.remove("published_AP")
    return pd.DataFrame.from_records(records, columns=columns)


def paper_shown(frame: pd.DataFrame) -> pd.DataFrame:
    """A :func:`paper_table` as people read it (Markdown, CSV, the notebook): the paper's numbers, ours
    and the differences in % with one decimal, the unit in each header ('paper AP (%)', 'ours AP (%)',
    'diff AP (%)' signed as in '+0.8', 'published AP (%)'); empty where a row was not run."""
    shown = frame.drop(columns=["teacher_run"])
    values = [c for c in shown if c.startswith(("paper_", "ours_")) or c == "published_AP"]
    diffs = [c for c in shown if c.startswith("diff_")]
    return percent(percent(shown, values, fraction=False), diffs, fraction=False, delta=True)


def row_labels(frame: pd.DataFrame) -> list[str]:
    """A label per row of a :func:`paper_table` as the paper names it: 'R-101 -> R-18' (teacher -> student),
    the student alone for a baseline ('R-18'); where two rows of the table would read the same (the
    detectors' table: an R-50 baseline of each detector), every such label names its run too:
    'R-50 (retina_r50_1x)'."""
    short = [f"{t} -> {s}" if t != "--" else s for t, s in zip(frame.teacher, frame.student)]
    repeated = {label for label in short if short.count(label) > 1}
    return [f"{label} ({run})" if label in repeated else label for label, run in zip(short, frame.run)]


def draw_paper_table(frame: pd.DataFrame, title: str, profile: str) -> Figure:
    """The paper's AP beside ours for each row of a :func:`paper_table` (a pair of bars per row, labelled by
    :func:`row_labels`; a row this profile did not run says so), the title wrapped to the figure's width
    (:func:`~ld.results.tables.wrap_title`), the legend beside the axes, over no bar. Returns a Figure on an
    Agg canvas (not registered with pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    width = 9.0
    fig = Figure(figsize=(width, 0.45 * len(frame) + 1.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    y = range(len(frame))
    ax.barh([i - 0.2 for i in y], frame.paper_AP, height=0.4, color="C7", label="paper")
    ax.barh([i + 0.2 for i in y], frame.ours_AP.fillna(0), height=0.4, color="C2", label=f"ours ({profile})")
    for i, status in enumerate(frame.status):
        if status != "ok":
            ax.text(0.5, i + 0.2, "not run in this profile", va="center", fontsize=7)
    ax.set_yticks(list(y), row_labels(frame), fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("AP (%)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    fig.suptitle(wrap_title(title, width - 0.3, 9), fontsize=9)
    return fig

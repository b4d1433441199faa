"""The headline metrics file and the overlaid curves that `dvc metrics` / `dvc plots` show."""
import json

import pandas as pd
import pytest
from matplotlib.colors import to_rgb

from ld.errors import BadFileError
from ld.results.summary import (
    TERMS,
    curve_panels,
    curve_styles,
    draw_training_curves,
    read_curve,
    summarize,
    write_curves,
    write_summary,
)


def _metrics(path, ap, voc=True):
    metrics = {"coco": {"AP": ap, "AP50": ap + 0.2, "AP75": ap - 0.1, "APl": -1.0, "AR100": 0.5}}
    if voc:
        metrics["voc"] = {"AP": ap + 0.01, "mAP50_area": 0.3, "AP_by_iou_voc07_11pt": {"0.5": 0.1}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics))


def test_the_summary_keeps_the_headline_of_each_run_as_fractions(tmp_path):
    _metrics(tmp_path / "m" / "a.json", 0.4)
    _metrics(tmp_path / "m" / "b.json", 0.3, voc=False)
    out = write_summary(tmp_path / "m", ["a", "b", "not_run"], tmp_path / "summary.json")
    assert json.loads(out.read_text()) == {
        "a": {"AP": 0.4, "AP50": pytest.approx(0.6), "AP75": pytest.approx(0.3), "VOC_AP": pytest.approx(0.41)},
        "b": {"AP": 0.3, "AP50": pytest.approx(0.5), "AP75": pytest.approx(0.2)}}
    (tmp_path / "m" / "c.json").write_text("[1, 2]")
    with pytest.raises(BadFileError, match="c.json is not a metrics JSON"):
        summarize(tmp_path / "m", ["c"])


def test_curves_overlay_every_run_per_term(tmp_path):
    for run, rows in (("a", [(5, 2.0), (10, 1.5)]), ("b", [(5, 3.0)])):
        train = tmp_path / "live" / run / "plots" / "metrics" / "train"
        train.mkdir(parents=True)
        (train / "loss.tsv").write_text("step\tloss\n" + "".join(f"{s}\t{v}\n" for s, v in rows))
    (tmp_path / "live" / "b" / "plots" / "metrics" / "train" / "loss_ld.tsv").write_text("step\tloss_ld\n5\t0.25\n")
    written = write_curves(tmp_path / "live", ["b", "a", "missing"], tmp_path / "plots")
    assert [p.name for p in written] == [f"train_{t}.csv" for t in TERMS]
    assert (tmp_path / "plots" / "train_loss.csv").read_text() == "step,run,loss\n5,b,3.0\n5,a,2.0\n10,a,1.5\n"
    assert (tmp_path / "plots" / "train_loss_ld.csv").read_text() == "step,run,loss_ld\n5,b,0.25\n"
    assert (tmp_path / "plots" / "train_loss_kd.csv").read_text() == "step,run,loss_kd\n"
    assert read_curve(tmp_path / "live" / "a" / "plots" / "metrics" / "train" / "loss.tsv") == [(5, 2.0), (10, 1.5)]


# --- the curves figure ---------------------------------------------------------------------------------

def _row(run, model, method, teacher=""):
    return {"run": run, "model": model, "method": method, "teacher": teacher}


# the 20 runs of params.yaml, as ld.results.tables.runs_from_params labels them
RUNS = [_row("gfl_r50_2x", "GFocalV1 R-50 2x", "teacher"), _row("gfl_r18_1x", "GFocalV1 R-18 1x", "baseline"),
        _row("gflv2_r50_2x", "GFocalV2 R-50 2x", "teacher"), _row("gflv2_r18_1x", "GFocalV2 R-18 1x", "baseline"),
        _row("atss_r18_1x", "ATSS R-18 1x", "baseline"), _row("fcos_r18_1x", "FCOS R-18 1x", "baseline"),
        _row("retina_r18_1x", "RetinaNet R-18 1x", "baseline"),
        *[_row(run, "GFocalV1 R-18 1x", method, "gfl_r50_2x") for run, method in (
            ("ld_r18_gfl_r50_1x", "Main LD"), ("ld_vlr_r18_gfl_r50_1x", "Main LD + VLR LD"),
            ("ld_full_r18_gfl_r50_1x", "Main LD + VLR LD + Main KD"),
            ("ld_vlr_diou_r18_gfl_r50_1x", "Main LD + VLR LD"),
            ("selfld_r18_1x", "Self-LD (Main LD)"))],
        _row("ld_r34_gfl_r50_1x", "GFocalV1 R-34 1x", "Main LD", "gfl_r50_2x"),
        _row("ld_r18_ld_r34_1x", "GFocalV1 R-18 1x", "Main LD", "ld_r34_gfl_r50_1x"),
        _row("ld_gflv2_r18_gflv2_r50_1x", "GFocalV2 R-18 1x", "Main LD", "gflv2_r50_2x"),
        _row("ld_r18_gflv2_r50_1x", "GFocalV1 R-18 1x", "Main LD", "gflv2_r50_2x"),
        *[_row(f"ld_{d}_r18_gfl_r50_1x", f"{name} R-18 1x", "Main LD + VLR LD + Main KD", "gfl_r50_2x")
          for d, name in (("atss", "ATSS"), ("fcos", "FCOS"), ("retina", "RetinaNet"))],
        _row("ld_full_gi_r18_gfl_r50_1x", "GFocalV1 R-18 1x", "Main LD + VLR LD + Main KD + GI imitation",
             "gfl_r50_2x")]


def test_runs_are_grouped_into_panels_teachers_then_a_panel_per_student_model_baseline_first():
    panels = curve_panels(RUNS)
    assert list(panels) == ["teachers", "GFocalV1 R-18 1x", "GFocalV2 R-18 1x", "ATSS R-18 1x", "FCOS R-18 1x",
                            "RetinaNet R-18 1x", "GFocalV1 R-34 1x"]
    assert [r["run"] for r in panels["teachers"]] == ["gfl_r50_2x", "gflv2_r50_2x"]
    assert sorted(r["run"] for rows in panels.values() for r in rows) == sorted(r["run"] for r in RUNS)
    gfl = [r["run"] for r in panels["GFocalV1 R-18 1x"]]
    assert gfl[0] == "gfl_r18_1x" and len(gfl) == 9 and gfl[1:3] == ["ld_r18_gfl_r50_1x", "ld_vlr_r18_gfl_r50_1x"]


def test_within_a_panel_no_two_runs_look_alike_and_each_is_named_with_what_it_is():
    for rows in curve_panels(RUNS).values():
        styles = curve_styles(rows)
        assert len({to_rgb(s["color"]) for s in styles.values()}) == len(rows)
    styles = curve_styles(curve_panels(RUNS)["GFocalV1 R-18 1x"])
    assert to_rgb(styles["gfl_r18_1x"]["color"]) == (0, 0, 0)
    assert styles["gfl_r18_1x"]["label"] == "gfl_r18_1x (baseline)"
    assert styles["selfld_r18_1x"]["label"] == "selfld_r18_1x (Self-LD (Main LD))"
    assert curve_styles(curve_panels(RUNS)["teachers"])["gfl_r50_2x"]["label"] == "gfl_r50_2x (GFocalV1 R-50 2x)"


def test_the_curves_figure_tells_20_runs_apart_legends_beside_the_panels():
    curves = pd.DataFrame([(step, r["run"], 2.0 / (1 + step + i)) for i, r in enumerate(RUNS)
                           if r["run"] != "fcos_r18_1x" for step in (5, 10, 15)], columns=["step", "run", "loss"])
    fig = draw_training_curves(curves, RUNS)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    panels = [ax for ax in fig.axes if ax.lines]
    assert len(panels) == 7 and sum(len(ax.lines) for ax in panels) == 19  # fcos_r18_1x has no curve
    for ax in panels:
        labels = [line.get_label() for line in ax.lines]
        assert len({to_rgb(line.get_color()) for line in ax.lines}) == len(ax.lines)
        legend = ax.get_legend()
        assert [t.get_text() for t in legend.texts] == labels
        box = legend.get_window_extent(renderer)
        assert not any(box.overlaps(other.get_window_extent(renderer)) for other in panels), "a legend covers a panel"
    fcos = next(ax for ax in panels if ax.get_title(loc="left").startswith("FCOS"))
    assert [line.get_label() for line in fcos.lines] == ["ld_fcos_r18_gfl_r50_1x (Main LD + VLR LD + Main KD)"]
    assert "no baseline" in fcos.get_title(loc="left")
    empty = draw_training_curves(curves.iloc[:0], RUNS)
    assert "no run has a training curve" in [t.get_text() for t in empty.axes[0].texts]

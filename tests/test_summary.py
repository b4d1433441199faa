"""The headline metrics file and the overlaid curves that `dvc metrics` / `dvc plots` show."""
import json

import pytest

from ld.errors import BadFileError
from ld.results.summary import TERMS, read_curve, summarize, write_curves, write_summary


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

"""The training curves (ld.engine.live.DVCLiveCurves, mmengine's DVCLive backend): what mmengine's LoggerHook
hands it becomes ``plots/metrics/{train,val}/<name>.tsv`` + ``metrics.json`` and nothing else; a resumed run
continues its curves, a fresh one clears them."""
from __future__ import annotations

import json
import math

import numpy as np
import torch

from ld.engine.live import DVCLiveCurves, curve_name, finite


def _files(folder) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def _rows(folder, name) -> list[list[str]]:
    return [line.split("\t") for line in (folder / "plots" / "metrics" / f"{name}.tsv").read_text().splitlines()]


# what LoggerHook passes after a training iteration and after a validation pass (LogProcessor with
# log_with_hierarchy=True)
TRAIN_TAG = {"train/lr": 0.01, "train/loss": torch.tensor(2.5), "train/loss_cls": np.float32(0.5),
             "train/time": 1.3, "train/data_time": 0.02, "memory": 812, "epoch": 1, "iter": 5}
VAL_TAG = {"val/coco/bbox_mAP": 0.25, "val/coco/bbox_mAP_50": 0.5, "val/coco/bbox_mAP_l": -1.0,  # no large object
           "val/time": 0.4, "val/data_time": 0.01}


def test_curve_names_keep_the_committed_plots_names_and_leave_out_timings():
    assert curve_name("train/loss_cls") == "train/loss_cls" and curve_name("train/lr") == "train/lr"
    assert curve_name("val/coco/bbox_mAP") == "val/coco_bbox_mAP"
    timings = ("train/time", "train/data_time", "val/time", "memory", "epoch", "iter")
    assert [curve_name(key) for key in timings] == [None] * len(timings)


def test_only_finite_numbers_are_points():
    assert finite(torch.tensor(2.5)) == 2.5 and finite(np.float32(0.5)) == 0.5 and finite(3) == 3.0
    assert finite(math.nan) is None and finite(torch.tensor(math.inf)) is None and finite("x") is None


def test_train_and_val_points_are_the_only_files_written(tmp_path):
    live = tmp_path / "live"
    backend = DVCLiveCurves(str(live))
    backend.add_config(object())  # what the Runner calls first: opens the folder, logs no params
    backend.add_scalars(TRAIN_TAG, step=5)
    backend.add_scalars({**TRAIN_TAG, "train/loss": math.nan}, step=8)  # a non-finite value is no point
    backend.add_scalars(VAL_TAG, step=8)
    assert json.loads((live / "metrics.json").read_text())["step"] == 8  # written at each point, not only at the end
    backend.close()
    # no dvc.yaml, params.yaml, report or artifact .dvc file: the pipeline's dvc.yaml owns the folder
    assert _files(live) == {"metrics.json", "plots/metrics/train/lr.tsv", "plots/metrics/train/loss.tsv",
                            "plots/metrics/train/loss_cls.tsv", "plots/metrics/val/coco_bbox_mAP.tsv",
                            "plots/metrics/val/coco_bbox_mAP_50.tsv"}
    assert _rows(live, "train/loss") == [["step", "loss"], ["5", "2.5"]]
    assert _rows(live, "train/loss_cls") == [["step", "loss_cls"], ["5", "0.5"], ["8", "0.5"]]
    assert _rows(live, "val/coco_bbox_mAP") == [["step", "coco_bbox_mAP"], ["8", "0.25"]]
    summary = json.loads((live / "metrics.json").read_text())
    assert summary == {"train": {"lr": 0.01, "loss": 2.5, "loss_cls": 0.5},
                       "val": {"coco_bbox_mAP": 0.25, "coco_bbox_mAP_50": 0.5}, "step": 8}


def _log(live, steps, resume):
    backend = DVCLiveCurves(str(live), resume=resume)
    backend.add_config(object())
    for step in steps:
        backend.add_scalars({"train/loss": float(step)}, step=step)
    backend.close()


def test_a_resumed_run_replaces_the_points_logged_after_its_checkpoint(tmp_path):
    live = tmp_path / "live"
    _log(live, [5, 10, 12, 17], resume=False)  # killed after step 17; its last checkpoint was at 12
    _log(live, [17, 22, 24], resume=True)
    assert [r[0] for r in _rows(live, "train/loss")] == ["step", "5", "10", "12", "17", "22", "24"]
    assert json.loads((live / "metrics.json").read_text()) == {"train": {"loss": 24.0}, "step": 24}


def test_a_fresh_run_clears_the_earlier_curves(tmp_path):
    live = tmp_path / "live"
    _log(live, [5, 10], resume=False)
    (live / "plots" / "metrics" / "train" / "loss_old.tsv").write_text("step\tloss_old\n5\t1.0\n")
    _log(live, [3], resume=False)
    assert _files(live) == {"metrics.json", "plots/metrics/train/loss.tsv"}
    assert _rows(live, "train/loss") == [["step", "loss"], ["3", "3.0"]]


def test_the_backend_is_registered_for_configs():
    from mmdet.registry import VISBACKENDS

    assert VISBACKENDS.get("DVCLiveCurves") is DVCLiveCurves


def test_ranks_other_than_0_write_nothing(tmp_path, monkeypatch):
    """mmengine's Visualizer calls its backends from rank 0 only (``master_only``)."""
    from mmengine.visualization import Visualizer

    monkeypatch.setattr("mmengine.dist.utils.get_rank", lambda group=None: 1)
    visualizer = Visualizer(name="rank_test", vis_backends=[dict(type="DVCLiveCurves", save_dir=str(tmp_path / "l"))],
                            save_dir=str(tmp_path))
    visualizer.add_scalars({"train/loss": 1.0}, step=1)
    visualizer.close()
    assert not (tmp_path / "l").exists()

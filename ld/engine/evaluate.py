"""Evaluate an exported model: inference on the validation split, then COCO metrics.

A distillation run is evaluated as the student alone: its config is turned into the plain student
detector, so the teacher is neither built nor loaded (LD costs nothing at inference).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from ld.evaluation.coco import evaluate_coco
from ld.io import atomic_write_json
from ld.models.distiller import student_only


def predict_coco(cfg, checkpoint: str | Path, out_prefix: str | Path) -> Path:
    """Run the student of ``cfg`` with ``checkpoint`` on its test split; write COCO results JSON.

    Returns the path of ``<out_prefix>.bbox.json`` (the format the COCO evaluation server takes).
    """
    from mmengine.runner import Runner

    cfg = student_only(cfg)
    cfg.custom_hooks = []
    cfg.load_from = str(checkpoint)
    cfg.resume = False
    cfg.test_evaluator = dict(type="CocoMetric", ann_file=cfg.test_evaluator.ann_file, metric="bbox",
                              format_only=True, outfile_prefix=str(out_prefix))
    with tempfile.TemporaryDirectory(prefix="ld-eval-") as work_dir:
        cfg.work_dir = work_dir
        cfg.visualizer.vis_backends = [dict(type="LocalVisBackend")]
        Runner.from_cfg(cfg).test()
    return Path(f"{out_prefix}.bbox.json")


def evaluate_checkpoint(config: str | Path, checkpoint: str | Path, out_json: str | Path) -> dict[str, float]:
    """COCO metrics of an exported model, written atomically to ``out_json``."""
    from mmengine.config import Config

    cfg = Config.fromfile(str(config))
    with tempfile.TemporaryDirectory(prefix="ld-dets-") as tmp:
        results = predict_coco(cfg, checkpoint, Path(tmp) / "dets")
        metrics = evaluate_coco(cfg.test_evaluator.ann_file, results)
    atomic_write_json(out_json, metrics)
    return metrics

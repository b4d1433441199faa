"""Evaluate an exported model (or a results file): inference on the test split, COCO metrics, and VOC
metrics (mmdet's ``eval_map``) where the profile asks for them.

A distillation run is evaluated as the student alone: its config is turned into the plain student
detector, so the teacher is neither built nor loaded (LD costs nothing at inference).
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from ld.checkpoint import load_weights, require_files
from ld.engine import merge_options, unformatted
from ld.errors import ConfigError
from ld.evaluation.coco import evaluate_coco, load_results
from ld.evaluation.voc import evaluate_voc, voc_inputs, voc_table
from ld.frames import percent, write_frame
from ld.io import atomic_write_json, check_output_file, check_output_folder
from ld.layout import NMS_TYPES
from ld.models.distiller import student_only


def set_nms(cfg, nms: str | None, iou_threshold: float = 0.6) -> None:
    """Choose the test-time NMS of ``cfg`` in place: one of :data:`ld.layout.NMS_TYPES` (mmdet's
    plain NMS or the score-voting Cluster-DIoU-NMS); None keeps the config's."""
    if nms is None:
        return
    if nms not in NMS_TYPES:
        raise ConfigError(f"unknown NMS type {nms!r}: use one of {NMS_TYPES}")
    cfg.model.test_cfg.nms = dict(type=nms, iou_threshold=iou_threshold)


def predict_coco(cfg, checkpoint: str | Path, out_prefix: str | Path) -> Path:
    """Run the student of ``cfg`` with ``checkpoint`` on its test split; write COCO results JSON.

    Returns the path of ``<out_prefix>.bbox.json`` (the format the COCO evaluation server takes). The
    model is the student alone with its weights loaded exactly, as :func:`ld.models.distiller.build_student`
    makes it, but built by mmengine's Runner (on the Runner's device) for its test loop to write the results.
    """
    from ld.engine.console import QuietRunner  # the console: the test loop's interval lines and errors

    require_files(checkpoint, what="checkpoint")
    cfg = student_only(cfg)
    cfg.custom_hooks = []
    cfg.load_from = None  # mmengine would load non-strictly: the weights are loaded exactly below
    cfg.resume = False
    cfg.test_evaluator = dict(type="CocoMetric", ann_file=cfg.test_evaluator.ann_file, metric="bbox",
                              format_only=True, outfile_prefix=str(out_prefix))
    with tempfile.TemporaryDirectory(prefix="ld-eval-") as work_dir:
        cfg.work_dir = work_dir
        # a visualizer of its own: mmengine's instances are global, and an earlier one writes to its own dir
        cfg.visualizer.name = f"ld-eval-{Path(work_dir).name}"
        cfg.visualizer.vis_backends = [dict(type="LocalVisBackend")]
        runner = QuietRunner.from_cfg(unformatted(cfg))
        load_weights(runner.model, checkpoint, what="model")
        runner.test()
    return Path(f"{out_prefix}.bbox.json")


def evaluate_results(cfg, results: str | Path | list[dict[str, Any]], tables_dir: str | Path | None = None
                     ) -> dict[str, Any]:
    """COCO metrics of a results file against the config's test annotations, and VOC metrics of the
    same detections against the same annotations when the config asks for them (``voc_metrics``: the
    ``voc`` and embedded-dataset profiles set it); with ``tables_dir``, the per-class tables too
    (``coco_per_class``, and ``voc_per_class`` with VOC metrics; Markdown + CSV in %, 'n/a' for a class
    without ground truth). The metrics keep COCO's fractions."""
    ann_file = Path(cfg.test_evaluator.ann_file)
    records = load_results(results)
    coco = evaluate_coco(ann_file, records, per_class=tables_dir is not None)
    if tables_dir is not None:
        per_class = pd.DataFrame.from_records(coco.pop("per_class"), columns=["class", "AP", "AP50", "AP75"])
        write_frame(percent(per_class, ["AP", "AP50", "AP75"]), Path(tables_dir) / "coco_per_class")
    metrics: dict[str, Any] = {"coco": coco}
    if cfg.get("voc_metrics", False):
        voc = evaluate_voc(*voc_inputs(json.loads(ann_file.read_text()), records))
        if tables_dir is not None:
            write_frame(percent(voc_table(voc), ["recall", "ap"]), Path(tables_dir) / "voc_per_class")
        metrics["voc"] = {k: v for k, v in voc.items() if k != "per_class"}
    return metrics


def evaluate_checkpoint(config: str | Path, checkpoint: str | Path | None, out_json: str | Path, *,
                        results: str | Path | None = None, results_out: str | Path | None = None,
                        tables_dir: str | Path | None = None, nms: str | None = None,
                        cfg_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Metrics of an exported model (or of a ``results`` file), written atomically to ``out_json``.

    Args:
        config: the run's config (``models/<profile>/<run>/config.py``).
        checkpoint: its weights; not needed when ``results`` is given.
        out_json: the metrics JSON: ``{"coco": {...}, "voc": {...}}``, and the ``initial_weights`` digest of a
            trained run's config (:mod:`ld.engine.initial_weights`).
        results: evaluate this COCO results file instead of running the model.
        results_out: also keep the detections as a COCO results file (for the test-dev server).
        tables_dir: where to write the per-class COCO and VOC tables (Markdown + CSV, in %).
        nms: override the test-time NMS (one of :data:`ld.layout.NMS_TYPES`).
        cfg_options: config overrides as mmdet's ``tools/test.py --cfg-options`` takes them, merged
            (:func:`ld.engine.merge_options`: a key the config lacks is refused) after ``nms`` and before the
            model and the dataloader are built, e.g. ``{"test_dataloader.batch_size": 2,
            "model.test_cfg.score_thr": 0.05}``
            (``test_evaluator`` is the evaluation's own: only its ``ann_file`` is read).
    """
    from mmengine.config import Config

    require_files(config, checkpoint)
    check_output_file(out_json, "--out")  # before the inference pass, so none is lost
    if results_out is not None:
        check_output_file(results_out, "--results-out")
    if tables_dir is not None:
        check_output_folder(tables_dir, "--tables")
    cfg = Config.fromfile(str(config))
    set_nms(cfg, nms)
    merge_options(cfg, cfg_options, config)
    if results is not None:
        metrics = evaluate_results(cfg, results, tables_dir)
    else:
        if checkpoint is None:
            raise ConfigError("give a checkpoint to evaluate, or --results with a COCO results file")
        with tempfile.TemporaryDirectory(prefix="ld-dets-") as tmp:
            dets = predict_coco(cfg, checkpoint, Path(tmp) / "dets")
            metrics = evaluate_results(cfg, dets, tables_dir)
            if results_out is not None:
                Path(results_out).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(dets, results_out)
    source = Path(config).parent / "source.json"  # an imported teacher: what its publisher reports, in %
    published = json.loads(source.read_text()).get("published") if source.is_file() else None
    if published:
        metrics["published"] = published
    if cfg.get("initial_weights"):  # the digest of the weights the model's training started from
        metrics["initial_weights"] = cfg.initial_weights
    atomic_write_json(out_json, metrics)
    return metrics

"""Training curves through DVCLive, so `dvc plots show` and `dvc plots diff` render them.

mmengine's ``LoggerHook`` hands its log line's values to the visualizer's backends every log interval
(``add_scalars(tag, step=iteration + 1)``) and the validation metrics after each validation pass; the run's
visualizer has :class:`DVCLiveCurves` among its backends (``ld.engine.train.build_train_config``), which
writes them as ``<dir>/plots/metrics/{train,val}/<name>.tsv`` (``step`` and value) and ``<dir>/metrics.json``.
"""
from __future__ import annotations

import math
from pathlib import Path

from mmengine.registry import VISBACKENDS
from mmengine.visualization import DVCLiveVisBackend
from mmengine.visualization.vis_backend import force_init_env

# Wall-clock and memory readings: they differ between two runs of the same config, the curves do not.
NOT_CURVES = ("time", "data_time", "memory")
# pycocotools' value of a metric it could not compute (no ground truth in the area range: bbox_mAP_l on
# small images); not a point of a validation curve
COCO_UNDEFINED = -1.0


def curve_name(key: str) -> str | None:
    """The curve a key of mmengine's log (``LogProcessor(log_with_hierarchy=True)``) is written to, or None:
    ``train/loss_cls`` and ``train/lr`` stay as they are, ``val/coco/bbox_mAP`` becomes ``val/coco_bbox_mAP``
    (one file per metric under ``plots/metrics/val``); ``epoch``, ``iter`` and timings are not curves."""
    mode, _, name = key.partition("/")
    if mode not in ("train", "val") or not name or name in NOT_CURVES:
        return None
    return f"{mode}/{name.replace('/', '_')}"


def finite(value) -> float | None:
    """``value`` (a number, a 0-d tensor or array) as a float, or None if it is not a finite number."""
    try:
        value = float(value.item() if hasattr(value, "item") else value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


@VISBACKENDS.register_module()
class DVCLiveCurves(DVCLiveVisBackend):
    """mmengine's DVCLive backend, for curves that a DVC pipeline owns.

    Of ``DVCLiveVisBackend`` (mmengine 0.10.7) this keeps how a scalar is written (``add_scalar``: the
    step, then ``Live.log_metric``) and replaces what a pipeline stage must not do:

    - ``_init_env`` runs ``dvc init -f --no-scm`` in the working directory when git has no user name (a
      clean clone, CI), which deletes the repository's ``.dvc/`` and its cache, and its default ``Live``
      saves a DVC experiment. Here ``Live(dir, resume=resume, save_dvc_exp=False, dvcyaml=None,
      report=None)``: the pipeline's dvc.yaml declares the folder's ``metrics.json`` and ``plots``.
    - ``add_config`` logs the whole config as DVC params (``<dir>/params.yaml``, not a declared output);
      here it only opens the folder at the start of the run (a fresh run clears its old curves then). The
      config is in the run's work dir and the exported ``config.py``.
    - ``close`` logs every .json/.py/.yaml file of the folder as a DVC artifact (outside ``dvc repro``, a
      ``dvc add`` of ``metrics.json``, which is a stage's output); here it only ends the ``Live``.
    - ``add_scalars`` writes every key of the log line at ``step`` (``epoch``, ``iter``, timings);
      here only the curves (:func:`curve_name`: ``train/<loss>``, ``train/lr``, ``val/<metric>``) with
      finite values (no :data:`COCO_UNDEFINED` metric either), and ``metrics.json`` after each point. A
      resumed run first drops the points the killed run logged after its last checkpoint (it logs them
      again), so its curves equal an uninterrupted run's.

    Args:
        save_dir: the DVCLive folder (``results/<profile>/live/<run>``).
        resume: continue the curves in ``save_dir`` (a resumed run); otherwise they are removed.
    """

    def __init__(self, save_dir: str, resume: bool = False) -> None:
        super().__init__(save_dir)
        self._resume = resume
        self._logged = False

    def _init_env(self) -> None:
        from dvclive import Live

        self._dvclive = Live(self._save_dir, resume=self._resume, save_dvc_exp=False, dvcyaml=None, report=None)

    @force_init_env
    def add_config(self, config, **kwargs) -> None:
        pass

    @force_init_env
    def add_scalars(self, scalar_dict: dict, step: int = 0, file_path: str | None = None, **kwargs) -> None:
        curves = {curve_name(key): finite(value) for key, value in scalar_dict.items()}
        curves = {name: value for name, value in curves.items() if name is not None and value is not None
                  and not (name.startswith("val/") and value == COCO_UNDEFINED)}
        if not curves:
            return
        if self._resume and not self._logged:
            self._drop_points_from(step)
        self._logged = True
        for name, value in sorted(curves.items()):
            self.add_scalar(name, value, step)
        self._dvclive.make_summary()

    def _drop_points_from(self, step: int) -> None:
        """Remove the rows at ``step`` and later from every curve of the folder."""
        for tsv in Path(self._dvclive.plots_dir, "metrics").rglob("*.tsv"):
            header, *rows = tsv.read_text().splitlines(keepends=True)
            tsv.write_text(header + "".join(row for row in rows if int(row.split("\t", 1)[0]) < step))

    def close(self) -> None:
        if hasattr(self, "_dvclive"):
            self._dvclive.end()

"""Training curves through DVCLive, so `dvc plots show` and `dvc plots diff` render them."""
from __future__ import annotations

import math

from mmengine.dist import master_only
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


def _scalar(value) -> float | None:
    try:
        value = float(value.item() if hasattr(value, "item") else value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


@HOOKS.register_module()
class DVCLiveHook(Hook):
    """Logs the training losses every ``interval`` iterations and at the last one, and the validation
    metrics of each validation pass (none by default: ``ld.profiles.apply_profile``; the eval stage
    evaluates the exported model).

    Args:
        dir: DVCLive folder (``results/<profile>/live/<run>``), declared as plots in dvc.yaml.
        interval: iterations between two logged points.
        resume: continue the curves of a resumed run; otherwise earlier curves in ``dir`` are removed.
    """

    priority = "LOW"

    def __init__(self, dir: str, interval: int = 1, resume: bool = False) -> None:
        self.dir = dir
        self.interval = interval
        self.resume = resume
        self.live = None

    @master_only
    def before_run(self, runner) -> None:
        from dvclive import Live

        # DVC itself stays untouched: no experiment, dvc.yaml or report is written from here.
        self.live = Live(self.dir, resume=self.resume, save_dvc_exp=False, dvcyaml=None, report=None)

    @master_only
    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        last = runner.iter + 1 == runner.max_iters  # a run shorter than the interval still has a curve
        if self.live is None or not outputs or ((runner.iter + 1) % self.interval and not last):
            return
        self.live.step = runner.iter + 1
        for key, value in sorted(outputs.items()):
            value = _scalar(value)
            if value is not None:
                self.live.log_metric(f"train/{key}", value, plot=True)
        self.live.log_metric("train/lr", runner.optim_wrapper.get_lr()["lr"][0], plot=True)
        self.live.next_step()

    @master_only
    def after_val_epoch(self, runner, metrics=None) -> None:
        if self.live is None or not metrics:
            return
        self.live.step = runner.iter
        for key, value in sorted(metrics.items()):
            value = _scalar(value)
            if value is not None:
                self.live.log_metric(f"val/{key.replace('/', '_')}", value, plot=True)
        self.live.next_step()

    @master_only
    def after_run(self, runner) -> None:
        if self.live is not None:
            self.live.end()

"""A run never trains on through NaN: the first non-finite loss stops it, naming the iteration and the losses.

As DETR's and torchvision's reference engines do (``if not math.isfinite(loss_value)``), but as an
mmengine hook: after each training iteration the logged losses are checked; a NaN or an infinity
stops the run with :class:`NonFiniteLossError`, before a checkpoint of that state is written (the
hook runs ahead of the checkpoint and logger hooks), so the run folder keeps the last good epoch.
"""
from __future__ import annotations

import math
from typing import Any

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ld.errors import LDError


class NonFiniteLossError(LDError):
    """A training loss became NaN or infinite."""


def _total(value) -> float:
    """A logged loss as one number: a tensor or a number, or a list of per-level ones summed."""
    values = value if isinstance(value, (list, tuple)) else [value]
    return sum(float(v.detach().sum()) if hasattr(v, "detach") else float(v) for v in values)


def non_finite_losses(losses: dict[str, Any]) -> dict[str, float]:
    """The losses (keys containing ``loss``) of a loss dict that are NaN or infinite."""
    totals = {name: _total(value) for name, value in losses.items() if "loss" in name}
    return {name: total for name, total in totals.items() if not math.isfinite(total)}


def describe_losses(losses: dict[str, Any]) -> str:
    """``loss=nan, loss_cls=0.5312, ...``: each loss of the dict, summed over levels."""
    return ", ".join(f"{name}={_total(value):.4g}" for name, value in losses.items() if "loss" in name)


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Stops training at the first iteration whose losses are not all finite."""

    priority = "VERY_HIGH"  # before the checkpoint and logger hooks of the same iteration

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs: dict | None = None) -> None:
        if not outputs:
            return
        bad = non_finite_losses(outputs)
        if bad:
            raise NonFiniteLossError(
                f"training stopped: non-finite loss at iteration {runner.iter + 1} (epoch {runner.epoch + 1}): "
                f"{', '.join(bad)} ({describe_losses(outputs)}). Lower the learning rate or a loss weight, or "
                f"check the data; the run resumes from its last checkpoint ({runner.work_dir})")

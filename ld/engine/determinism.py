"""Epoch-keyed randomness: a run killed at any moment and resumed ends with the same bytes as one never
killed (on a CPU).

mmengine resumes the model, optimizer, LR schedule and the sampler's order (``DefaultSampler`` seeds its
shuffle with ``seed + epoch``), but not the random state of the augmentation: after a resume the flips
and resizes of the redone epoch are drawn from a state reset to the run's seed, and dataloader workers
are re-seeded by mmengine with the same numbers every epoch. Here every epoch starts from a state that
depends only on ``(seed, epoch, rank)``:

- :class:`EpochSeedHook` seeds python's ``random``, numpy and torch (all devices) at the start of each
  training epoch, so a resumed epoch draws exactly what the interrupted one drew;
- :func:`epoch_worker_init` seeds a dataloader worker's ``random`` and numpy from the torch seed the
  DataLoader gives it (drawn from the main process's torch generator, which the hook has just seeded,
  plus the worker id), so workers are reproducible too; they are started anew each epoch
  (``persistent_workers=False``), since a persistent worker would carry its state across epochs.
"""
from __future__ import annotations

import random

import numpy as np
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import FUNCTIONS, HOOKS


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """A 32-bit seed for one epoch of one process, from numpy's ``SeedSequence`` (well mixed, stable)."""
    return int(np.random.SeedSequence([int(seed), int(epoch), int(rank)]).generate_state(1)[0])


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's global generator and torch's (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@HOOKS.register_module()
class EpochSeedHook(Hook):
    """Seeds every generator from ``(seed, epoch, rank)`` before each training epoch.

    Args:
        seed: the run's seed (params.yaml ``seed``).
    """

    priority = "VERY_HIGH"

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def before_train_epoch(self, runner) -> None:
        seed_everything(epoch_seed(self.seed, runner.epoch, get_rank()))


@FUNCTIONS.register_module()
def epoch_worker_init(worker_id: int) -> None:
    """A dataloader worker's ``random`` and numpy seeded from its torch seed (``base_seed + worker_id``,
    the base drawn per epoch from the main process's seeded generator)."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)

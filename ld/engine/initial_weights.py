"""A run's initial weights, named: the SHA-256 of the model it starts training from, so the seed study can
pair two runs exactly (their models started from the same weights at a seed: ld.results.claims).

:class:`InitialWeightsHook` writes ``<work_dir>/initial_weights.json`` when a run starts afresh (mmengine has
initialised the model and resumed nothing: iteration 0); a resumed run keeps the file of its start. The
export copies the digest into the run's ``config.py`` (``initial_weights``), and ``ld eval`` into the metrics
JSON. A student's digest is of its own weights (an imitation adapter, trained and dropped at export, left
out; the teacher is no part of the student's state dict), so it equals its baseline's where both started
from the same weights (the distiller builds its teacher from a fork of the random generators).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ld.io import atomic_write_json

FILE = "initial_weights.json"


def weights_digest(state_dict: dict[str, torch.Tensor]) -> str:
    """SHA-256 of a state dict: each key (sorted) and its tensor's dtype, shape and bytes; an imitation
    adapter's keys left out."""
    digest = hashlib.sha256()
    for key in sorted(k for k in state_dict if "imitation_adapter" not in k):
        tensor = state_dict[key].detach().to("cpu").contiguous()
        digest.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)}\n".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def recorded(work_dir: str | Path) -> str | None:
    """The digest a run recorded in its work folder, or None (a run started before it was recorded)."""
    path = Path(work_dir) / FILE
    return json.loads(path.read_text())["sha256"] if path.is_file() else None


@HOOKS.register_module()
class InitialWeightsHook(Hook):
    """Records the digest of the weights a fresh run starts from (rank 0), before its first iteration."""

    priority = "VERY_HIGH"

    def before_train(self, runner) -> None:
        if runner.iter != 0 or runner.rank != 0:
            return
        model = getattr(runner.model, "module", runner.model)  # unwrapped from DDP
        atomic_write_json(Path(runner.work_dir) / FILE, {"sha256": weights_digest(model.state_dict())})

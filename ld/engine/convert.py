"""Checkpoint conversion: a distillation run's checkpoint -> a student-only checkpoint.

Takes this project's checkpoints and the upstream LD repository's mmdet-2.x-era files, which carry
the teacher's weights (``teacher_model.*``, or inside the head) and the optimizer state, and keeps
exactly the student's weights, checked key by key against the student config.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ld.checkpoint import load_checkpoint, save_weights, state_dict_mismatch
from ld.errors import BadFileError

TEACHER_MARKERS = ("teacher_model.", "teacher.", "_teacher.")
TRAINING_ONLY_MARKERS = ("imitation_adapter.",)  # trained beside the student, not part of it (feature imitation)


def is_teacher_key(key: str) -> bool:
    """Whether a state-dict key belongs to a teacher (at the top level or nested, e.g. in the head)."""
    return _has_marker(key, TEACHER_MARKERS)


def _has_marker(key: str, markers: tuple[str, ...]) -> bool:
    return any(key.startswith(m) or f".{m}" in key for m in markers)


def student_state_dict(ckpt: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The student's weights of a checkpoint: no teacher keys, no training-only module (the imitation
    adapter), no DDP ``module.`` prefix."""
    state = ckpt.get("state_dict", ckpt)
    markers = TEACHER_MARKERS + TRAINING_ONLY_MARKERS
    return {key: v for k, v in state.items() if not _has_marker(key := k.removeprefix("module."), markers)}


def convert_checkpoint(src: str | Path, dst: str | Path, config: str | Path) -> dict[str, int]:
    """Write ``dst``: the student weights of ``src`` that exactly fit the student of ``config``.

    Returns sizes and counts (``src_bytes``, ``dst_bytes``, ``dropped_keys``, ``kept_keys``). Refuses,
    naming the keys, when the weights do not fit the config.
    """
    from mmdet.registry import MODELS
    from mmengine.config import Config

    from ld.models.distiller import student_only

    ckpt = load_checkpoint(src)
    state = ckpt.get("state_dict", ckpt)
    student = student_state_dict(ckpt)
    model_state = MODELS.build(student_only(Config.fromfile(str(config))).model).state_dict()
    problem = state_dict_mismatch(model_state, student)
    if problem:
        raise BadFileError(f"{src} does not fit the student of {config}: {problem}. "
                           "Give the config the student was trained with.")
    dst = save_weights(dst, student, ckpt.get("meta", {}))
    return {"src_bytes": Path(src).stat().st_size, "dst_bytes": dst.stat().st_size,
            "dropped_keys": len(state) - len(student), "kept_keys": len(student)}

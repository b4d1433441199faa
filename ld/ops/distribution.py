"""A box edge's general distribution (GFocal): the ``reg_max + 1`` logits a head predicts for each of the
four edges, the probabilities they give, and the offset those predict (GFocal's integral); and the
per-level head outputs as one row per prior, the form every distillation term reads.
"""
from __future__ import annotations

import torch
from torch import Tensor

EDGES: tuple[str, ...] = ("left", "top", "right", "bottom")  # mmdet's order of the four distributions


def flatten_levels(per_level: list[Tensor]) -> Tensor:
    """``[(B, C, H_l, W_l)]`` -> ``(B, sum_l H_l * W_l, C)``, in the anchor order of mmdet's prior generator
    (level by level, row-major within a level)."""
    return torch.cat([t.permute(0, 2, 3, 1).reshape(t.shape[0], -1, t.shape[1]) for t in per_level], dim=1)


def edge_probabilities(logits: Tensor, reg_max: int = 16) -> Tensor:
    """``(..., 4 * (reg_max + 1))`` logits -> ``(..., 4, reg_max + 1)`` probabilities per edge."""
    return torch.softmax(logits.reshape(*logits.shape[:-1], 4, reg_max + 1), dim=-1)


def expected_offset(probs: Tensor, dim: int = -1) -> Tensor:
    """The edge offset the head predicts: ``sum_i i * p_i`` over the bins on ``dim`` (GFocal's integral),
    in units of the stride: ``probs`` without ``dim``. The ATSS/FCOS/RetinaNet distribution heads and the GI
    boxes decode with it; GFocal's heads use mmdet's ``Integral``."""
    shape = [1] * probs.dim()
    shape[dim] = probs.shape[dim]
    bins = torch.arange(probs.shape[dim], dtype=probs.dtype, device=probs.device).reshape(shape)
    return (probs * bins).sum(dim=dim)

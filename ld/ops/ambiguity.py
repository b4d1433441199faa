"""Localization ambiguity of edge distributions: pure torch measures.

A GFocal head gives each box edge a distribution over ``reg_max + 1`` offsets. A sharp distribution
means a certain edge; a flat or two-peaked one an ambiguous edge (blur, occlusion, shadow). These
functions turn logits into the measures the analysis notebook plots.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor


def entropy(probs: Tensor) -> Tensor:
    """Shannon entropy (nats) over the last dim: 0 for a one-hot, ``log(bins)`` for a uniform."""
    return -(probs * torch.log(probs.clamp(min=1e-12))).sum(dim=-1)


def normalized_entropy(probs: Tensor) -> Tensor:
    """Entropy divided by ``log(bins)``: in [0, 1] whatever the number of bins."""
    return entropy(probs) / math.log(probs.shape[-1])


def top_gap(probs: Tensor) -> Tensor:
    """Top-1 minus top-2 probability over the last dim: 1 for a one-hot, 0 for a tie at the top."""
    top = probs.topk(2, dim=-1).values
    return top[..., 0] - top[..., 1]


def kl_divergence(p_teacher: Tensor, p_student: Tensor) -> Tensor:
    """``KL(teacher || student)`` (nats) over the last dim, of probabilities."""
    p_teacher = p_teacher.clamp(min=1e-12)
    return (p_teacher * (torch.log(p_teacher) - torch.log(p_student.clamp(min=1e-12)))).sum(dim=-1)

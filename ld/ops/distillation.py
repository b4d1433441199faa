"""The LD paper's distillation terms as pure functions of flattened head outputs.

Each term is :func:`ld.ops.ld_loss` (the softened KL) on a region, weighted and reduced the way the
upstream code does it (HikariTJU/LD ``mmdet/models/dense_heads/ld_head.py``, ``kd_loss.py``), with
upstream's divisors named:

- :func:`main_region_ld`: LD on the main distillation region (the assigner's positives), each edge
  weighted by the student's detached max class score; upstream divides the weighted sum by
  :data:`MAIN_LD_DIVISOR` (its four edges) and never by the number of positives.
- :func:`vlr_ld`: LD on the valuable localization region, weighted by each location's VLR weight (its
  IoU with the ground truth); upstream divides by :data:`VLR_LD_DIVISOR`.
- :func:`class_kd`: KD (the same KL over class logits) on the positives; upstream takes the mean over
  each FPN level's positives and sums the levels.

``normalizer`` switches to the ``per_positive`` normalisation: the caller passes the number of
locations of the region (averaged over GPUs, clamped to at least 1) and each term is divided by it
(LD terms additionally by the four edges). ``None`` keeps upstream's divisors.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ld.ops.distribution import EDGES
from ld.ops.ld_loss import ld_loss

MAIN_LD_DIVISOR = 4.0  # upstream: loss_ld = sum(score * KL) / 4 over the four edges of all positives
VLR_LD_DIVISOR = 16.0  # upstream: loss_ld_vlr = sum(IoU * KL) / 16


def _edge_kl(s_reg: Tensor, t_reg: Tensor, T: float) -> Tensor:
    """``(N, 4 * bins)`` student and teacher edge logits -> ``(N, 4)`` LD per edge."""
    bins = s_reg.shape[-1] // len(EDGES)
    return ld_loss(s_reg.reshape(-1, bins), t_reg.reshape(-1, bins), T).reshape(-1, len(EDGES))


def main_region_ld(s_reg: Tensor, t_reg: Tensor, s_cls: Tensor, pos: Tensor, T: float,
                   normalizer: float | None = None) -> Tensor:
    """LD on the main distillation region, each edge weighted by the student's detached max class score.

    Args:
        s_reg: ``(B, A, 4 * (reg_max + 1))`` the student's edge logits at every location.
        t_reg: the teacher's, same shape (read only at ``pos``).
        s_cls: ``(B, A, C)`` the student's class logits; the weight is their detached max sigmoid.
        pos: ``(B, A)`` bool, the positives (the main distillation region).
        T: temperature.
        normalizer: ``None`` (upstream: divide by :data:`MAIN_LD_DIVISOR`), or the region's size for
            ``per_positive`` (divided by it as well).

    Returns:
        a 0-d loss, before the term's ``loss_weight``.
    """
    weight = s_cls.detach().sigmoid().max(dim=-1).values[pos]  # (P,)
    total = (_edge_kl(s_reg[pos], t_reg[pos], T) * weight[:, None]).sum() / MAIN_LD_DIVISOR
    return total if normalizer is None else total / normalizer


def vlr_ld(s_reg: Tensor, t_reg: Tensor, vlr_weight: Tensor, T: float, normalizer: float | None = None,
           divisor: float = VLR_LD_DIVISOR) -> Tensor:
    """LD on the valuable localization region (the locations of non-zero ``vlr_weight``).

    Args:
        s_reg: ``(B, A, 4 * (reg_max + 1))`` the student's edge logits at every location.
        t_reg: the teacher's, same shape (read only in the VLR).
        vlr_weight: ``(B, A)`` each location's VLR weight (:func:`ld.ops.vlr_region`), 0 outside it.
        T: temperature.
        normalizer: ``None`` (upstream: divide by ``divisor``), or the region's size for
            ``per_positive`` (the loss is divided by 4 edges times it).
        divisor: upstream's divisor of the head: :data:`VLR_LD_DIVISOR` for GFocal; 4 for the ATSS, FCOS
            and RetinaNet heads, whose extra factors their configs' ``loss_weight`` carries.
    """
    in_vlr = vlr_weight > 0
    total = (_edge_kl(s_reg[in_vlr], t_reg[in_vlr], T) * vlr_weight[in_vlr][:, None]).sum()
    return total / divisor if normalizer is None else total / (len(EDGES) * normalizer)


def class_kd(s_cls: Tensor, t_cls: Tensor, pos: Tensor, level: Tensor, T: float,
             normalizer: float | None = None) -> Tensor:
    """Classification KD on the positives.

    Args:
        s_cls: ``(B, A, C)`` the student's class logits at every location.
        t_cls: the teacher's, same shape (read only at ``pos``).
        pos: ``(B, A)`` bool, the positives.
        level: ``(A,)`` int64, the FPN level of each location (0 for the first level).
        T: temperature.
        normalizer: ``None`` (upstream: the mean over each level's positives, summed over the levels), or
            the number of positives for ``per_positive`` (the sum divided by it).
    """
    kl = ld_loss(s_cls[pos], t_cls[pos], T)  # (P,)
    if normalizer is not None:
        return kl.sum() / normalizer
    num_levels = int(level.max()) + 1 if level.numel() else 0
    level_of_pos = level.expand(pos.shape)[pos]
    sums = torch.zeros(num_levels, device=kl.device, dtype=kl.dtype).index_add(0, level_of_pos, kl)
    counts = torch.bincount(level_of_pos, minlength=num_levels).clamp(min=1)
    return (sums / counts).sum()

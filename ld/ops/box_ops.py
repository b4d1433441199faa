"""Box operations on ``(x1, y1, x2, y2)`` tensors: pure torch, no mmcv.

Computed in float32 for half and integer inputs, returned in the float dtype of the first argument.
"""
from __future__ import annotations

import torch
from torch import Tensor

_EPS = 1e-7


def box_centers(boxes: Tensor) -> Tensor:
    """Centres ``(..., 2)`` of boxes ``(..., 4)``."""
    return (boxes[..., :2] + boxes[..., 2:]) / 2


def prior_centers(priors: Tensor) -> Tensor:
    """Where a head measures its box edges from: ``(..., 2)`` the centres of anchors ``(..., 4)``, or the
    points ``(..., 2)`` themselves."""
    return box_centers(priors) if priors.shape[-1] == 4 else priors


def distances_to_boxes(centers: Tensor, distances: Tensor) -> Tensor:
    """GFocal's decoding: ``(..., 4)`` xyxy boxes from centres ``(..., 2)`` and edge ``distances (..., 4)``
    (left, top, right, bottom, in pixels): left and top lie towards smaller coordinates, right and bottom
    towards larger ones."""
    return torch.cat([centers - distances[..., :2], centers + distances[..., 2:]], dim=-1)


def _pairwise(boxes1: Tensor, boxes2: Tensor) -> tuple[Tensor, ...]:
    """Intersection, both areas, squared centre distance and squared enclosing diagonal, all (N, M)."""
    if boxes1.ndim != 2 or boxes1.shape[-1] != 4 or boxes2.ndim != 2 or boxes2.shape[-1] != 4:
        raise ValueError(f"expected (N, 4) and (M, 4) boxes, got {tuple(boxes1.shape)} and {tuple(boxes2.shape)}")
    work = boxes1.dtype if boxes1.dtype in (torch.float32, torch.float64) else torch.float32
    b1 = boxes1.to(work)[:, None, :]  # (N, 1, 4)
    b2 = boxes2.to(device=boxes1.device, dtype=work)[None, :, :]  # (1, M, 4)
    area1 = (b1[..., 2] - b1[..., 0]).clamp(min=0) * (b1[..., 3] - b1[..., 1]).clamp(min=0)
    area2 = (b2[..., 2] - b2[..., 0]).clamp(min=0) * (b2[..., 3] - b2[..., 1]).clamp(min=0)
    inter_wh = (torch.minimum(b1[..., 2:], b2[..., 2:]) - torch.maximum(b1[..., :2], b2[..., :2])).clamp(min=0)
    inter = inter_wh[..., 0] * inter_wh[..., 1]
    rho2 = (((b1[..., :2] + b1[..., 2:]) - (b2[..., :2] + b2[..., 2:])) ** 2).sum(-1) / 4
    enclose_wh = torch.maximum(b1[..., 2:], b2[..., 2:]) - torch.minimum(b1[..., :2], b2[..., :2])
    c2 = (enclose_wh**2).sum(-1)
    return inter, area1.expand_as(inter), area2.expand_as(inter), rho2, c2


def _out_dtype(boxes: Tensor) -> torch.dtype:
    return boxes.dtype if boxes.is_floating_point() else torch.float32


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Pairwise IoU ``(N, M)`` of boxes ``(N, 4)`` and ``(M, 4)``."""
    inter, area1, area2, _, _ = _pairwise(boxes1, boxes2)
    return (inter / (area1 + area2 - inter).clamp(min=_EPS)).to(_out_dtype(boxes1))


def diou_matrix(boxes1: Tensor, boxes2: Tensor, beta: float = 1.0, denominator: str = "union") -> Tensor:
    """Pairwise Distance-IoU ``(N, M)`` of boxes ``(N, 4)`` and ``(M, 4)``.

    ``DIoU = overlap - (rho^2 / c^2) ** beta``: ``rho`` is the distance between the two centres, ``c``
    the diagonal of the smallest box enclosing both. ``beta = 1`` is the DIoU of Zheng et al. (AAAI
    2020); the LD paper's NMS uses ``beta = 0.8``. ``overlap`` is the IoU (``denominator='union'``),
    or, with ``denominator='first'``, the intersection over the area of the ``boxes1`` box, which is
    what the upstream LD code's VLR assigner computes (its ``bbox_overlaps`` divides by ``area1`` in
    every mode but 'iou' and 'giou'). A box has DIoU 1 with itself.
    """
    if denominator not in ("union", "first"):
        raise ValueError(f"denominator must be 'union' or 'first', got {denominator!r}")
    inter, area1, area2, rho2, c2 = _pairwise(boxes1, boxes2)
    union = area1 + area2 - inter if denominator == "union" else area1
    penalty = (rho2 / c2.clamp(min=_EPS)).clamp(min=0, max=1) ** beta
    return (inter / union.clamp(min=_EPS) - penalty).to(_out_dtype(boxes1))

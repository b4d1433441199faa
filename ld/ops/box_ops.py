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


Columns = tuple[Tensor, Tensor, Tensor, Tensor, Tensor]


def box_columns(boxes: Tensor) -> Columns:
    """``(x1, y1, x2, y2, area)`` of boxes ``(..., 4)``, each ``(...)``: what the pairwise terms read.
    Index or broadcast them (``[:, None]`` against ``[None, :]``) to pair boxes."""
    area = (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(min=0)
    return boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3], area


# The pairwise terms of IoU and DIoU on broadcastable columns: the one kernel of box_iou, diou_matrix, the
# VLR's overlaps (ld.ops.vlr) and voting Cluster-DIoU-NMS (ld.ops.voting_cluster_diou_nms). Each works on
# temporaries of its own, in place, so that a large (B, N, M) or (C, R, W) block costs few buffers.


def pair_intersection(bi: Columns, bj: Columns) -> Tensor:
    """The intersection areas of the pairs of ``bi`` and ``bj``: ``w * h``, each clamped at 0."""
    x1i, y1i, x2i, y2i = bi[:4]
    x1j, y1j, x2j, y2j = bj[:4]
    w = torch.minimum(x2i, x2j).sub_(torch.maximum(x1i, x1j)).clamp_(min=0)
    return w.mul_(torch.minimum(y2i, y2j).sub_(torch.maximum(y1i, y1j)).clamp_(min=0))


def pair_union(inter: Tensor, bi: Columns, bj: Columns) -> Tensor:
    """``area_i + area_j - inter``, clamped away from 0."""
    return (bi[4] + bj[4]).sub_(inter).clamp_(min=_EPS)


def pair_iou(bi: Columns, bj: Columns) -> Tensor:
    """IoU of the pairs of ``bi`` and ``bj``: intersection over union."""
    inter = pair_intersection(bi, bj)
    return inter.div_(pair_union(inter, bi, bj))


def pair_penalty(bi: Columns, bj: Columns) -> Tensor:
    """DIoU's distance ratio ``rho^2 / c^2`` of the pairs, clamped to [0, 1]: ``rho`` the distance between
    the two centres, ``c`` the diagonal of the smallest box enclosing both (each sum of squares is one
    addition, x then y)."""
    x1i, y1i, x2i, y2i = bi[:4]
    x1j, y1j, x2j, y2j = bj[:4]
    rho2 = ((x1i + x2i) - (x1j + x2j)).pow_(2).add_(((y1i + y2i) - (y1j + y2j)).pow_(2)).div_(4)
    c2 = torch.maximum(x2i, x2j).sub_(torch.minimum(x1i, x1j)).pow_(2)
    c2.add_(torch.maximum(y2i, y2j).sub_(torch.minimum(y1i, y1j)).pow_(2)).clamp_(min=_EPS)
    return rho2.div_(c2).clamp_(min=0, max=1)


def _pair_columns(boxes1: Tensor, boxes2: Tensor) -> tuple[Columns, Columns]:
    """The columns of boxes ``(..., N, 4)`` as ``(..., N, 1)`` and of ``(..., M, 4)`` as ``(..., 1, M)`` (a
    leading batch pairs image by image), in float32 for half and integer inputs."""
    work = boxes1.dtype if boxes1.dtype in (torch.float32, torch.float64) else torch.float32
    return (box_columns(boxes1.to(work)[..., :, None, :]),
            box_columns(boxes2.to(device=boxes1.device, dtype=work)[..., None, :, :]))


def _check_matrix(boxes1: Tensor, boxes2: Tensor) -> None:
    if boxes1.ndim != 2 or boxes1.shape[-1] != 4 or boxes2.ndim != 2 or boxes2.shape[-1] != 4:
        raise ValueError(f"expected (N, 4) and (M, 4) boxes, got {tuple(boxes1.shape)} and {tuple(boxes2.shape)}")


def _out_dtype(boxes: Tensor) -> torch.dtype:
    return boxes.dtype if boxes.is_floating_point() else torch.float32


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Pairwise IoU ``(N, M)`` of boxes ``(N, 4)`` and ``(M, 4)``."""
    _check_matrix(boxes1, boxes2)
    return pair_iou(*_pair_columns(boxes1, boxes2)).to(_out_dtype(boxes1))


def iou_and_diou(boxes1: Tensor, boxes2: Tensor, beta: float = 1.0,
                 denominator: str = "union") -> tuple[Tensor, Tensor]:
    """The IoU and the Distance-IoU (:func:`diou_matrix`) of boxes ``(..., N, 4)`` and ``(..., M, 4)``, from
    one pass over the pairs (the DIoU's ``inter / union`` is the IoU): ``(..., N, M)`` each. A leading batch
    pairs image by image (the VLR's anchors and ground truths, ld.ops.vlr)."""
    if denominator not in ("union", "first"):
        raise ValueError(f"denominator must be 'union' or 'first', got {denominator!r}")
    b1, b2 = _pair_columns(boxes1, boxes2)
    inter = pair_intersection(b1, b2)
    iou = inter / pair_union(inter, b1, b2)
    overlap = iou if denominator == "union" else inter.div_(b1[4].clamp(min=_EPS))
    out = _out_dtype(boxes1)
    return iou.to(out), (overlap - pair_penalty(b1, b2) ** beta).to(out)


def diou_matrix(boxes1: Tensor, boxes2: Tensor, beta: float = 1.0, denominator: str = "union") -> Tensor:
    """Pairwise Distance-IoU ``(N, M)`` of boxes ``(N, 4)`` and ``(M, 4)``.

    ``DIoU = overlap - (rho^2 / c^2) ** beta``: ``rho`` is the distance between the two centres, ``c``
    the diagonal of the smallest box enclosing both. ``beta = 1`` is the DIoU of Zheng et al. (AAAI
    2020); the LD paper's NMS uses ``beta = 0.8``. ``overlap`` is the IoU (``denominator='union'``),
    or, with ``denominator='first'``, the intersection over the area of the ``boxes1`` box, which is
    what the upstream LD code's VLR assigner computes (its ``bbox_overlaps`` divides by ``area1`` in
    every mode but 'iou' and 'giou'). A box has DIoU 1 with itself.
    """
    _check_matrix(boxes1, boxes2)
    return iou_and_diou(boxes1, boxes2, beta, denominator)[1]

"""Plain NMS in pure torch, kept box for kept box the same as mmcv's ``nms`` kernel.

mmcv dispatches its NMS by device; where mmcv was built without CUDA ops there is nothing to dispatch a
GPU tensor to. :func:`nms` is the fallback (:mod:`ld.models.mmcv_cuda` chooses it): mmcv's CPU kernel
(``mmcv/ops/csrc/pytorch/cpu/nms.cpp``) restated on tensors, on any device.
"""
from __future__ import annotations

import numpy as np
import torch


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, offset: int = 0) -> torch.Tensor:
    """Greedy NMS: the indices of the kept boxes, by descending score.

    As mmcv's kernel: boxes sorted by ``scores.sort(descending=True)``; areas and intersections with
    ``+ offset`` on widths and heights (0 in mmcv 2.x, 1 for the legacy pixel convention); a box is
    suppressed by a kept, higher-scored one when their IoU is greater than ``iou_threshold``.

    Args:
        boxes: (N, 4) ``x1, y1, x2, y2``.
        scores: (N,).
        iou_threshold: the IoU above which a lower-scored box is suppressed.
        offset: 0 or 1, added to widths and heights.

    Returns:
        (K,) long indices into ``boxes``, on its device.
    """
    if boxes.numel() == 0:
        return boxes.new_zeros(0, dtype=torch.long)
    order = scores.sort(0, descending=True)[1]
    x1, y1, x2, y2 = boxes[order].float().unbind(1)
    areas = (x2 - x1 + offset) * (y2 - y1 + offset)
    w = (torch.minimum(x2[:, None], x2[None]) - torch.maximum(x1[:, None], x1[None]) + offset).clamp(min=0)
    h = (torch.minimum(y2[:, None], y2[None]) - torch.maximum(y1[:, None], y1[None]) + offset).clamp(min=0)
    inter = w * h
    over = (inter / (areas[:, None] + areas[None] - inter) > iou_threshold).cpu().numpy()
    keep = np.ones(len(over), dtype=bool)
    for i in range(len(over)):  # each box still kept suppresses the lower-scored ones it overlaps
        if keep[i]:
            keep[i + 1:] &= ~over[i, i + 1:]
    return order[torch.from_numpy(keep).to(order.device)]

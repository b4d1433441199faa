"""The valuable localization region (VLR): anchors near an object that are not positives yet
still carry useful localization knowledge, selected with the ATSS threshold of each ground truth.

Pure torch. Follows the upstream LD assigner (``ATSSAssigner.get_vlr_region``): candidates on every
level, no centre-in-box condition, positives not excluded; an anchor claimed by several ground truths
goes to the one it has the largest IoU with, and that IoU is its weight.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ld.ops.box_ops import box_centers, box_iou, diou_matrix


def atss_thresholds(anchors: Tensor, num_level_anchors: list[int], gt_bboxes: Tensor, topk: int = 9) -> Tensor:
    """ATSS IoU thresholds ``(G,)``: mean + std of the IoUs between each ground truth and its ``topk``
    centre-closest anchors on every level (Zhang et al., CVPR 2020).

    Args:
        anchors: ``(N, 4)`` xyxy anchors of one image, levels concatenated in order.
        num_level_anchors: anchors per level, summing to ``N``.
        gt_bboxes: ``(G, 4)`` xyxy ground truths.
        topk: candidates per level (9 in ATSS and LD).
    """
    if sum(num_level_anchors) != anchors.shape[0]:
        raise ValueError(f"num_level_anchors sums to {sum(num_level_anchors)}, anchors has {anchors.shape[0]}")
    ious = box_iou(anchors, gt_bboxes)  # (N, G)
    distances = torch.cdist(box_centers(anchors).float(), box_centers(gt_bboxes).float())  # (N, G)
    candidates = []
    start = 0
    for count in num_level_anchors:
        k = min(topk, count)
        idx = distances[start:start + count].topk(k, dim=0, largest=False).indices + start  # (k, G)
        candidates.append(idx)
        start += count
    candidate_ious = ious.gather(0, torch.cat(candidates, dim=0))  # (k * levels, G)
    return candidate_ious.mean(0) + candidate_ious.std(0)


def vlr_region(
    anchors: Tensor,
    num_level_anchors: list[int],
    gt_bboxes: Tensor,
    alpha: float = 0.25,
    topk: int = 9,
    overlap: str = "diou",
) -> tuple[Tensor, Tensor]:
    """The VLR of one image: anchors whose DIoU with a ground truth ``g`` lies in ``[alpha * t_g, t_g)``.

    ``t_g`` is the ATSS threshold of ``g`` (:func:`atss_thresholds`).

    Args:
        anchors: ``(N, 4)`` xyxy anchors, levels concatenated.
        num_level_anchors: anchors per level.
        gt_bboxes: ``(G, 4)`` xyxy ground truths (``G`` may be 0).
        alpha: lower bound of the band, as a fraction of ``t_g`` (0.25 in the paper).
        topk: ATSS candidates per level.
        overlap: ``'diou'`` (IoU minus the normalised centre distance, the paper's definition) or
            ``'upstream'`` (the upstream code's variant: intersection over the anchor's area minus the
            normalised centre distance).

    Returns:
        ``weights`` ``(N,)`` float: the IoU of each VLR anchor with its ground truth, 0 elsewhere;
        ``gt_index`` ``(N,)`` long: that ground truth's index, -1 outside the VLR.
    """
    if overlap not in ("diou", "upstream"):
        raise ValueError(f"overlap must be 'diou' or 'upstream', got {overlap!r}")
    if not 0 <= alpha < 1:
        raise ValueError(f"alpha must lie in [0, 1), got {alpha}")
    n = anchors.shape[0]
    weights = anchors.new_zeros(n)
    gt_index = torch.full((n,), -1, dtype=torch.long, device=anchors.device)
    if gt_bboxes.numel() == 0 or n == 0:
        return weights, gt_index
    thresholds = atss_thresholds(anchors, num_level_anchors, gt_bboxes, topk)  # (G,)
    diou = diou_matrix(anchors, gt_bboxes, denominator="union" if overlap == "diou" else "first")  # (N, G)
    in_band = (diou >= alpha * thresholds[None, :]) & (diou < thresholds[None, :])  # (N, G)
    ious = box_iou(anchors, gt_bboxes).masked_fill(~in_band, -1.0)
    best_iou, best_gt = ious.max(dim=1)
    selected = best_iou > 0  # in the band of at least one ground truth (and overlapping it)
    weights[selected] = best_iou[selected].to(weights.dtype)
    gt_index[selected] = best_gt[selected]
    return weights, gt_index

"""Score-voting Cluster-DIoU-NMS in pure torch (the post-processing used by the LD paper).

Nothing here depends on mmcv or mmdet, so the module works on any device and dtype that torch supports.

* :func:`voting_cluster_diou_nms` -- class-aware Cluster-NMS on DIoU (same result as greedy DIoU-NMS)
  followed by score voting of the kept boxes' coordinates.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ld.ops.box_ops import diou_matrix

__all__ = ["voting_cluster_diou_nms"]

# The name of this NMS as a config type (``test_cfg.nms=dict(type=NMS_TYPE, ...)``, registered by
# ld.models.voting_nms), and the test-time NMS a run may choose (``ld eval --nms``): mmdet's plain one, and this.
NMS_TYPE = "voting_cluster_diounms"
NMS_TYPES: tuple[str, ...] = ("nms", NMS_TYPE)

def _work_dtype(dtype: torch.dtype) -> torch.dtype:
    """Dtype the computation runs in: float32/float64 as given, half types and integers in float32."""
    return dtype if dtype in (torch.float32, torch.float64) else torch.float32


def voting_cluster_diou_nms(
    boxes: Tensor,
    scores: Tensor,
    labels: Tensor,
    iou_threshold: float = 0.6,
    max_num: int = -1,
    beta: float = 0.8,
    vote_threshold: float = 0.7,
    vote_sigma: float = 0.025,
) -> tuple[Tensor, Tensor, Tensor]:
    """Class-aware Cluster-DIoU-NMS with score voting.

    1. Detections are sorted by descending score (stable: ties keep input order).
    2. Cluster-NMS on the DIoU matrix, restricted to pairs of the same class: box ``j`` is suppressed if a
       *kept* higher-ranked box ``i`` has ``DIoU(i, j) > iou_threshold``. The kept set is re-evaluated from
       the previous one until it stops changing (at most ``N`` iterations); the fixed point is exactly the
       result of greedy DIoU-NMS.
    3. Score voting: every kept box ``i`` is replaced by the weighted average of itself (weight
       ``score_i``) and every lower-ranked box ``j`` of its class, kept or suppressed, with
       ``DIoU(i, j) > vote_threshold``, weighted by ``score_j * exp(-(1 - DIoU(i, j))^2 / vote_sigma)``.
       Scores are unchanged.

    Args:
        boxes: ``(N, 4)`` boxes ``(x1, y1, x2, y2)``.
        scores: ``(N,)`` detection scores (non-negative).
        labels: ``(N,)`` integer class labels; boxes of different classes never interact.
        iou_threshold: DIoU above which a lower-ranked box is suppressed.
        max_num: keep at most this many detections (the highest-scoring); ``<= 0`` keeps all.
        beta: exponent of the DIoU centre-distance penalty.
        vote_threshold: DIoU above which a lower-ranked box votes for a kept box.
        vote_sigma: width of the voting weight ``exp(-(1 - DIoU)^2 / vote_sigma)``.

    Returns:
        ``dets`` ``(K, 5)``: voted boxes and their (unchanged) scores, in the dtype of ``boxes``
        (float32 for non-float boxes); ``labels`` ``(K,)``: their labels; ``keep`` ``(K,)`` long: their
        indices into the input. All sorted by descending score, ties in input order.
    """
    if boxes.ndim != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"boxes must be (N, 4), got {tuple(boxes.shape)}")
    n = boxes.shape[0]
    if scores.shape != (n,) or labels.shape != (n,):
        raise ValueError(f"scores and labels must be ({n},), got {tuple(scores.shape)} and {tuple(labels.shape)}")
    device = boxes.device
    out_dtype = boxes.dtype if boxes.is_floating_point() else torch.float32
    if n == 0:
        return (
            boxes.new_zeros((0, 5), dtype=out_dtype),
            labels.new_zeros((0,)),
            torch.zeros((0,), dtype=torch.long, device=device),
        )

    work = _work_dtype(out_dtype)
    scores = scores.to(device)
    labels = labels.to(device)
    order = torch.sort(scores, descending=True, stable=True).indices  # (N,)
    sorted_boxes = boxes[order].to(work)  # (N, 4)
    sorted_scores = scores[order].to(work)  # (N,)
    sorted_labels = labels[order]  # (N,)

    diou = diou_matrix(sorted_boxes, sorted_boxes, beta=beta)  # (N, N), symmetric
    rank = torch.arange(n, device=device)
    # Pairs (i, j) with i ranked above j and of the same class: the only pairs that interact.
    upper_same = (rank[:, None] < rank[None, :]) & (sorted_labels[:, None] == sorted_labels[None, :])

    # Cluster-NMS: suppresses[i, j] is True when i would suppress j if i is kept. Box j's status depends only
    # on boxes ranked above it, so after t iterations the top t statuses are final; a fixed point is the
    # greedy-NMS answer.
    suppresses = upper_same & (diou > iou_threshold)  # (N, N)
    keep_mask = torch.ones(n, dtype=torch.bool, device=device)
    for _ in range(n):
        new_keep = ~(suppresses & keep_mask[:, None]).any(dim=0)
        if torch.equal(new_keep, keep_mask):
            break
        keep_mask = new_keep

    kept = torch.nonzero(keep_mask, as_tuple=False).squeeze(1)  # (K,) positions in score order
    if max_num > 0:
        kept = kept[:max_num]

    # Score voting for the kept rows only.
    d = diou[kept]  # (K, N)
    voters = upper_same[kept] & (d > vote_threshold)
    weights = torch.where(
        voters,
        sorted_scores[None, :] * torch.exp(-((1 - d) ** 2) / vote_sigma),
        torch.zeros((), dtype=work, device=device),
    )
    own = torch.arange(kept.numel(), device=device)
    weights[own, kept] = sorted_scores[kept]  # the box itself: DIoU 1, weight = its score
    total = weights.sum(dim=1, keepdim=True)  # (K, 1)
    voted = (weights @ sorted_boxes) / torch.where(total != 0, total, torch.ones_like(total))
    voted = torch.where(total != 0, voted, sorted_boxes[kept])  # all-zero weights: keep the box as is

    dets = torch.cat([voted, sorted_scores[kept, None]], dim=1).to(out_dtype)
    return dets, sorted_labels[kept], order[kept]

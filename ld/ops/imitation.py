"""Feature imitation: the student's FPN features pulled towards the teacher's on a region (pure torch).

The region methods of the upstream LD code (HikariTJU/LD ``mmdet/models/dense_heads/ld_head.py``:
``get_im_region``, ``get_gi_region``; ``mmdet/models/losses/kd_loss.py``: ``IMLoss``), which the paper
compares with LD ("Logit Mimicking vs. Feature Imitation"):

- ``fitnet``: every location (FitNets imitates the whole feature map);
- ``inside_gt``: locations whose prior centre is strictly inside a ground-truth box (upstream computes
  this region for its ``fitnet``, ``decouple`` and ``gibox`` modes);
- ``finegrained``: priors whose IoU with a ground truth exceeds half of that ground truth's largest IoU
  over all priors of the image (Wang et al., CVPR 2019, ratio 0.5);
- ``decouple``: DeFeat (Guo et al., CVPR 2021): the foreground (``inside_gt``) and the background
  imitated separately, the background term weighted 2 as upstream weights it;
- ``gibox``: General Instance distillation (Dai et al., CVPR 2021): at each location the GI score is the
  largest absolute difference of teacher and student class probabilities, the GI box the teacher's box
  where the teacher's probability is the larger there, else the student's; NMS at IoU 0.3 keeps the
  ``topk`` = 10 highest (per image and level here, per level over the whole batch upstream).

The loss on a region is the mean squared error over its rows and channels (upstream's ``F.mse_loss``).
Shapes: features flattened to ``(N, C)`` rows (locations), regions ``(N,)`` bool.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ld.ops.box_ops import box_iou
from ld.ops.nms import nms

IMITATION_METHODS = ("fitnet", "inside_gt", "finegrained", "decouple", "gibox")
FINEGRAINED_RATIO = 0.5  # upstream: iou > 0.5 * iou.max(0)
DECOUPLE_BACKGROUND_WEIGHT = 2.0  # upstream: loss_im(fg) + 2 * loss_im(bg)
GI_NMS_IOU = 0.3  # upstream: torchvision nms(gibox, giscore, 0.3)[:10]
GI_TOPK = 10


def points_inside_boxes(points: Tensor, boxes: Tensor) -> Tensor:
    """``(N,)`` bool: whether each point ``(N, 2)`` lies strictly inside any box ``(G, 4)``."""
    if boxes.numel() == 0:
        return points.new_zeros(points.shape[0], dtype=torch.bool)
    x, y = points[:, 0:1], points[:, 1:2]  # (N, 1)
    b = boxes.to(points)
    inside = (x > b[:, 0]) & (x < b[:, 2]) & (y > b[:, 1]) & (y < b[:, 3])  # (N, G)
    return inside.any(dim=1)


def finegrained_region(anchors: Tensor, gt_bboxes: Tensor, ratio: float = FINEGRAINED_RATIO) -> Tensor:
    """``(N,)`` bool: anchors ``(N, 4)`` whose IoU with some ground truth ``(G, 4)`` exceeds ``ratio`` times
    that ground truth's largest IoU over all ``N`` anchors (one image, every level)."""
    if gt_bboxes.numel() == 0 or anchors.numel() == 0:
        return anchors.new_zeros(anchors.shape[0], dtype=torch.bool)
    iou = box_iou(anchors, gt_bboxes)  # (N, G)
    return (iou > ratio * iou.max(dim=0).values).any(dim=1)


def gi_region(t_cls: Tensor, s_cls: Tensor, t_boxes: Tensor, s_boxes: Tensor,
              iou_threshold: float = GI_NMS_IOU, topk: int = GI_TOPK) -> Tensor:
    """The General Instance locations of one image and level: ``(K,)`` long indices, ``K <= topk``.

    Args:
        t_cls, s_cls: ``(N, C)`` teacher and student class logits (sigmoid probabilities are compared).
        t_boxes, s_boxes: ``(N, 4)`` teacher and student boxes decoded at each location.
        iou_threshold: NMS IoU among the GI boxes.
        topk: how many are kept, by descending GI score.
    """
    diff = t_cls.detach().sigmoid() - s_cls.detach().sigmoid()  # (N, C)
    score, cls = diff.abs().max(dim=1)  # (N,)
    teacher_larger = diff.gather(1, cls[:, None])[:, 0] >= 0
    boxes = torch.where(teacher_larger[:, None], t_boxes.detach(), s_boxes.detach())
    return nms(boxes.float(), score.float(), iou_threshold)[:topk]


def _mse(s_feat: Tensor, t_feat: Tensor, rows: Tensor) -> Tensor:
    """Mean squared error over the selected rows (all channels); 0 (with the graph) when none is."""
    if not bool(rows.any()):
        return s_feat.sum() * 0
    return F.mse_loss(s_feat[rows], t_feat[rows].detach())


def imitation_loss(s_feat: Tensor, t_feat: Tensor, region: Tensor, method: str) -> Tensor:
    """Feature imitation on one level: ``(N, C)`` student (adapted to the teacher's width) and teacher
    features, ``(N,)`` bool region.

    ``fitnet`` ignores ``region`` (every row); ``decouple`` is the MSE on the region (the foreground)
    plus :data:`DECOUPLE_BACKGROUND_WEIGHT` times the MSE on the rest, and 0 when the region is empty
    (as upstream); the other methods are the MSE on the region. Returns a 0-d loss before the weight.
    """
    if method not in IMITATION_METHODS:
        raise ValueError(f"imitation method must be one of {IMITATION_METHODS}, got {method!r}")
    if s_feat.shape != t_feat.shape:
        raise ValueError(f"student features {tuple(s_feat.shape)} and teacher's {tuple(t_feat.shape)} differ")
    if method == "fitnet":
        return F.mse_loss(s_feat, t_feat.detach())
    if method == "decouple":
        if not bool(region.any()):
            return s_feat.sum() * 0
        return _mse(s_feat, t_feat, region) + DECOUPLE_BACKGROUND_WEIGHT * _mse(s_feat, t_feat, ~region)
    return _mse(s_feat, t_feat, region)

"""GFocalV2's distribution-guided quality predictor (DGQP), as pure functions.

The flatter an edge's distribution, the less certain its location: DGQP reads the top-k
probabilities of each edge's distribution (and their mean) and predicts a localization quality in
(0, 1) that multiplies the classification score (Li et al., GFocalV2, CVPR 2021).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def dgqp_features(bbox_pred: Tensor, reg_max: int = 16, topk: int = 4, add_mean: bool = True) -> Tensor:
    """Statistics of the four edge distributions at every location.

    Args:
        bbox_pred: ``(B, 4 * (reg_max + 1), H, W)`` edge-distribution logits.
        reg_max: the largest integral value (17 bins for 16).
        topk: probabilities kept per edge (4 in GFocalV2).
        add_mean: append the mean of those top-k (GFocalV2's default).

    Returns:
        ``(B, 4 * (topk + add_mean), H, W)`` features; 20 channels with the defaults.
    """
    b, c, h, w = bbox_pred.shape
    if c != 4 * (reg_max + 1):
        raise ValueError(f"bbox_pred has {c} channels, expected 4 * (reg_max + 1) = {4 * (reg_max + 1)}")
    prob = F.softmax(bbox_pred.reshape(b, 4, reg_max + 1, h, w), dim=2)
    top = prob.topk(topk, dim=2).values  # (B, 4, topk, H, W)
    if add_mean:
        top = torch.cat([top, top.mean(dim=2, keepdim=True)], dim=2)
    return top.reshape(b, -1, h, w)


def joint_score_logits(cls_logits: Tensor, quality: Tensor, eps: float = 1e-12) -> Tensor:
    """Logits of the joint score ``sigmoid(cls_logits) * quality``.

    GFocalV2 multiplies the class probability by the predicted quality. Returning that product as a
    logit, ``log p - log(1 - p)``, lets every GFocalV1 code path (QFL on logits, sigmoid at test time,
    the LD weights) run unchanged: ``sigmoid`` of the result is exactly the product.

    Args:
        cls_logits: ``(B, C, H, W)`` class logits.
        quality: ``(B, 1, H, W)`` DGQP output in (0, 1).
    """
    log_p = F.logsigmoid(cls_logits) + torch.log(quality.clamp(min=eps))
    return log_p - torch.log1p(-torch.exp(log_p).clamp(max=1 - 1e-7))

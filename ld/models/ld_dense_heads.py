"""LD heads for ATSS, FCOS and RetinaNet: the general-distribution heads of
:mod:`ld.models.distribution_heads` with the distillation terms of :class:`ld.models.ld_head.LDHeadMixin`
(the same pure functions as the GFocal heads), each with upstream's VLR rule and divisor (HikariTJU/LD
``mmdet/models/dense_heads/ld_atss.py``, ``ld_fcos_head.py``, ``ld_retina.py``):

- ATSS: the ATSS-threshold band (the GFocal rule), weighted by the IoU with its ground truth;
  upstream's factor 0.15, divided by 4;
- RetinaNet: the same band without the positives, weighted by IoU; factor 0.03, divided by 4;
- FCOS: the points inside a ground-truth box that are not positive, weighted by the student's max class
  score; factor 0.25, divided by 4.

ATSS and RetinaNet select their VLR among each image's inside anchors only, as upstream's
``_get_target_single`` (``LDHeadMixin.prior_inside``); FCOS among all points of the padded grid, as
upstream's (``ld_fcos_head.py`` ``_get_target_single`` has no inside flags, nor has mmdet's FCOS).

The factor multiplies ``loss_ld``'s weight in upstream's code; here a config's ``ld_vlr.loss_weight``
carries it (e.g. ATSS: 0.15 x 0.25) and the divisor is the head's :attr:`vlr_divisor`. Main LD (the
positives, each edge weighted by the student's max score, / 4) and KD (the mean over each level's
positives) are GFocal's.
"""
from __future__ import annotations

import torch
from mmdet.registry import MODELS
from torch import Tensor

from ld.models.distribution_heads import ATSSGFLHead, FCOSGFLHead, RetinaGFLHead
from ld.models.ld_head import LDHeadMixin
from ld.ops.imitation import points_inside_boxes

UPSTREAM_VLR_DIVISOR = 4.0  # ld_atss.py, ld_fcos_head.py, ld_retina.py: loss_ld(..., avg_factor=4)


def _grid_priors(head, cls_scores: list[Tensor]) -> list[Tensor]:
    """The head's priors per level for these feature maps, for each image: ``[(B, A_l, 4 or 2)]``."""
    B = cls_scores[0].shape[0]
    priors = head.prior_generator.grid_priors([c.shape[-2:] for c in cls_scores], device=cls_scores[0].device)
    return [p.expand(B, -1, -1) for p in priors]


@MODELS.register_module()
class LDATSSGFLHead(LDHeadMixin, ATSSGFLHead):
    """An ATSS student (general-distribution boxes) with LD, VLR LD and KD (upstream ``LDATSSHead``)."""

    student_head, detector = ATSSGFLHead, "ATSS"
    vlr_divisor = UPSTREAM_VLR_DIVISOR


@MODELS.register_module()
class LDRetinaGFLHead(LDHeadMixin, RetinaGFLHead):
    """A RetinaNet student (general-distribution boxes) with LD, VLR LD and KD (upstream ``LDRetinaHead``)."""

    student_head, detector = RetinaGFLHead, "RetinaNet"
    vlr_divisor = UPSTREAM_VLR_DIVISOR

    def distill_targets(self, targets, cls_scores):
        """mmdet's anchor head returns labels first, without anchors: the anchors are the grid's."""
        return _grid_priors(self, cls_scores), list(targets[0])

    def vlr_weight(self, priors, num_level_priors, pos, s_cls, batch_gt_instances, inside=None):
        """GFocal's VLR without the positives (upstream: ``vlr_weights[labels != num_classes] = 0``), on the
        inside anchors (upstream ``ld_retina.py``: ``get_vlr_region(flat_anchors[inside_flags], ...)``)."""
        return super().vlr_weight(priors, num_level_priors, pos, s_cls, batch_gt_instances,
                                  inside).masked_fill(pos, 0)


@MODELS.register_module()
class LDFCOSGFLHead(LDHeadMixin, FCOSGFLHead):
    """An FCOS student (general-distribution boxes) with LD, VLR LD and KD (upstream ``LDFCOSHead``).

    The VLR of an anchor-free head (upstream's ``labels == num_classes + 1``): the points inside a
    ground-truth box that are not positive (outside the centre region or the level's range), weighted by
    the student's detached max class score; ``ld_vlr.alpha`` and ``overlap`` do not apply.
    """

    student_head, detector = FCOSGFLHead, "FCOS"
    vlr_divisor = UPSTREAM_VLR_DIVISOR

    def distill_targets(self, targets, cls_scores):
        """mmdet's FCOS returns labels per level with the images concatenated: ``(B * A_l,)`` -> ``(B, A_l)``."""
        B = cls_scores[0].shape[0]
        return _grid_priors(self, cls_scores), [labels.reshape(B, -1) for labels in targets[0]]

    def prior_inside(self, cls_scores, batch_img_metas):
        """``None``: every point of the padded grid, as upstream's FCOS targets (``ld_fcos_head.py``
        ``_get_target_single``) and mmdet's, which have no inside flags. A point of the batch padding is in
        no ground-truth box of a smaller image anyway where the boxes are clipped to it (mmdet's default)."""
        return None

    def vlr_weight(self, priors, num_level_priors, pos, s_cls, batch_gt_instances, inside=None):
        """``inside`` is :meth:`prior_inside`'s None: every point."""
        in_box = torch.stack([points_inside_boxes(priors[i], gt.bboxes) for i, gt in enumerate(batch_gt_instances)])
        return s_cls.detach().sigmoid().max(dim=-1).values * (in_box & ~pos)

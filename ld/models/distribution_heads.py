"""ATSS, FCOS and RetinaNet heads whose box branch predicts general distributions (GFocal's box
representation): the heads LD distils into beyond GFocal, "GFL-ized" as upstream calls them.

Each is mmdet 3.3's head with one change: the box conv predicts ``4 * (reg_max + 1)`` logits per prior
(one discrete distribution per edge, ``reg_max = 16`` bins of one stride each, as GFocal), and the box
is the distributions' expectations times the level's stride, measured from the prior's centre. The
losses are mmdet's own (focal loss, GIoU, centre-ness): upstream trains these heads with "only the
general distribution, no DFL or QFL" (HikariTJU/LD issue 26; ``mmdet/models/dense_heads/
atss_gfl_head.py``, ``fcos_gfl_head.py``, ``retina_gfl_head.py``). Upstream measures boxes in strides,
here in pixels; the GIoU and the centre-ness targets are ratios, so the losses are the same.

Every prior's distributions are its own (RetinaNet: 9 anchors per location, each with 4 distributions),
measured from the prior's centre, which all anchors of a location share.
"""
from __future__ import annotations

import torch
from mmdet.models.dense_heads import ATSSHead, FCOSHead, RetinaHead
from mmdet.models.dense_heads.anchor_free_head import AnchorFreeHead
from mmdet.models.task_modules.coders import DistancePointBBoxCoder
from mmdet.models.task_modules.prior_generators import MlvlPointGenerator
from mmdet.registry import MODELS, TASK_UTILS
from torch import Tensor, nn

from ld.errors import ConfigError
from ld.ops.box_ops import prior_centers
from ld.ops.distribution import expected_offset


def expected_distances(bbox_pred: Tensor, reg_max: int, stride: float) -> Tensor:
    """``(B, k * 4 * (reg_max + 1), H, W)`` edge logits -> ``(B, k * 4, H, W)`` distances in pixels: each
    edge's expectation over bins ``0..reg_max`` (softmax), times ``stride``."""
    B, _, H, W = bbox_pred.shape
    return expected_offset(bbox_pred.reshape(B, -1, reg_max + 1, H, W).softmax(dim=2), dim=2) * stride


@TASK_UTILS.register_module()
class PriorCenterDistanceCoder(DistancePointBBoxCoder):
    """Distances (left, top, right, bottom) from a prior's centre: priors are anchors ``(N, 4)`` (their
    centres are used) or points ``(N, 2)``."""

    def decode(self, priors: Tensor, pred_bboxes: Tensor, max_shape=None):
        return super().decode(prior_centers(priors), pred_bboxes, max_shape)


def geometric_logits(mean: float, bins: int) -> Tensor:
    """``(bins,)`` logits ``-lam * k`` of a distribution over ``k = 0 .. bins - 1`` decaying geometrically,
    with expectation ``mean`` (``0 < mean < (bins - 1) / 2``; ``lam`` by bisection)."""
    if not 0 < mean < (bins - 1) / 2:
        raise ConfigError(f"box_prior must be in (0, {(bins - 1) / 2}) strides, got {mean}")
    k = torch.arange(bins, dtype=torch.float64)
    lo, hi = 0.0, 50.0
    for _ in range(100):
        lam = (lo + hi) / 2
        if float((k * torch.softmax(-lam * k, 0)).sum()) > mean:
            lo = lam
        else:
            hi = lam
    return (-lam * k).float()


class DistributionBoxMixin:
    """The general-distribution box branch: mmdet's losses and predictions on the expected distances.

    Mixed in before the mmdet head; ``reg_conv`` names the head's box conv, replaced here.

    ``box_prior``: None (upstream) starts every edge uniform, at 8 strides, whatever the object; a number
    starts each edge's distribution decaying from bin 0 with that expectation in strides (its bias, as
    the class branch's prior probability sets its bias). With uniform starts and only the GIoU to learn
    from, boxes 16 strides wide around small objects give the box branch almost no gradient: RetinaNet's
    box loss stayed at 1.93 through the mini profile's 768 iterations (AP 0.0); with ``box_prior=1.5`` it
    learns (README "differs from upstream").
    """

    reg_conv = ""

    def __init__(self, *args, reg_max: int = 16, box_prior: float | None = None, **kwargs) -> None:
        self.reg_max = reg_max  # before the parent's __init__, which builds the layers
        self.box_prior = box_prior
        super().__init__(*args, **kwargs)
        if box_prior is not None:
            geometric_logits(box_prior, reg_max + 1)  # a value out of range is an error now

    def init_weights(self) -> None:
        super().init_weights()
        if self.box_prior is not None:
            conv = getattr(self, self.reg_conv)
            with torch.no_grad():
                conv.bias.copy_(geometric_logits(self.box_prior, self.reg_max + 1).repeat(conv.out_channels
                                                                                          // (self.reg_max + 1)))

    def _replace_reg_conv(self) -> None:
        old = getattr(self, self.reg_conv)
        setattr(self, self.reg_conv, nn.Conv2d(old.in_channels, self.num_base_priors * 4 * (self.reg_max + 1),
                                               old.kernel_size, padding=old.padding))

    def box_distances(self, bbox_preds: list[Tensor]) -> list[Tensor]:
        """Per level ``(B, k * 4, H, W)`` pixel distances of the edge logits ``bbox_preds``."""
        strides = [s[0] for s in self.prior_generator.strides]
        return [expected_distances(p, self.reg_max, s) for p, s in zip(bbox_preds, strides)]

    def loss_by_feat(self, cls_scores, bbox_preds, *args, **kwargs) -> dict:
        return super().loss_by_feat(cls_scores, self.box_distances(bbox_preds), *args, **kwargs)

    def predict_by_feat(self, cls_scores, bbox_preds, *args, **kwargs):
        return super().predict_by_feat(cls_scores, self.box_distances(bbox_preds), *args, **kwargs)


@MODELS.register_module()
class ATSSGFLHead(DistributionBoxMixin, ATSSHead):
    """ATSS (focal loss, GIoU weighted by centre-ness, centre-ness) with general-distribution boxes
    (upstream ``ATSSGFLHead``)."""

    reg_conv = "atss_reg"

    def _init_layers(self) -> None:
        super()._init_layers()
        self._replace_reg_conv()


@MODELS.register_module()
class RetinaGFLHead(DistributionBoxMixin, RetinaHead):
    """RetinaNet (focal loss, GIoU on decoded boxes, 9 anchors per location) with general-distribution
    boxes (upstream ``RetinaGFLHead``); ``reg_decoded_bbox`` must be true, as upstream's config sets it."""

    reg_conv = "retina_reg"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not self.reg_decoded_bbox:
            raise ConfigError("RetinaGFLHead needs reg_decoded_bbox=True: its boxes are decoded distributions")

    def _init_layers(self) -> None:
        super()._init_layers()
        self._replace_reg_conv()


@MODELS.register_module()
class FCOSGFLHead(DistributionBoxMixin, FCOSHead):
    """FCOS (focal loss, GIoU weighted by centre-ness, centre-ness on the box tower) with general-
    distribution boxes (upstream ``FCOSGFLHead``).

    ``point_offset``: the points sit at ``(i + point_offset) * stride``; 0 (default) puts them at the
    anchor centres of the anchor-based heads, so a GFocal teacher's distributions describe the same
    points (mmdet 3's FCOS: 0.5; upstream's mmdet 2 FCOS: ``stride // 2``). ``norm_on_bbox`` must be false
    (the distributions are in strides already), as upstream's config sets it.
    """

    reg_conv = "conv_reg"

    def __init__(self, *args, point_offset: float = 0.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.norm_on_bbox:
            raise ConfigError("FCOSGFLHead needs norm_on_bbox=False: its distances are distributions over strides")
        self.prior_generator = MlvlPointGenerator(self.strides, offset=point_offset)

    def _init_predictor(self) -> None:
        super()._init_predictor()
        self._replace_reg_conv()

    def forward_single(self, x: Tensor, scale, stride: int) -> tuple[Tensor, Tensor, Tensor]:
        """``(cls (B, C, H, W), edge logits (B, 4 * (reg_max + 1), H, W), centre-ness (B, 1, H, W))``: no
        ``exp`` on the box branch (the logits are distributions)."""
        cls_score, bbox_pred, cls_feat, reg_feat = AnchorFreeHead.forward_single(self, x)
        centerness = self.conv_centerness(reg_feat if self.centerness_on_reg else cls_feat)
        return cls_score, scale(bbox_pred).float(), centerness

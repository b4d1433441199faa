"""LD heads: a GFocal head that adds the distillation terms of the LD paper to its own losses.

The GFocal losses (QFL, GIoU, DFL) are the parent's, unchanged. On top, three explicitly switched
terms, each a pure function of the flattened student and teacher outputs (:mod:`ld.ops.distillation`),
given the assigner's targets of the same step:

- ``ld_main``: LD (:func:`ld.ops.ld_loss` on the four edge distributions) on the main distillation region,
  the ATSS positives, weighted by the student's detached max class score (as the DFL is);
- ``ld_vlr``: LD on the valuable localization region (:func:`ld.ops.vlr_region`), weighted by the IoU of
  each VLR anchor with its ground truth;
- ``kd_main``: classification KD (the same softened KL over class logits) on the positives.

Defaults of the upstream LD configs (HikariTJU/LD ``configs/ld/ld_r50_gflv1_r101_fpn_coco_1x.py``,
mirrored by PaddleDetection's ``gfl_slim_ld_r18vd_1x_coco.yml``): ``loss_ld`` 0.25 with T=10,
``loss_ld_vlr`` 0.25 with T=10, ``loss_kd`` 10 with T=2.

Normalisation (``normalize``), logged at construction:
- ``'upstream'`` (paper fidelity): main LD is ``sum(weight * KL) / 4`` over all positives of the batch,
  never divided by their number (so it grows with images per GPU); VLR LD ``sum(IoU * KL) / 16``; KD the
  mean over each level's positives, summed over levels.
  The box (GIoU) and DFL losses are divided by upstream's normaliser too (:func:`upstream_box_rescale`).
- ``'per_positive'``: each term divided by its number of locations (x4 edges for LD), averaged over
  GPUs and clamped to at least 1, so its size does not depend on the batch layout.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from mmdet.models.dense_heads import GFLHead
from mmdet.models.utils import unpack_gt_instances
from mmdet.registry import MODELS
from mmdet.utils import reduce_mean
from mmengine.logging import print_log
from torch import Tensor

from ld.errors import ConfigError
from ld.models.gflv2_head import GFLv2Head
from ld.ops.distillation import class_kd, flatten_levels, main_region_ld, vlr_ld
from ld.ops.vlr import pad_gt, vlr_region_batched

NORMALIZATIONS = ("upstream", "per_positive")


@dataclass(frozen=True)
class DistillTerm:
    """One switchable distillation term of the head config."""

    enabled: bool
    loss_weight: float
    T: float
    alpha: float = 0.25  # VLR only: lower bound of the DIoU band, as a fraction of the ATSS threshold
    overlap: str = "diou"  # VLR only: 'diou' or 'upstream' (see ld.ops.vlr.vlr_region)

    @classmethod
    def from_config(cls, name: str, cfg) -> DistillTerm:
        if cfg is None or "enabled" not in cfg:
            raise ConfigError(f"bbox_head.{name} must say explicitly whether it is enabled, e.g. "
                              f"{name}=dict(enabled=True, loss_weight=0.25, T=10)")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise ConfigError(f"bbox_head.{name}.{unknown[0]} is not a setting of a distillation term "
                              f"(known: {', '.join(sorted(known))})")
        missing = [key for key in ("loss_weight", "T") if key not in cfg]
        if missing:
            raise ConfigError(f"bbox_head.{name}.{missing[0]} is missing, e.g. "
                              f"{name}=dict(enabled=True, loss_weight=0.25, T=10)")
        term = cls(**dict(cfg))
        if not term.T > 0:
            raise ConfigError(f"bbox_head.{name}.T must be > 0, got {term.T}")
        if term.loss_weight < 0:
            raise ConfigError(f"bbox_head.{name}.loss_weight must be >= 0, got {term.loss_weight}")
        return term


def upstream_box_rescale(weight_sum: Tensor, eps: float = 1e-6) -> float:
    """Factor turning mmdet 3's box / DFL normaliser into upstream LD's.

    Both divide the summed box and DFL losses by the sum of the box weights (each positive's max
    class score) averaged over GPUs: mmdet 3.3's ``GFLHead`` clamps it at 1, upstream's ``LDHead``
    (HikariTJU/LD ``mmdet/models/dense_heads/ld_head.py``: ``sum(avg_factor) + 1e-6``, ``reduce_mean``)
    adds 1e-6 and does not clamp. ``weight_sum``: this GPU's sum (a 0-d tensor).
    """
    mean = reduce_mean(weight_sum.detach().float())
    return (mean.clamp(min=1.0) / (mean + eps)).item()


class LDHeadMixin:
    """Adds LD / VLR-LD / KD to a GFocal head. Mixed in before the head class."""

    def __init__(self, *args, ld_main: dict, ld_vlr: dict, kd_main: dict, normalize: str = "upstream",
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.ld_main = DistillTerm.from_config("ld_main", ld_main)
        self.ld_vlr = DistillTerm.from_config("ld_vlr", ld_vlr)
        self.kd_main = DistillTerm.from_config("kd_main", kd_main)
        if normalize not in NORMALIZATIONS:
            raise ConfigError(f"bbox_head.normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
        self.normalize = normalize
        self._step_targets = None  # the assigner's targets of the current step, taken by get_targets
        print_log(f"{type(self).__name__}: ld_main={self.ld_main}, ld_vlr={self.ld_vlr}, kd_main={self.kd_main}, "
                  f"normalize={normalize!r}", logger="current")

    def get_targets(self, *args, **kwargs):
        """The parent's targets; the step's first call is kept for the distillation terms (no second
        assignment)."""
        targets = super().get_targets(*args, **kwargs)
        if self._step_targets is None:
            self._step_targets = targets
        return targets

    def loss(self, x: tuple[Tensor], teacher, batch_data_samples) -> dict:
        """GFocal losses of the student plus the enabled distillation terms.

        Args:
            x: student FPN features.
            teacher: the teacher's outputs for this batch: ``rows(needed, with_cls)`` gives its flattened
                ``(cls (B, A, C) or None, reg (B, A, 4 * bins))`` at least where ``needed`` (B, A) is set
                (:class:`ld.models.distiller.TeacherOutputs`, or the soft-target cache's reader).
            batch_data_samples: the batch's data samples with ground truth.
        """
        batch_gt_instances, batch_gt_instances_ignore, batch_img_metas = unpack_gt_instances(batch_data_samples)
        cls_scores, bbox_preds = self(x)
        self._step_targets = None
        losses = self.loss_by_feat(cls_scores, bbox_preds, batch_gt_instances, batch_img_metas,
                                   batch_gt_instances_ignore=batch_gt_instances_ignore)
        anchors_per_level, labels_per_level = self._step_targets[0], self._step_targets[1]
        self._step_targets = None
        losses.update(self.distill_losses(cls_scores, bbox_preds, teacher, batch_gt_instances,
                                          anchors_per_level, labels_per_level))
        return losses

    def loss_by_feat_single(self, *args, **kwargs):
        """The parent's per-level losses; keeps the level's sum of box weights for ``loss_by_feat``."""
        out = super().loss_by_feat_single(*args, **kwargs)
        self._box_weight_sums.append(out[3])
        return out

    def loss_by_feat(self, *args, **kwargs) -> dict:
        """The parent's GFocal losses; under ``normalize='upstream'`` the box (GIoU) and DFL losses are
        divided by upstream's normaliser instead of mmdet 3's (:func:`upstream_box_rescale`)."""
        self._box_weight_sums: list[Tensor] = []
        losses = super().loss_by_feat(*args, **kwargs)
        if self.normalize == "upstream":
            scale = upstream_box_rescale(sum(self._box_weight_sums))
            for key in ("loss_bbox", "loss_dfl"):
                losses[key] = [loss * scale for loss in losses[key]]
        return losses

    def _normalizer(self, count: Tensor) -> float | None:
        """``per_positive``: the region's size averaged over GPUs, at least 1; ``upstream``: ``None``."""
        if self.normalize != "per_positive":
            return None
        return reduce_mean(count.float()).clamp(min=1.0).item()

    def distill_losses(self, s_cls_scores: list[Tensor], s_bbox_preds: list[Tensor], teacher, batch_gt_instances,
                       anchors_per_level: list[Tensor], labels_per_level: list[Tensor]) -> dict[str, Tensor]:
        """``loss_ld``, ``loss_ld_vlr`` and ``loss_kd`` for the enabled terms.

        Args:
            s_cls_scores, s_bbox_preds: the student's per-level outputs ``[(B, C, H, W)]``, ``[(B, 4 * bins, H, W)]``.
            teacher: the teacher's outputs (see :meth:`loss`); asked only for the locations these terms
                read, the positives and the VLR.
            batch_gt_instances: the ground truth, per image.
            anchors_per_level: ``[(B, A_l, 4)]`` the assigner's anchors; labels_per_level: ``[(B, A_l)]``
                its labels (``num_classes`` for background), as ``get_targets`` returns them.
        """
        s_cls, s_reg = flatten_levels(s_cls_scores), flatten_levels(s_bbox_preds)  # (B, A, C), (B, A, 4 * bins)
        labels = torch.cat(labels_per_level, dim=1)  # (B, A)
        pos = (labels >= 0) & (labels < self.num_classes)
        if self.ld_vlr.enabled:
            anchors = torch.cat(anchors_per_level, dim=1)  # (B, A, 4)
            num_level_anchors = [a.shape[1] for a in anchors_per_level]
            gt_bboxes, gt_valid = pad_gt([gt.bboxes for gt in batch_gt_instances])  # (B, G_max, 4), (B, G_max)
            vlr_weight = vlr_region_batched(anchors, num_level_anchors, gt_bboxes, gt_valid,
                                            alpha=self.ld_vlr.alpha, topk=self.train_cfg["assigner"].get("topk", 9),
                                            overlap=self.ld_vlr.overlap)[0]  # (B, A)
            in_vlr = vlr_weight > 0
        needed = pos | in_vlr if self.ld_vlr.enabled else pos
        t_cls, t_reg = teacher.rows(needed, with_cls=self.kd_main.enabled)
        if s_reg.shape != t_reg.shape:
            raise ConfigError(f"teacher box outputs {tuple(t_reg.shape)} do not match the student's "
                              f"{tuple(s_reg.shape)}: teacher and student need the same reg_max and anchors")
        losses = {}
        if self.ld_main.enabled:
            losses["loss_ld"] = self.ld_main.loss_weight * main_region_ld(
                s_reg, t_reg, s_cls, pos, self.ld_main.T, self._normalizer(pos.sum()))
        if self.ld_vlr.enabled:
            losses["loss_ld_vlr"] = self.ld_vlr.loss_weight * vlr_ld(
                s_reg, t_reg, vlr_weight, self.ld_vlr.T, self._normalizer(in_vlr.sum()))
        if self.kd_main.enabled:
            if s_cls.shape != t_cls.shape:
                raise ConfigError(f"kd_main needs teacher and student with the same classes: teacher scores "
                                  f"{tuple(t_cls.shape)}, student {tuple(s_cls.shape)}")
            level = torch.cat([torch.full((a.shape[1],), i, device=s_cls.device)
                               for i, a in enumerate(anchors_per_level)])  # (A,)
            losses["loss_kd"] = self.kd_main.loss_weight * class_kd(
                s_cls, t_cls, pos, level, self.kd_main.T, self._normalizer(pos.sum()))
        return losses


@MODELS.register_module()
class LDGFLHead(LDHeadMixin, GFLHead):
    """A GFocalV1 student head with LD (main region, VLR) and classification KD."""


@MODELS.register_module()
class LDGFLv2Head(LDHeadMixin, GFLv2Head):
    """A GFocalV2 (DGQP) student head with LD (main region, VLR) and classification KD."""

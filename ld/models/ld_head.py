"""LD heads: a GFocal head that adds the distillation terms of the LD paper to its own losses.

The GFocal losses (QFL, GIoU, DFL) are the parent's, unchanged. On top, three explicitly switched
terms, each a pure function of the flattened student and teacher outputs:

- ``ld_main``: LD (:func:`ld.ld_loss` on the four edge distributions) on the main distillation region,
  the ATSS positives, weighted by the student's detached max class score (as the DFL is);
- ``ld_vlr``: LD on the valuable localization region (:func:`ld.vlr_region`), weighted by the IoU of
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

from dataclasses import dataclass

import torch
from mmdet.models.dense_heads import GFLHead
from mmdet.models.utils import unpack_gt_instances
from mmdet.registry import MODELS
from mmdet.utils import reduce_mean
from mmengine.logging import print_log
from torch import Tensor

from ld.errors import ConfigError
from ld.ld_loss import ld_loss
from ld.models.gflv2_head import GFLv2Head
from ld.vlr import vlr_region

NORMALIZATIONS = ("upstream", "per_positive")


@dataclass(frozen=True)
class DistillTerm:
    """One switchable distillation term of the head config."""

    enabled: bool
    loss_weight: float
    T: float
    alpha: float = 0.25  # VLR only: lower bound of the DIoU band, as a fraction of the ATSS threshold
    overlap: str = "diou"  # VLR only: 'diou' or 'upstream' (see ld.vlr.vlr_region)

    @classmethod
    def from_config(cls, name: str, cfg) -> DistillTerm:
        if cfg is None or "enabled" not in cfg:
            raise ConfigError(f"bbox_head.{name} must say explicitly whether it is enabled, e.g. "
                              f"{name}=dict(enabled=True, loss_weight=0.25, T=10)")
        term = cls(**dict(cfg))
        if not term.T > 0:
            raise ConfigError(f"bbox_head.{name}.T must be > 0, got {term.T}")
        if term.loss_weight < 0:
            raise ConfigError(f"bbox_head.{name}.loss_weight must be >= 0, got {term.loss_weight}")
        return term


def _flatten_levels(per_level: list[Tensor]) -> Tensor:
    """``[(B, C, H_l, W_l)]`` -> ``(B, sum_l H_l * W_l, C)``, in the anchor order of mmdet's prior generator."""
    return torch.cat([t.permute(0, 2, 3, 1).reshape(t.shape[0], -1, t.shape[1]) for t in per_level], dim=1)


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
        print_log(f"{type(self).__name__}: ld_main={self.ld_main}, ld_vlr={self.ld_vlr}, kd_main={self.kd_main}, "
                  f"normalize={normalize!r}", logger="current")

    def get_targets(self, *args, **kwargs):
        """The parent's targets, kept for the distillation terms of the same step (no second assignment)."""
        targets = super().get_targets(*args, **kwargs)
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
        losses = self.loss_by_feat(cls_scores, bbox_preds, batch_gt_instances, batch_img_metas,
                                   batch_gt_instances_ignore=batch_gt_instances_ignore)
        losses.update(self.distill_losses(cls_scores, bbox_preds, teacher, batch_gt_instances))
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

    def _normalizer(self, count: int, device: torch.device) -> float:
        return reduce_mean(torch.tensor(float(count), device=device)).clamp(min=1.0).item()

    def distill_losses(self, s_cls_scores: list[Tensor], s_bbox_preds: list[Tensor], teacher,
                       batch_gt_instances) -> dict[str, Tensor]:
        """``loss_ld``, ``loss_ld_vlr`` and ``loss_kd`` for the enabled terms, from this step's targets.

        The teacher is asked only for the locations these terms read: the positives and the VLR.
        """
        anchors_list, labels_list = self._step_targets[0], self._step_targets[1]
        bins = self.reg_max + 1
        s_cls, s_reg = _flatten_levels(s_cls_scores), _flatten_levels(s_bbox_preds)  # (B, A, C), (B, A, 4 * bins)
        labels = torch.cat(labels_list, dim=1)  # (B, A)
        pos = (labels >= 0) & (labels < self.num_classes)
        device = s_reg.device
        if self.ld_vlr.enabled:
            anchors = torch.cat(anchors_list, dim=1)  # (B, A, 4)
            num_level_anchors = [a.shape[1] for a in anchors_list]
            vlr_weight = torch.stack([
                vlr_region(anchors[i], num_level_anchors, gt.bboxes, alpha=self.ld_vlr.alpha,
                           topk=self.train_cfg["assigner"].get("topk", 9), overlap=self.ld_vlr.overlap)[0]
                for i, gt in enumerate(batch_gt_instances)])  # (B, A)
            in_vlr = vlr_weight > 0
        needed = pos | in_vlr if self.ld_vlr.enabled else pos
        t_cls, t_reg = teacher.rows(needed, with_cls=self.kd_main.enabled)
        if s_reg.shape != t_reg.shape:
            raise ConfigError(f"teacher box outputs {tuple(t_reg.shape)} do not match the student's "
                              f"{tuple(s_reg.shape)}: teacher and student need the same reg_max and anchors")
        per_positive = self.normalize == "per_positive"
        losses = {}
        if self.ld_main.enabled:
            weight = s_cls.detach().sigmoid().max(dim=-1).values[pos]  # (P,)
            kl = ld_loss(s_reg[pos].reshape(-1, bins), t_reg[pos].reshape(-1, bins), self.ld_main.T).reshape(-1, 4)
            total = (kl * weight[:, None]).sum() / 4
            if per_positive:
                total = total / self._normalizer(int(pos.sum()), device)
            losses["loss_ld"] = self.ld_main.loss_weight * total
        if self.ld_vlr.enabled:
            kl = ld_loss(s_reg[in_vlr].reshape(-1, bins), t_reg[in_vlr].reshape(-1, bins),
                         self.ld_vlr.T).reshape(-1, 4)
            total = (kl * vlr_weight[in_vlr][:, None]).sum()
            total = total / (4 * self._normalizer(int(in_vlr.sum()), device)) if per_positive else total / 16
            losses["loss_ld_vlr"] = self.ld_vlr.loss_weight * total
        if self.kd_main.enabled:
            if s_cls.shape != t_cls.shape:
                raise ConfigError(f"kd_main needs teacher and student with the same classes: teacher scores "
                                  f"{tuple(t_cls.shape)}, student {tuple(s_cls.shape)}")
            kl = ld_loss(s_cls[pos], t_cls[pos], self.kd_main.T)  # (P,): the same KL, over class logits
            if per_positive:
                total = kl.sum() / self._normalizer(int(pos.sum()), device)
            else:  # upstream: the mean over each level's positives, summed over levels
                level = torch.cat([torch.full((a.shape[1],), i, device=device) for i, a in enumerate(anchors_list)])
                level_of_pos = level.expand_as(labels)[pos]
                sums = torch.zeros(len(anchors_list), device=device, dtype=kl.dtype).index_add(0, level_of_pos, kl)
                counts = torch.bincount(level_of_pos, minlength=len(anchors_list)).clamp(min=1)
                total = (sums / counts).sum()
            losses["loss_kd"] = self.kd_main.loss_weight * total
        return losses


@MODELS.register_module()
class LDGFLHead(LDHeadMixin, GFLHead):
    """A GFocalV1 student head with LD (main region, VLR) and classification KD."""


@MODELS.register_module()
class LDGFLv2Head(LDHeadMixin, GFLv2Head):
    """A GFocalV2 (DGQP) student head with LD (main region, VLR) and classification KD."""

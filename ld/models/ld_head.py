"""LD heads: a GFocal head that adds the distillation terms of the LD paper to its own losses.

The GFocal losses (QFL, GIoU, DFL) are the parent's, unchanged. On top, three explicitly switched
terms, each a pure function of the flattened student and teacher outputs (:mod:`ld.ops.distillation`),
given the assigner's targets of the same step:

- ``ld_main``: LD (:func:`ld.ops.ld_loss` on the four edge distributions) on the main distillation region,
  the ATSS positives, weighted by the student's detached max class score (as the DFL is);
- ``ld_vlr``: LD on the valuable localization region (:func:`ld.ops.vlr_region`), weighted by the IoU of
  each VLR anchor with its ground truth, selected among each image's inside anchors as upstream
  (:meth:`LDHeadMixin.prior_inside`: not the batch padding beyond a smaller image);
- ``kd_main``: classification KD (the same softened KL over class logits) on the positives;
- ``imitation`` (off unless configured): feature imitation, the student's FPN features pulled towards the
  teacher's on a region (:mod:`ld.ops.imitation`), through a 1x1 adapter where their widths differ.

The same terms serve every head with general-distribution boxes: GFocal's here, ATSS, FCOS and RetinaNet
in :mod:`ld.models.ld_dense_heads`. A head says where its priors and positives are and what its VLR is.

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
from mmdet.models.task_modules.prior_generators import anchor_inside_flags
from mmdet.models.utils import unpack_gt_instances
from mmdet.registry import MODELS
from mmdet.utils import reduce_mean
from mmengine.logging import print_log
from torch import Tensor

from ld.errors import ConfigError
from ld.models.gflv2_head import GFLv2Head
from ld.ops.box_ops import distances_to_boxes, prior_centers
from ld.ops.distillation import VLR_LD_DIVISOR, class_kd, main_region_ld, vlr_ld
from ld.ops.distribution import expected_offset, flatten_levels
from ld.ops.imitation import IMITATION_METHODS, finegrained_region, gi_region, imitation_loss, points_inside_boxes
from ld.ops.vlr import pad_gt, vlr_region_batched

NORMALIZATIONS = ("upstream", "per_positive")


def _refuse_unknown_keys(term: type, where: str, cfg, what: str) -> None:
    """A key of ``cfg`` that is not a field of the dataclass ``term`` is an error naming it and the known."""
    known = {f.name for f in fields(term)}
    unknown = sorted(set(cfg) - known)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]} is not a setting of {what} (known: {', '.join(sorted(known))})")


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
        _refuse_unknown_keys(cls, f"bbox_head.{name}", cfg, "a distillation term")
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


@dataclass(frozen=True)
class ImitationTerm:
    """The switchable feature-imitation term (``bbox_head.imitation``): upstream's ``loss_im`` (weight 2.0
    with ``finegrained`` in HikariTJU/LD ``configs/ld/ld_r50_gflv1_r101_fpn_coco_1x.py``)."""

    enabled: bool = False
    loss_weight: float = 2.0
    method: str = "finegrained"  # ld.ops.imitation.IMITATION_METHODS

    @classmethod
    def from_config(cls, cfg) -> ImitationTerm:
        if cfg is None:
            return cls()
        _refuse_unknown_keys(cls, "bbox_head.imitation", cfg, "feature imitation")
        term = cls(**dict(cfg))
        if term.method not in IMITATION_METHODS:
            raise ConfigError(f"bbox_head.imitation.method must be one of {IMITATION_METHODS}, got {term.method!r}")
        if term.loss_weight < 0:
            raise ConfigError(f"bbox_head.imitation.loss_weight must be >= 0, got {term.loss_weight}")
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
    """Adds LD / VLR-LD / KD (and feature imitation) to a head with general-distribution boxes. Mixed in
    before the head class.

    A new LD head is one class: the plain head it trains (:attr:`student_head`: what is exported, evaluated
    and may teach) and that head's mmdet detector (:attr:`detector`), both read by
    :func:`ld.models.distiller.student_only`; its VLR: :meth:`vlr_weight` (GFocal's: upstream's
    ATSS-threshold rule, weighted by IoU), divided as upstream divides it (:attr:`vlr_divisor`), on the
    priors :meth:`prior_inside` gives; its priors and labels from the assigner's targets:
    :meth:`distill_targets`.
    """

    student_head: type  # the plain head class (registered in mmdet's MODELS under its name)
    detector: str  # mmdet's SingleStageDetector of the plain head ("GFL", "ATSS", ...)
    vlr_divisor = VLR_LD_DIVISOR  # upstream's loss_ld_vlr = sum(w * KL) / 16 (ld_head.py)

    def __init__(self, *args, ld_main: dict, ld_vlr: dict, kd_main: dict, imitation: dict | None = None,
                 normalize: str = "upstream", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.ld_main = DistillTerm.from_config("ld_main", ld_main)
        self.ld_vlr = DistillTerm.from_config("ld_vlr", ld_vlr)
        self.kd_main = DistillTerm.from_config("kd_main", kd_main)
        self.imitation = ImitationTerm.from_config(imitation)
        if normalize not in NORMALIZATIONS:
            raise ConfigError(f"bbox_head.normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
        self.normalize = normalize
        self.teacher_priors = self.num_base_priors  # priors per location of the teacher (set_teacher)
        self.imitation_adapter = None  # student -> teacher feature width, where they differ (set_teacher)
        self._step_targets = None  # the assigner's targets of the current step, taken by get_targets
        print_log(f"{type(self).__name__}: ld_main={self.ld_main}, ld_vlr={self.ld_vlr}, kd_main={self.kd_main}, "
                  f"imitation={self.imitation}, normalize={normalize!r}", logger="current")

    def set_teacher(self, teacher_head, teacher_channels: int) -> None:
        """Fit the distillation terms to the teacher: its priors per location (one, or as many as the
        student's: a GFocal teacher gives each of a RetinaNet location's anchors that location's
        distributions) and, for feature imitation, its FPN width (a 1x1 adapter on the student's
        features where the widths differ; trained, and dropped from the exported model)."""
        k_t, k_s = teacher_head.num_base_priors, self.num_base_priors
        if k_t not in (1, k_s):
            raise ConfigError(f"the teacher has {k_t} priors per location and the student {k_s}: LD pairs them "
                              "one to one, or gives one teacher location to all of a student location's priors")
        self.teacher_priors = k_t
        if self.imitation.enabled and teacher_channels != self.in_channels:
            self.imitation_adapter = torch.nn.Conv2d(self.in_channels, teacher_channels, 1)

    def get_targets(self, *args, **kwargs):
        """The parent's targets; the step's first call is kept for the distillation terms (no second
        assignment)."""
        targets = super().get_targets(*args, **kwargs)
        if self._step_targets is None:
            self._step_targets = targets
        return targets

    def loss(self, x: tuple[Tensor], teacher, batch_data_samples) -> dict:
        """The head's own losses plus the enabled distillation terms.

        Args:
            x: student FPN features.
            teacher: the teacher's outputs for this batch: ``rows(needed, with_cls)`` gives its flattened
                ``(cls (B, A, C) or None, reg (B, A, 4 * bins))`` at least where ``needed`` (B, A) is set
                (:class:`ld.models.distiller.TeacherOutputs`, or the soft-target cache's reader);
                ``features()`` its FPN features (feature imitation).
            batch_data_samples: the batch's data samples with ground truth.
        """
        batch_gt_instances, batch_gt_instances_ignore, batch_img_metas = unpack_gt_instances(batch_data_samples)
        outs = self(x)
        cls_scores, bbox_preds = outs[0], outs[1]
        # mmdet's loss_by_feat assigns inside and returns losses alone: get_targets keeps its first result
        # of this call (no second assignment), handed on from here and cleared whatever happens
        self._step_targets = None
        try:
            losses = self.loss_by_feat(*outs, batch_gt_instances, batch_img_metas,
                                       batch_gt_instances_ignore=batch_gt_instances_ignore)
            targets = self._step_targets
        finally:
            self._step_targets = None
        priors_per_level, labels_per_level = self.distill_targets(targets, cls_scores)
        losses.update(self.distill_losses(cls_scores, bbox_preds, teacher, batch_gt_instances,
                                          priors_per_level, labels_per_level, batch_img_metas))
        if self.imitation.enabled:
            losses["loss_im"] = self.imitation.loss_weight * self.imitation_losses(
                x, cls_scores, bbox_preds, teacher, batch_gt_instances, priors_per_level)
        return losses

    def distill_targets(self, targets, cls_scores: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        """``([(B, A_l, 4 or 2)] priors, [(B, A_l)] labels)`` per level, from the step's targets (GFocal,
        ATSS: ``get_targets`` returns both first)."""
        return targets[0], targets[1]

    def vlr_weight(self, priors: Tensor, num_level_priors: list[int], pos: Tensor, s_cls: Tensor,
                   batch_gt_instances, inside: Tensor | None = None) -> Tensor:
        """``(B, A)`` the VLR weight of each prior, 0 outside the VLR: upstream's ATSS-threshold band
        (:func:`ld.ops.vlr_region_batched`), weighted by each prior's IoU with its ground truth, on the
        priors ``inside`` ``(B, A)`` bool of each image (:meth:`prior_inside`; ``None``: all)."""
        gt_bboxes, gt_valid = pad_gt([gt.bboxes for gt in batch_gt_instances])  # (B, G_max, 4), (B, G_max)
        topk = (self.train_cfg or {}).get("assigner", {}).get("topk", 9)
        return vlr_region_batched(priors, num_level_priors, gt_bboxes, gt_valid, alpha=self.ld_vlr.alpha,
                                  topk=topk, overlap=self.ld_vlr.overlap, inside=inside)[0]

    def prior_inside(self, cls_scores: list[Tensor], batch_img_metas: list[dict]) -> Tensor | None:
        """``(B, A)`` bool: the priors mmdet's targets assign in each image, which upstream's VLR considers
        (HikariTJU/LD ``mmdet/models/dense_heads/ld_head.py`` ``_get_target_single``: ``get_vlr_region`` on
        ``flat_anchors[inside_flags]``). As mmdet's ``get_targets``: the anchor generator's ``valid_flags``
        (locations within ``ceil(pad_shape / stride)``, the image's own padded size, not the batch's) and
        ``anchor_inside_flags`` against ``img_shape`` with ``train_cfg.allowed_border`` (-1: the valid flags
        alone). ``None`` for a head whose targets consider every prior.

        Args:
            cls_scores: the per-level outputs ``[(B, k * C, H_l, W_l)]`` (their sizes are the levels').
            batch_img_metas: each image's meta information (``img_shape``, ``pad_shape``).
        """
        featmap_sizes = [c.shape[-2:] for c in cls_scores]
        anchors, valid = self.get_anchors(featmap_sizes, batch_img_metas, device=cls_scores[0].device)
        return torch.stack([anchor_inside_flags(torch.cat(a), torch.cat(v), meta["img_shape"][:2],
                                                self.train_cfg["allowed_border"])
                            for a, v, meta in zip(anchors, valid, batch_img_metas)])  # (B, A)

    def _normalizer(self, count: Tensor) -> float | None:
        """``per_positive``: the region's size averaged over GPUs, at least 1; ``upstream``: ``None``."""
        if self.normalize != "per_positive":
            return None
        return reduce_mean(count.float()).clamp(min=1.0).item()

    def _flat_outputs(self, s_cls_scores: list[Tensor], s_bbox_preds: list[Tensor]) -> tuple[Tensor, Tensor]:
        """The student's per-level outputs as one row per prior: ``(B, A, C)`` class logits and
        ``(B, A, 4 * bins)`` edge logits (a location's ``k`` priors are ``k`` rows)."""
        B = s_cls_scores[0].shape[0]
        s_cls = flatten_levels(s_cls_scores).reshape(B, -1, self.cls_out_channels)
        return s_cls, flatten_levels(s_bbox_preds).reshape(B, s_cls.shape[1], -1)

    def _teacher_rows(self, teacher, needed: Tensor, with_cls: bool) -> tuple[Tensor | None, Tensor]:
        """The teacher's ``(cls, reg)`` at the student's priors ``needed`` (B, A): one row per prior, a
        location's row repeated over its priors where the teacher has one prior per location."""
        k = self.num_base_priors // self.teacher_priors
        if k == 1:
            return teacher.rows(needed, with_cls=with_cls)
        t_cls, t_reg = teacher.rows(needed.reshape(needed.shape[0], -1, k).any(dim=2), with_cls=with_cls)
        return (None if t_cls is None else t_cls.repeat_interleave(k, dim=1)), t_reg.repeat_interleave(k, dim=1)

    def distill_losses(self, s_cls_scores: list[Tensor], s_bbox_preds: list[Tensor], teacher, batch_gt_instances,
                       anchors_per_level: list[Tensor], labels_per_level: list[Tensor],
                       batch_img_metas: list[dict]) -> dict[str, Tensor]:
        """``loss_ld``, ``loss_ld_vlr`` and ``loss_kd`` for the enabled terms.

        Args:
            s_cls_scores, s_bbox_preds: the student's per-level outputs ``[(B, k * C, H, W)]``,
                ``[(B, k * 4 * bins, H, W)]`` (k priors per location).
            teacher: the teacher's outputs (see :meth:`loss`); asked only for the locations these terms
                read, the positives and the VLR.
            batch_gt_instances: the ground truth, per image.
            anchors_per_level: ``[(B, A_l, 4)]`` the priors (anchors, or FCOS's ``(B, A_l, 2)`` points);
                labels_per_level: ``[(B, A_l)]`` the labels (``num_classes`` for background), as
                :meth:`distill_targets` gives them.
            batch_img_metas: each image's meta information (the VLR's inside priors, :meth:`prior_inside`).
        """
        s_cls, s_reg = self._flat_outputs(s_cls_scores, s_bbox_preds)
        labels = torch.cat(labels_per_level, dim=1)  # (B, A)
        pos = (labels >= 0) & (labels < self.num_classes)
        if self.ld_vlr.enabled:
            priors = torch.cat(anchors_per_level, dim=1)  # (B, A, 4) or (B, A, 2)
            num_level_priors = [a.shape[1] for a in anchors_per_level]
            inside = self.prior_inside(s_cls_scores, batch_img_metas)  # (B, A) bool or None
            vlr_weight = self.vlr_weight(priors, num_level_priors, pos, s_cls, batch_gt_instances, inside)  # (B, A)
            in_vlr = vlr_weight > 0
        needed = pos | in_vlr if self.ld_vlr.enabled else pos
        t_cls, t_reg = self._teacher_rows(teacher, needed, with_cls=self.kd_main.enabled)
        if s_reg.shape != t_reg.shape:
            raise ConfigError(f"teacher box outputs {tuple(t_reg.shape)} do not match the student's "
                              f"{tuple(s_reg.shape)}: teacher and student need the same reg_max and priors")
        losses = {}
        if self.ld_main.enabled:
            losses["loss_ld"] = self.ld_main.loss_weight * main_region_ld(
                s_reg, t_reg, s_cls, pos, self.ld_main.T, self._normalizer(pos.sum()))
        if self.ld_vlr.enabled:
            losses["loss_ld_vlr"] = self.ld_vlr.loss_weight * vlr_ld(
                s_reg, t_reg, vlr_weight, self.ld_vlr.T, self._normalizer(in_vlr.sum()), divisor=self.vlr_divisor)
        if self.kd_main.enabled:
            if s_cls.shape != t_cls.shape:
                raise ConfigError(f"kd_main needs teacher and student with the same classes: teacher scores "
                                  f"{tuple(t_cls.shape)}, student {tuple(s_cls.shape)}")
            level = torch.cat([torch.full((a.shape[1],), i, device=s_cls.device)
                               for i, a in enumerate(anchors_per_level)])  # (A,)
            losses["loss_kd"] = self.kd_main.loss_weight * class_kd(
                s_cls, t_cls, pos, level, self.kd_main.T, self._normalizer(pos.sum()))
        return losses

    def imitation_losses(self, x: tuple[Tensor], s_cls_scores: list[Tensor], s_bbox_preds: list[Tensor], teacher,
                         batch_gt_instances, priors_per_level: list[Tensor]) -> Tensor:
        """Feature imitation summed over the FPN levels (upstream: the MSE of each level, summed), before
        its weight. Each level's region is per location; a location with several priors is in it when
        any of them is. ``finegrained`` needs anchor boxes; ``gibox`` reads the teacher's and the
        student's classes and boxes at every location.
        """
        method, k = self.imitation.method, self.num_base_priors
        t_feats = teacher.features()
        B = x[0].shape[0]
        num_level = [p.shape[1] for p in priors_per_level]
        priors = torch.cat(priors_per_level, dim=1)  # (B, A, 4 or 2)
        if method == "finegrained" and priors.shape[-1] != 4:
            raise ConfigError("imitation method 'finegrained' selects anchors by IoU: this head has points, "
                              "not anchors (use inside_gt, decouple, fitnet or gibox)")
        centers = prior_centers(priors)  # (B, A, 2)
        if method == "gibox":
            region = self._gi_region(s_cls_scores, s_bbox_preds, teacher, centers, num_level)
        else:
            region = torch.zeros(priors.shape[:2], dtype=torch.bool, device=priors.device)
            for i, gt in enumerate(batch_gt_instances):
                region[i] = (finegrained_region(priors[i], gt.bboxes) if method == "finegrained"
                             else points_inside_boxes(centers[i], gt.bboxes))
        region = region.reshape(B, -1, k).any(dim=2)  # (B, locations)
        total = x[0].new_zeros(())
        for s_feat, t_feat, level_region in zip(x, t_feats, region.split([n // k for n in num_level], dim=1)):
            if self.imitation_adapter is not None:
                s_feat = self.imitation_adapter(s_feat)
            s_rows = s_feat.permute(0, 2, 3, 1).reshape(-1, s_feat.shape[1])
            t_rows = t_feat.float().permute(0, 2, 3, 1).reshape(-1, t_feat.shape[1])
            total = total + imitation_loss(s_rows, t_rows, level_region.reshape(-1), method)
        return total

    def _gi_region(self, s_cls_scores, s_bbox_preds, teacher, centers: Tensor, num_level: list[int]) -> Tensor:
        """``(B, A)`` the General Instance priors: per image and level, the ``topk`` GI boxes after NMS."""
        s_cls, s_reg = self._flat_outputs(s_cls_scores, s_bbox_preds)
        B = s_cls.shape[0]
        t_cls, t_reg = self._teacher_rows(teacher, torch.ones_like(s_cls[..., 0], dtype=torch.bool), with_cls=True)
        if t_cls is None or t_cls.shape != s_cls.shape:
            raise ConfigError("imitation method 'gibox' compares teacher and student class scores: they need "
                              "the same classes")
        strides = torch.cat([torch.full((n,), float(s[0]), device=centers.device)
                             for n, s in zip(num_level, self.prior_generator.strides)])  # (A,)
        s_box = self._decode(centers, s_reg.detach(), strides)
        t_box = self._decode(centers, t_reg, strides)
        region = torch.zeros(s_cls.shape[:2], dtype=torch.bool, device=centers.device)
        for i in range(B):
            start = 0
            for n in num_level:
                sl = slice(start, start + n)
                keep = gi_region(t_cls[i, sl], s_cls[i, sl], t_box[i, sl], s_box[i, sl])
                region[i, start + keep] = True
                start += n
        return region

    def _decode(self, centers: Tensor, reg: Tensor, strides: Tensor) -> Tensor:
        """``(B, A, 4)`` boxes from ``(B, A, 2)`` centres and ``(B, A, 4 * bins)`` edge logits (expected bins
        times the stride: left, top, right, bottom)."""
        d = expected_offset(reg.reshape(*reg.shape[:2], 4, -1).float().softmax(dim=-1)) * strides[None, :, None]
        return distances_to_boxes(centers, d)


class GFLBoxNormMixin:
    """GFocal's box (GIoU) and DFL losses under upstream's normaliser (``normalize='upstream'``)."""

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


@MODELS.register_module()
class LDGFLHead(LDHeadMixin, GFLBoxNormMixin, GFLHead):
    """A GFocalV1 student head with LD (main region, VLR) and classification KD."""

    student_head, detector = GFLHead, "GFL"


@MODELS.register_module()
class LDGFLv2Head(LDHeadMixin, GFLBoxNormMixin, GFLv2Head):
    """A GFocalV2 (DGQP) student head with LD (main region, VLR) and classification KD."""

    student_head, detector = GFLv2Head, "GFL"

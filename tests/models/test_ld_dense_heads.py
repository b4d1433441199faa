"""LD beyond GFocal: the ATSS, FCOS and RetinaNet heads with general-distribution boxes, their LD terms
(upstream's VLR rule of each head), a GFocal teacher distilling into each, and feature imitation."""
import pytest
import torch

import ld.models  # noqa: F401  (registers the modules)
from ld.errors import ConfigError
from ld.ops.distillation import class_kd, main_region_ld, vlr_ld
from ld.ops.distribution import flatten_levels
from ld.ops.imitation import points_inside_boxes
from tests.models.test_ld_family import _batch, _distiller, _export_untrained, _mixed_batch, _resolved, restated_vlr

BASELINES = ["atss_r18_1x", "fcos_r18_1x", "retina_r18_1x"]
STUDENTS = {  # row -> the losses it logs beyond its head's own
    "ld_atss_r18_gfl_r50_1x": {"loss_ld", "loss_ld_vlr", "loss_kd"},
    "ld_fcos_r18_gfl_r50_1x": {"loss_ld", "loss_ld_vlr", "loss_kd"},
    "ld_retina_r18_gfl_r50_1x": {"loss_ld", "loss_ld_vlr", "loss_kd"},
    "ld_full_gi_r18_gfl_r50_1x": {"loss_ld", "loss_ld_vlr", "loss_kd", "loss_im"}}
CENTERNESS = {"loss_cls", "loss_bbox", "loss_centerness"}
OWN_LOSSES = {"atss": CENTERNESS, "fcos": CENTERNESS, "retina": {"loss_cls", "loss_bbox"},
              "gfl": {"loss_cls", "loss_bbox", "loss_dfl"}}


pytestmark = pytest.mark.usefixtures("repo_root")  # the configs' paths are the repository's



def _detector(row: str) -> str:
    name = row.removeprefix("ld_")
    return next((d for d in ("atss", "fcos", "retina") if name.startswith(d)), "gfl")


def _total(losses) -> torch.Tensor:
    return sum(v.sum() if isinstance(v, torch.Tensor) else sum(v) for v in losses.values())


@pytest.mark.parametrize("row", BASELINES)
def test_a_distribution_head_predicts_bins_per_edge_and_trains(row, params):
    from mmdet.registry import MODELS

    cfg = _resolved(row, params)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).train()
    head = model.bbox_head
    outs = head(model.extract_feat(torch.zeros(1, 3, 96, 96)))
    assert outs[1][0].shape[1] == head.num_base_priors * 4 * 17  # reg_max 16: 17 bins per edge of each prior
    losses = model(**_batch(model), mode="loss")
    assert set(losses) == OWN_LOSSES[_detector(row)]
    total = _total(losses)
    assert torch.isfinite(total) and total > 0
    total.backward()
    conv = getattr(head, head.reg_conv)
    assert conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("row", BASELINES)
def test_a_distribution_head_predicts_boxes_at_the_expected_distances(row, params):
    """Zero box logits are uniform distributions: every edge at the mean bin, 8 strides from the prior's
    centre (before clipping to the image), at the prior's centre."""
    from mmdet.registry import MODELS

    cfg = _resolved(row, params)
    model = MODELS.build(cfg.model).eval()
    head = model.bbox_head
    sizes = [(4, 4), (2, 2), (1, 1), (1, 1), (1, 1)]
    cls = [torch.full((1, head.num_base_priors * 3, h, w), 5.0) for h, w in sizes]
    reg = [torch.zeros(1, head.num_base_priors * 4 * 17, h, w) for h, w in sizes]
    extra = ([[torch.full((1, head.num_base_priors, h, w), 5.0) for h, w in sizes]]
             if _detector(row) in ("atss", "fcos") else [])
    meta = dict(img_shape=(10000, 10000), scale_factor=(1.0, 1.0), ori_shape=(10000, 10000))
    cfg.model.test_cfg.update(nms=dict(type="nms", iou_threshold=1.0), max_per_img=10000, nms_pre=10000)
    head.test_cfg = cfg.model.test_cfg
    result = head.predict_by_feat(cls, reg, *extra, batch_img_metas=[meta], rescale=False, with_nms=False)[0]
    # the right and bottom edges are not clipped: the centre (i * stride, j * stride) plus 8 strides
    expected = {(i + 8) * s for (h, w), s in zip(sizes, (8, 16, 32, 64, 128)) for i in range(w)}
    assert set(result.bboxes[:, 2].tolist()) == expected and set(result.bboxes[:, 3].tolist()) == expected


def test_the_profile_scales_retina_anchors_and_fcos_ranges_like_gfocals(params):
    smoke = {"atss": _resolved("atss_r18_1x", params), "retina": _resolved("retina_r18_1x", params),
             "fcos": _resolved("fcos_r18_1x", params), "gfl": _resolved("gfl_r18_1x", params)}
    assert smoke["gfl"].model.bbox_head.anchor_generator.octave_base_scale == 4  # 8 -> the profile's 4
    assert smoke["atss"].model.bbox_head.anchor_generator.octave_base_scale == 4
    assert smoke["retina"].model.bbox_head.anchor_generator.octave_base_scale == 2  # upstream 4, halved
    assert [tuple(r) for r in smoke["fcos"].model.bbox_head.regress_ranges] == [
        (-1, 32), (32, 64), (64, 128), (128, 256), (256, 1e8)]


@pytest.mark.parametrize("row", sorted(STUDENTS))
def test_ld_from_a_gfocal_teacher_into_each_head_trains_a_step(row, params, tmp_path):
    model = _distiller(row, params, tmp_path)
    model.train()
    losses = model(**_batch(model), mode="loss")
    assert set(losses) == OWN_LOSSES[_detector(row)] | STUDENTS[row]
    for name in STUDENTS[row]:
        assert torch.isfinite(losses[name]) and losses[name] > 0, name
    _total(losses).backward()
    assert all(p.grad is None and not p.requires_grad for p in model.teacher.parameters())
    assert not any(k.startswith(("teacher", "_teacher")) for k in model.state_dict())


def _step(model):
    """One loss computation with the step's targets kept: ``(losses, cls_scores, bbox_preds, priors, labels)``."""
    batch = _batch(model)
    head, inputs, samples = model.bbox_head, batch["inputs"], batch["data_samples"]
    losses = model(**batch, mode="loss")
    outs = head(model.extract_feat(inputs))
    kept = {}
    original = head.distill_targets

    def keep(targets, cls_scores):
        kept["priors"], kept["labels"] = original(targets, cls_scores)
        return kept["priors"], kept["labels"]

    head.distill_targets = keep
    head.loss(model.extract_feat(inputs), _teacher(model, inputs), samples)
    return losses, outs, kept["priors"], kept["labels"], batch


def _teacher(model, inputs):
    from ld.models.distiller import TeacherOutputs, teacher_dtype

    return TeacherOutputs(model.teacher, inputs, teacher_dtype(model.teacher_precision, "cpu"))


def test_fcos_vlr_is_the_points_inside_a_ground_truth_that_are_not_positive(params, tmp_path):
    """Upstream's anchor-free VLR (ld_fcos_head.py: labels == num_classes + 1), weighted by the student's max
    score, divided by 4, at 0.25 x loss_ld's weight; main LD and KD as GFocal's."""
    model = _distiller("ld_fcos_r18_gfl_r50_1x", params, tmp_path)
    losses, outs, points, labels, batch = _step(model)
    head = model.bbox_head
    B = outs[0][0].shape[0]
    s_cls, s_reg = flatten_levels(outs[0]), flatten_levels(outs[1])
    labels = torch.cat(labels, dim=1)
    pos = labels < head.num_classes
    pts = torch.cat(points, dim=1)
    gts = [s.gt_instances.bboxes for s in batch["data_samples"]]
    inside = torch.stack([points_inside_boxes(pts[i], gts[i]) for i in range(B)])
    region = inside & ~pos
    assert pos.any() and region.any() and not (region & pos).any()
    weight = s_cls.sigmoid().max(-1).values * region
    t_cls, t_reg = _teacher(model, batch["inputs"]).rows(pos | region, with_cls=True)
    level = torch.cat([torch.full((p.shape[1],), i) for i, p in enumerate(points)])
    torch.testing.assert_close(losses["loss_ld_vlr"], 0.0625 * vlr_ld(s_reg, t_reg, weight, 10.0, divisor=4.0))
    torch.testing.assert_close(losses["loss_ld"], 0.25 * main_region_ld(s_reg, t_reg, s_cls, pos, 10.0))
    torch.testing.assert_close(losses["loss_kd"], 10.0 * class_kd(s_cls, t_cls, pos, level, 2.0))


def test_retina_gets_the_gfocal_teachers_location_for_each_of_its_nine_anchors(params, tmp_path):
    """A GFocal teacher has one prior per location, RetinaNet nine: each anchor is distilled towards its
    location's distributions; the VLR has no positives (upstream ld_retina.py)."""
    model = _distiller("ld_retina_r18_gfl_r50_1x", params, tmp_path)
    head = model.bbox_head
    assert (head.num_base_priors, head.teacher_priors) == (9, 1)
    losses, outs, anchors, labels, batch = _step(model)
    B = outs[0][0].shape[0]
    s_cls = flatten_levels(outs[0]).reshape(B, -1, 3)
    s_reg = flatten_levels(outs[1]).reshape(B, s_cls.shape[1], -1)
    _, t_reg = _teacher(model, batch["inputs"]).rows(torch.ones(B, s_cls.shape[1] // 9, dtype=torch.bool))
    t_reg = t_reg.repeat_interleave(9, dim=1)
    pos = torch.cat(labels, dim=1) < head.num_classes
    assert pos.any()
    torch.testing.assert_close(losses["loss_ld"], 5.0 * main_region_ld(s_reg, t_reg, s_cls, pos, 10.0))
    vlr = head.vlr_weight(torch.cat(anchors, dim=1), [a.shape[1] for a in anchors], pos, s_cls,
                          [s.gt_instances for s in batch["data_samples"]])
    assert (vlr > 0).any() and not (vlr[pos] > 0).any()


@pytest.mark.parametrize("row", ["ld_atss_r18_gfl_r50_1x", "ld_retina_r18_gfl_r50_1x"])
def test_the_anchor_heads_vlr_of_a_mixed_size_batch_is_upstreams_on_each_images_inside_anchors(row, params, tmp_path):
    """ATSS and RetinaNet select their VLR as GFocal does, on each image's inside anchors (upstream ld_atss.py and
    ld_retina.py _get_target_single: get_vlr_region(flat_anchors[inside_flags], ...)); RetinaNet drops the
    positives. loss_ld_vlr of a batch of images of different sizes is upstream's rule restated."""
    model = _distiller(row, params, tmp_path)
    batch = _mixed_batch(model)
    head, inputs, samples = model.bbox_head, batch["inputs"], batch["data_samples"]
    kept = {}
    original = head.vlr_weight

    def keep(priors, num_level_priors, pos, s_cls, gts, inside=None):
        kept["pos"], kept["inside"] = pos, inside
        kept["weight"] = original(priors, num_level_priors, pos, s_cls, gts, inside)
        return kept["weight"]

    head.vlr_weight = keep
    losses = model(**batch, mode="loss")
    outs = head(model.extract_feat(inputs))
    featmap_sizes = [tuple(c.shape[-2:]) for c in outs[0]]
    metas, gts = [s.metainfo for s in samples], [s.gt_instances for s in samples]
    expected = restated_vlr(head, featmap_sizes, metas, gts, head.ld_vlr.overlap)
    if row.startswith("ld_retina"):
        expected = expected.masked_fill(kept["pos"], 0)
    assert not kept["inside"].all() and (expected > 0).any()
    assert torch.equal(kept["weight"], expected)
    s_cls, s_reg = head._flat_outputs(outs[0], outs[1])
    _, t_reg = head._teacher_rows(_teacher(model, inputs), torch.ones(s_cls.shape[:2], dtype=torch.bool), False)
    torch.testing.assert_close(losses["loss_ld_vlr"], head.ld_vlr.loss_weight * vlr_ld(
        s_reg, t_reg, expected, head.ld_vlr.T, divisor=head.vlr_divisor), rtol=1e-5, atol=1e-7)


def test_fcos_vlr_considers_every_point_as_upstream_does(params, tmp_path):
    """Upstream's FCOS targets (ld_fcos_head.py _get_target_single) have no inside flags, nor have mmdet's: the
    points of the padding are considered, and lie in no ground truth of a smaller image."""
    model = _distiller("ld_fcos_r18_gfl_r50_1x", params, tmp_path)
    batch = _mixed_batch(model)
    head = model.bbox_head
    outs = head(model.extract_feat(batch["inputs"]))
    assert head.prior_inside(outs[0], [s.metainfo for s in batch["data_samples"]]) is None
    assert torch.isfinite(model(**batch, mode="loss")["loss_ld_vlr"])


def test_a_teacher_measuring_from_other_points_is_refused(params, tmp_path):
    from mmdet.registry import MODELS

    from ld.engine.train import build_train_config

    teacher = _export_untrained("gfl_r50_2x", params, tmp_path)
    cfg = build_train_config("pipelines/configs/ld_fcos_r18_gfl_r50_1x.py", params, profile="smoke",
                             teacher_dir=teacher, work_root=tmp_path / "work")
    cfg.model.bbox_head.point_offset = 0.5  # mmdet's FCOS points, half a stride off GFocal's anchor centres
    with pytest.raises(ConfigError, match="point_offset=0.0"):
        MODELS.build(cfg.model)


def test_imitation_takes_an_adapter_where_the_widths_differ_and_the_export_drops_it(params, tmp_path):
    """A 96-channel teacher and a 64-channel student: a trained 1x1 adapter, not in the exported model."""
    from mmdet.registry import MODELS
    from mmengine.config import Config

    from ld.engine.convert import student_state_dict
    from ld.engine.train import build_train_config
    from ld.models.distiller import student_only
    from ld.models.ld_head import ImitationTerm

    teacher = _export_untrained("gfl_r50_2x", params, tmp_path)
    t_cfg = Config.fromfile(str(teacher / "config.py"))
    t_cfg.model.neck.out_channels = t_cfg.model.bbox_head.in_channels = t_cfg.model.bbox_head.feat_channels = 96
    t_cfg.dump(str(teacher / "config.py"))
    torch.save({"state_dict": MODELS.build(t_cfg.model).state_dict()}, teacher / "model.pth")
    cfg = build_train_config("pipelines/configs/ld_full_gi_r18_gfl_r50_1x.py", params, profile="smoke",
                             teacher_dir=teacher, work_root=tmp_path / "work")
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).train()
    adapter = model.bbox_head.imitation_adapter
    assert (adapter.in_channels, adapter.out_channels) == (64, 96)
    batch = _batch(model)
    for method in ("inside_gt", "decouple", "fitnet", "finegrained", "gibox"):
        model.bbox_head.imitation = ImitationTerm(enabled=True, loss_weight=1.0, method=method)
        adapter.zero_grad()
        losses = model(**batch, mode="loss")
        assert losses["loss_im"] > 0, method
        losses["loss_im"].backward()
        assert adapter.weight.grad.abs().sum() > 0, method
    state = model.state_dict()
    assert any("imitation_adapter" in k for k in state)
    exported = student_state_dict({"state_dict": state})
    plain = MODELS.build(student_only(cfg).model).state_dict()
    assert set(exported) == set(plain)


def test_imitation_is_not_computed_when_off_and_refused_with_the_teacher_cache(params, tmp_path):
    model = _distiller("ld_full_r18_gfl_r50_1x", params, tmp_path)
    assert not model.bbox_head.imitation.enabled and model.bbox_head.imitation_adapter is None
    assert "loss_im" not in model(**_batch(model), mode="loss")
    with pytest.raises(ConfigError, match="teacher_cache"):
        _distiller_with_cache(params, tmp_path)


def _distiller_with_cache(params, tmp_path):
    from mmdet.registry import MODELS

    from ld.engine.train import build_train_config
    from ld.profiles import train_pipeline

    teacher = _export_untrained("gfl_r50_2x", params, tmp_path / "t")
    cfg = build_train_config("pipelines/configs/ld_full_gi_r18_gfl_r50_1x.py", params, profile="smoke",
                             teacher_dir=teacher, work_root=tmp_path / "work")
    cfg.model.teacher_cache = dict(dir=str(tmp_path / "cache"), pipeline=train_pipeline(cfg))
    return MODELS.build(cfg.model)


def test_an_unknown_imitation_setting_is_named(params, tmp_path):
    with pytest.raises(ConfigError, match="imitation.method"):
        _distiller("ld_full_gi_r18_gfl_r50_1x", params, tmp_path,
                   imitation=dict(enabled=True, loss_weight=1.0, method="everywhere"))
    with pytest.raises(ConfigError, match="imitation.weight"):
        _distiller("ld_full_gi_r18_gfl_r50_1x", params, tmp_path, imitation=dict(enabled=True, weight=1.0))

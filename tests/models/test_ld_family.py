"""The LD family on hand-made tensors and on real (tiny) models: LD loss, VLR, DGQP, the LD heads,
the distiller and its teacher handling."""
import math

import pytest
import torch
from mmengine.config import Config

import ld.models  # noqa: F401  (registers the modules)
from ld.errors import BadFileError, ConfigError
from ld.ops.dgqp import dgqp_features, joint_score_logits
from ld.ops.ld_loss import ld_loss
from ld.ops.vlr import atss_thresholds, vlr_region

# ---------------------------------------------------------------------------------------------------------------
# ld_loss
# ---------------------------------------------------------------------------------------------------------------


def test_ld_loss_is_zero_for_identical_distributions_and_grows_as_they_diverge():
    gen = torch.Generator().manual_seed(0)
    teacher = torch.randn(8, 17, generator=gen)
    assert torch.allclose(ld_loss(teacher.clone(), teacher), torch.zeros(8), atol=1e-6)
    losses = [ld_loss(teacher + s * torch.randn(8, 17, generator=torch.Generator().manual_seed(1)), teacher).mean()
              for s in (0.5, 1.0, 2.0, 4.0)]
    assert all(a < b for a, b in zip(losses, losses[1:]))


def test_ld_loss_matches_the_definition():
    s, t, T = torch.tensor([[1.0, 2.0, 0.0]]), torch.tensor([[0.0, 3.0, 1.0]]), 2.0
    p_t, p_s = torch.softmax(t / T, 1), torch.softmax(s / T, 1)
    expected = T * T * (p_t * (p_t.log() - p_s.log())).sum() / 3  # KL averaged over the 3 bins
    torch.testing.assert_close(ld_loss(s, t, T), expected.reshape(1))


def test_ld_loss_equals_mmdets_kd_loss_unreduced():
    from mmdet.models.losses.kd_loss import knowledge_distillation_kl_div_loss

    gen = torch.Generator().manual_seed(2)
    s, t = torch.randn(5, 17, generator=gen), torch.randn(5, 17, generator=gen)
    torch.testing.assert_close(ld_loss(s, t, 10.0),
                               knowledge_distillation_kl_div_loss(s, t, T=10, reduction="none"))


def test_ld_loss_sends_gradients_to_the_student_only():
    s = torch.randn(4, 17, requires_grad=True)
    t = torch.randn(4, 17, requires_grad=True)
    ld_loss(s, t).sum().backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None


def test_ld_loss_refuses_mismatched_bins():
    with pytest.raises(ValueError, match="reg_max"):
        ld_loss(torch.zeros(4, 17), torch.zeros(4, 9))


# ---------------------------------------------------------------------------------------------------------------
# vlr_region
# ---------------------------------------------------------------------------------------------------------------

# Four 4x4 anchors with centres every 2 px along x; the ground truth is the first anchor.
ANCHORS = torch.tensor([[0.0, 0.0, 4.0, 4.0], [2.0, 0.0, 6.0, 4.0], [4.0, 0.0, 8.0, 4.0], [6.0, 0.0, 10.0, 4.0]])
GT = torch.tensor([[0.0, 0.0, 4.0, 4.0]])


def test_atss_threshold_is_mean_plus_std_of_candidate_ious():
    # IoUs 1, 1/3, 0, 0: mean 1/3, unbiased std sqrt(2/9)
    torch.testing.assert_close(atss_thresholds(ANCHORS, [4], GT), torch.tensor([1 / 3 + math.sqrt(2 / 9)]))


def test_vlr_on_a_one_box_image_is_the_band_below_the_atss_threshold():
    # t = 0.805, band [0.201, 0.805). DIoUs: anchor 0: 1 (a positive, above the band); anchor 1: IoU 1/3
    # minus rho^2 / c^2 = 4 / 52, i.e. 0.256, inside; anchors 2 and 3: negative.
    weights, gt_index = vlr_region(ANCHORS, [4], GT, alpha=0.25)
    assert gt_index.tolist() == [-1, 0, -1, -1]
    torch.testing.assert_close(weights, torch.tensor([0.0, 1 / 3, 0.0, 0.0]))
    # a higher alpha lifts the band's floor (0.402) above anchor 1's DIoU
    assert vlr_region(ANCHORS, [4], GT, alpha=0.5)[1].tolist() == [-1, -1, -1, -1]


def test_vlr_anchor_claimed_by_two_boxes_goes_to_the_larger_iou():
    gts = torch.tensor([[0.0, 0.0, 4.0, 4.0], [3.0, 0.0, 7.0, 4.0]])
    # Anchor 1 ([2, 6]) is in both bands: DIoU 0.256 < t_0 = 0.805 with gt 0 (IoU 1/3), and
    # DIoU 0.6 - 1/41 = 0.576 < t_1 = 0.635 with gt 1 (IoU 0.6): it goes to gt 1, weight 0.6.
    torch.testing.assert_close(atss_thresholds(ANCHORS, [4], gts)[1], torch.tensor(0.6354), atol=1e-4, rtol=0)
    weights, gt_index = vlr_region(ANCHORS, [4], gts, alpha=0.0)
    assert gt_index[1].item() == 1
    assert weights[1].item() == pytest.approx(0.6)


def test_vlr_uses_topk_per_level_and_handles_no_ground_truth():
    anchors = torch.cat([ANCHORS, ANCHORS * 2])
    weights, gt_index = vlr_region(anchors, [4, 4], GT, topk=2)
    assert weights.shape == (8,) and gt_index.shape == (8,)
    assert ((weights > 0) == (gt_index >= 0)).all()
    empty_w, empty_i = vlr_region(anchors, [4, 4], torch.zeros(0, 4))
    assert empty_w.sum() == 0 and (empty_i == -1).all()
    with pytest.raises(ValueError, match="sums to"):
        vlr_region(anchors, [4, 3], GT)


def test_vlr_matches_a_slow_loop_on_random_boxes():
    gen = torch.Generator().manual_seed(3)
    xy = torch.rand(60, 2, generator=gen) * 50
    anchors = torch.cat([xy, xy + 4 + torch.rand(60, 2, generator=gen) * 12], 1)
    gts = torch.tensor([[5.0, 5.0, 25.0, 20.0], [20.0, 10.0, 45.0, 40.0]])
    weights, gt_index = vlr_region(anchors, [30, 30], gts, alpha=0.25, topk=9)
    t = atss_thresholds(anchors, [30, 30], gts, topk=9)
    for i, a in enumerate(anchors.tolist()):
        best = (0.0, -1)
        for g, box in enumerate(gts.tolist()):
            iw = max(0.0, min(a[2], box[2]) - max(a[0], box[0]))
            ih = max(0.0, min(a[3], box[3]) - max(a[1], box[1]))
            union = (a[2] - a[0]) * (a[3] - a[1]) + (box[2] - box[0]) * (box[3] - box[1]) - iw * ih
            iou = iw * ih / union
            rho2 = ((a[0] + a[2] - box[0] - box[2]) ** 2 + (a[1] + a[3] - box[1] - box[3]) ** 2) / 4
            c2 = (max(a[2], box[2]) - min(a[0], box[0])) ** 2 + (max(a[3], box[3]) - min(a[1], box[1])) ** 2
            if 0.25 * t[g] <= iou - rho2 / c2 < t[g] and iou > best[0]:
                best = (iou, g)
        assert gt_index[i].item() == best[1]
        assert weights[i].item() == pytest.approx(best[0], abs=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# DGQP
# ---------------------------------------------------------------------------------------------------------------


def test_dgqp_features_of_uniform_and_peaked_distributions():
    uniform = dgqp_features(torch.zeros(2, 68, 3, 5))
    assert uniform.shape == (2, 20, 3, 5)
    torch.testing.assert_close(uniform, torch.full_like(uniform, 1 / 17))
    peaked = torch.full((1, 68, 1, 1), -50.0)
    peaked[:, ::17] = 50.0  # each edge certain at bin 0
    feats = dgqp_features(peaked).reshape(4, 5)
    torch.testing.assert_close(feats[:, 0], torch.ones(4))
    torch.testing.assert_close(feats[:, 4], torch.full((4,), 0.25))  # mean of (1, 0, 0, 0)


def test_joint_score_logits_give_the_product_of_probabilities():
    gen = torch.Generator().manual_seed(4)
    cls = (torch.randn(2, 3, 4, 4, generator=gen) * 4).requires_grad_()
    quality = torch.rand(2, 1, 4, 4, generator=gen) * 0.98 + 0.01
    joint = joint_score_logits(cls, quality)
    torch.testing.assert_close(joint.sigmoid(), cls.sigmoid() * quality, rtol=1e-5, atol=1e-6)
    joint.sum().backward()
    assert torch.isfinite(cls.grad).all()


# ---------------------------------------------------------------------------------------------------------------
# Heads, distiller and teacher on tiny real models
# ---------------------------------------------------------------------------------------------------------------

DISTILL_ROWS = ["ld_r18_gfl_r50_1x", "ld_vlr_r18_gfl_r50_1x", "ld_full_r18_gfl_r50_1x", "selfld_r18_1x",
                "ld_r18_ld_r34_1x", "ld_gflv2_r18_gflv2_r50_1x", "ld_r18_gflv2_r50_1x"]
EXPECTED_LOSSES = {
    "ld_r18_gfl_r50_1x": {"loss_ld"}, "ld_vlr_r18_gfl_r50_1x": {"loss_ld", "loss_ld_vlr"},
    "ld_full_r18_gfl_r50_1x": {"loss_ld", "loss_ld_vlr", "loss_kd"}, "selfld_r18_1x": {"loss_ld"},
    "ld_r18_ld_r34_1x": {"loss_ld"}, "ld_gflv2_r18_gflv2_r50_1x": {"loss_ld"}, "ld_r18_gflv2_r50_1x": {"loss_ld"}}


def _resolved(run: str, params) -> Config:
    from ld.profiles import apply_profile, get_profile

    cfg = Config.fromfile(f"pipelines/configs/{run}.py")
    apply_profile(cfg, get_profile(params, "smoke"), data_root="data/smoke")
    return cfg


def _export_untrained(run: str, params, root):
    """An exported model folder (config.py + model.pth) of ``run`` with its initial weights."""
    from ld.engine.train import export_initial

    return export_initial(f"pipelines/configs/{run}.py", params, root / run, profile="smoke")



def _distiller(row: str, params, tmp_path, **head_overrides):
    from mmdet.registry import MODELS

    from ld.engine.train import build_train_config

    teacher = _export_untrained(params["distill"][row]["teacher"], params, tmp_path)
    cfg = build_train_config(f"pipelines/configs/{row}.py", params, profile="smoke", teacher_dir=teacher,
                             work_root=tmp_path / "work")
    for key, value in head_overrides.items():  # replace, not merge
        cfg.model.bbox_head[key] = value
    torch.manual_seed(0)
    return MODELS.build(cfg.model)


def _batch(model, num_items=(3, 2), size=96):
    from mmdet.testing import demo_mm_inputs

    data = demo_mm_inputs(batch_size=len(num_items), image_shapes=[(3, size, size)] * len(num_items),
                          num_items=list(num_items), num_classes=3, use_box_type=False)
    return model.data_preprocessor(data, True)


pytestmark = pytest.mark.usefixtures("repo_root")  # the configs' paths are the repository's


@pytest.mark.parametrize("row", DISTILL_ROWS)
def test_each_method_trains_a_step_with_finite_losses_and_a_frozen_teacher(row, params, tmp_path):
    model = _distiller(row, params, tmp_path)
    model.train()
    assert not model.teacher.training and model.training
    data = _batch(model)
    losses = model(**data, mode="loss")
    assert EXPECTED_LOSSES[row] <= set(losses)
    assert not {"loss_ld", "loss_ld_vlr", "loss_kd"} - EXPECTED_LOSSES[row] & set(losses)
    total = sum(v.sum() if isinstance(v, torch.Tensor) else sum(v) for v in losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert all(p.grad is None and not p.requires_grad for p in model.teacher.parameters())
    assert model.bbox_head.gfl_reg.weight.grad.abs().sum() > 0
    assert not any(k.startswith(("teacher", "_teacher")) for k in model.state_dict())
    assert all(not n.startswith("_teacher") for n, _ in model.named_parameters())


@pytest.mark.parametrize("normalize", ["upstream", "per_positive"])
def test_the_heads_distillation_losses_are_the_pure_terms_on_the_assigners_regions(normalize, params, tmp_path):
    """The head only finds the regions (the assigner's positives, the VLR) and calls ld.ops.distillation:
    the same terms recomputed here from the assigner's targets, the teacher's outputs and the VLR rule."""
    from ld.models.distiller import teacher_dtype, teacher_forward
    from ld.ops.distillation import class_kd, main_region_ld, vlr_ld
    from ld.ops.distribution import flatten_levels

    model = _distiller("ld_full_r18_gfl_r50_1x", params, tmp_path, normalize=normalize)
    batch = _batch(model)
    losses = model(**batch, mode="loss")
    head, inputs, samples = model.bbox_head, batch["inputs"], batch["data_samples"]
    cls_scores, bbox_preds = head(model.extract_feat(inputs))
    metas, gts = [s.metainfo for s in samples], [s.gt_instances for s in samples]
    anchors, valid = head.get_anchors([c.shape[-2:] for c in cls_scores], metas, device=inputs.device)
    anchors_per_level, labels_per_level = head.get_targets(anchors, valid, gts, metas)[:2]
    s_cls, s_reg = flatten_levels(cls_scores), flatten_levels(bbox_preds)
    t_cls, t_reg = teacher_forward(model.teacher, inputs, dtype=teacher_dtype(model.teacher_precision, "cpu"))
    labels = torch.cat(labels_per_level, dim=1)
    pos = (labels >= 0) & (labels < head.num_classes)
    all_anchors = torch.cat(anchors_per_level, dim=1)
    vlr_weight = torch.stack([vlr_region(all_anchors[i], [a.shape[1] for a in anchors_per_level], gt.bboxes,
                                         alpha=head.ld_vlr.alpha, topk=9, overlap=head.ld_vlr.overlap)[0]
                              for i, gt in enumerate(gts)])
    level = torch.cat([torch.full((a.shape[1],), i) for i, a in enumerate(anchors_per_level)])
    per_positive = normalize == "per_positive"
    n_pos, n_vlr = max(float(pos.sum()), 1.0), max(float((vlr_weight > 0).sum()), 1.0)
    assert pos.any() and (vlr_weight > 0).any()
    expected = {
        "loss_ld": 0.25 * main_region_ld(s_reg, t_reg, s_cls, pos, 10.0, n_pos if per_positive else None),
        "loss_ld_vlr": 0.25 * vlr_ld(s_reg, t_reg, vlr_weight, 10.0, n_vlr if per_positive else None),
        "loss_kd": 10.0 * class_kd(s_cls, t_cls, pos, level, 2.0, n_pos if per_positive else None)}
    for name, value in expected.items():
        assert value.item() > 0, name
        torch.testing.assert_close(losses[name], value, rtol=1e-5, atol=1e-7, msg=name)


MIXED_SHAPES = [(3, 128, 128), (3, 64, 96), (3, 100, 70)]  # the pair, and an image padded to (128, 96)


def _mixed_batch(model, num_items=(3, 2, 2)):
    """Images of different sizes, padded by the data preprocessor to the largest (128 x 128); each image's
    ``pad_shape`` is its own size padded to the preprocessor's divisor (32)."""
    from mmdet.testing import demo_mm_inputs

    data = demo_mm_inputs(batch_size=len(num_items), image_shapes=MIXED_SHAPES[:len(num_items)],
                          num_items=list(num_items), num_classes=3, use_box_type=False)
    return model.data_preprocessor(data, True)


def restated_inside(head, featmap_sizes, metas, grid) -> torch.Tensor:
    """``(B, A)`` upstream's inside anchors (tests/ops/test_vlr_batched.py restates mmdet's valid and inside flags)."""
    from tests.ops.test_vlr_batched import upstream_inside_flags, upstream_valid_flags

    strides = [s[0] for s in head.prior_generator.strides]
    return torch.stack([upstream_inside_flags(grid, upstream_valid_flags(featmap_sizes, strides, m["pad_shape"],
                                                                          head.num_base_priors),
                                              m["img_shape"], head.train_cfg["allowed_border"]) for m in metas])


def restated_vlr(head, featmap_sizes, metas, gts, overlap) -> torch.Tensor:
    """``(B, A)`` upstream's VLR weights of a batch: get_vlr_region on each image's inside anchors, unmapped."""
    from tests.ops.test_vlr_batched import upstream_vlr

    grid = torch.cat(head.prior_generator.grid_priors(featmap_sizes, device="cpu"))
    sizes = [h * w * head.num_base_priors for h, w in featmap_sizes]
    inside = restated_inside(head, featmap_sizes, metas, grid)
    return torch.stack([upstream_vlr(grid, sizes, gt.bboxes, inside[i], alpha=head.ld_vlr.alpha, topk=9,
                                     overlap=overlap)[0] for i, gt in enumerate(gts)])


@pytest.mark.parametrize("overlap", ["upstream", "diou"])
def test_the_vlr_of_a_mixed_size_batch_is_upstreams_rule_on_each_images_inside_anchors(overlap, params, tmp_path):
    """COCO batches mix sizes: upstream assigns each image on its inside anchors only (ld_head.py
    _get_target_single), so the anchors of the batch padding beyond a smaller image are no VLR candidates, do not
    enter the ATSS threshold and get no weight. loss_ld_vlr is upstream's rule restated, not the rule over all the
    batch's anchors; main LD is unchanged."""
    from ld.models.distiller import teacher_dtype, teacher_forward
    from ld.ops.distillation import main_region_ld, vlr_ld
    from ld.ops.distribution import flatten_levels
    from ld.ops.vlr import pad_gt, vlr_region_batched

    model = _distiller("ld_vlr_r18_gfl_r50_1x", params, tmp_path,
                       ld_vlr=dict(enabled=True, loss_weight=0.25, T=10, alpha=0.25, overlap=overlap))
    batch = _mixed_batch(model)
    losses = model(**batch, mode="loss")
    head, inputs, samples = model.bbox_head, batch["inputs"], batch["data_samples"]
    metas, gts = [s.metainfo for s in samples], [s.gt_instances for s in samples]
    assert [m["img_shape"] for m in metas] == [(128, 128), (64, 96), (100, 70)]
    assert [m["pad_shape"] for m in metas] == [(128, 128), (64, 96), (128, 96)] and inputs.shape[-2:] == (128, 128)
    cls_scores, bbox_preds = head(model.extract_feat(inputs))
    featmap_sizes = [tuple(c.shape[-2:]) for c in cls_scores]
    s_cls, s_reg = flatten_levels(cls_scores), flatten_levels(bbox_preds)
    _, t_reg = teacher_forward(model.teacher, inputs, dtype=teacher_dtype(model.teacher_precision, "cpu"))
    expected = restated_vlr(head, featmap_sizes, metas, gts, overlap)
    grid = torch.cat(head.prior_generator.grid_priors(featmap_sizes, device="cpu"))
    inside = restated_inside(head, featmap_sizes, metas, grid)
    assert torch.equal(head.prior_inside(cls_scores, metas), inside) and not inside[1:].all(1).any()
    # the rule over every anchor of the padded batch selects other anchors: the case exercises the padding
    sizes = [h * w for h, w in featmap_sizes]
    everywhere = vlr_region_batched(grid[None].expand(3, -1, -1), sizes, *pad_gt([g.bboxes for g in gts]),
                                    alpha=0.25, overlap=overlap)[0]
    assert not torch.equal(everywhere > 0, expected > 0)
    assert torch.equal(everywhere[0], expected[0])  # the largest image has no padding: the same
    torch.testing.assert_close(losses["loss_ld_vlr"], 0.25 * vlr_ld(s_reg, t_reg, expected, 10.0), rtol=1e-5, atol=1e-7)
    anchors, valid = head.get_anchors(featmap_sizes, metas, device="cpu")
    labels = torch.cat(head.get_targets(anchors, valid, gts, metas)[1], dim=1)
    pos = (labels >= 0) & (labels < head.num_classes)
    torch.testing.assert_close(losses["loss_ld"], 0.25 * main_region_ld(s_reg, t_reg, s_cls, pos, 10.0),
                               rtol=1e-5, atol=1e-7)
    # with a border (allowed_border >= 0), anchors crossing the image's own edges are outside too, as in mmdet
    head.train_cfg["allowed_border"] = 0
    assert torch.equal(head.prior_inside(cls_scores, metas), restated_inside(head, featmap_sizes, metas, grid))
    assert not torch.equal(restated_inside(head, featmap_sizes, metas, grid), inside)


@pytest.mark.parametrize("teacher", ["gfl_r50_2x", "gflv2_r50_2x"])
def test_the_teachers_box_tower_alone_gives_its_box_logits_bitwise(teacher, params, tmp_path):
    """Without KD no term reads the teacher's class logits: its box tower alone gives the same bits."""
    from ld.models.distiller import box_logits, build_teacher, teacher_forward

    model = build_teacher(_export_untrained(teacher, params, tmp_path) / "config.py", None)
    inputs = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        feats = model.extract_feat(inputs)
        reference = model.bbox_head(feats)[1]
        assert all(torch.equal(a, b) for a, b in zip(box_logits(model.bbox_head, feats), reference))
    cls, reg = teacher_forward(model, inputs)
    no_cls, reg_alone = teacher_forward(model, inputs, with_cls=False)
    assert no_cls is None and cls.shape[:2] == reg.shape[:2] and torch.equal(reg, reg_alone)


def test_a_head_asks_for_the_teachers_class_logits_only_for_kd(params, tmp_path):
    from ld.models.distiller import TeacherOutputs

    asked = []

    class Spy(TeacherOutputs):
        def rows(self, needed, with_cls=False):
            asked.append(with_cls)
            return super().rows(needed, with_cls)

    for row in ("ld_vlr_r18_gfl_r50_1x", "ld_full_r18_gfl_r50_1x"):
        model = _distiller(row, params, tmp_path / row)
        batch = _batch(model)
        x = model.extract_feat(batch["inputs"])
        model.bbox_head.loss(x, Spy(model.teacher, batch["inputs"]), batch["data_samples"])
    assert asked == [False, True]


def test_teacher_precision_auto_is_bfloat16_where_the_device_has_it(monkeypatch):
    from ld.models.distiller import teacher_dtype

    # the CPU's flags, and the kernels this process dispatches to: the deterministic mode's AVX2 (ld.cpu_pinning)
    # runs no CPU's bfloat16 natively
    for capability in ("AVX512", "AVX2"):
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda c=capability: c)
        for flags, native in (((False, False), False), ((True, False), True), ((False, True), True)):
            monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=flags[0]: v)
            monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=flags[1]: v)
            expected = torch.bfloat16 if native and capability == "AVX512" else None
            assert teacher_dtype("auto", "cpu") is expected, (capability, flags)
            assert teacher_dtype("fp32", "cpu") is None and teacher_dtype("bf16", "cpu") is torch.bfloat16
    for bf16, expected in ((True, torch.bfloat16), (False, torch.float16)):  # older GPUs: float16
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda v=bf16: v)
        assert teacher_dtype("auto", "cuda") is expected and teacher_dtype("fp32", "cuda") is None
    with pytest.raises(ConfigError, match="teacher_precision must be one of"):
        teacher_dtype("fp16", "cpu")


def test_a_bfloat16_teacher_gives_float32_soft_targets_close_to_float32s(params, tmp_path):
    """bfloat16 autocast rounds the teacher's logits (8 bits of mantissa): after softening (T=10) the edge
    distributions stay within a small KL of float32's."""
    from ld.models.distiller import build_teacher, teacher_forward
    from ld.ops.ld_loss import ld_loss

    model = build_teacher(_export_untrained("gfl_r50_2x", params, tmp_path) / "config.py", None)
    inputs = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    _, reg32 = teacher_forward(model, inputs, with_cls=False)
    _, reg16 = teacher_forward(model, inputs, with_cls=False, dtype=torch.bfloat16)
    assert reg16.dtype == torch.float32 and reg16.shape == reg32.shape and not torch.equal(reg16, reg32)
    kl = ld_loss(reg16.reshape(-1, 17), reg32.reshape(-1, 17), T=10.0)  # T^2 KL per edge, over the bins
    assert kl.max() < 1e-4 and (reg16 - reg32).abs().max() < 0.1


def test_image_without_ground_truth_gives_zero_ld_losses_with_a_gradient_path(params, tmp_path):
    model = _distiller("ld_full_r18_gfl_r50_1x", params, tmp_path)
    losses = model(**_batch(model, num_items=(0,)), mode="loss")
    for name in ("loss_ld", "loss_ld_vlr", "loss_kd"):
        assert losses[name].item() == 0.0 and losses[name].requires_grad, name


def test_upstream_normalisation_sums_over_images_per_positive_does_not(params, tmp_path):
    """Upstream LD is a sum over the batch's positives: a batch's loss is the sum of its images' losses.
    Per-positive normalisation makes it an average instead."""
    for normalize in ("upstream", "per_positive"):
        model = _distiller("ld_vlr_r18_gfl_r50_1x", params, tmp_path / normalize, normalize=normalize)
        model.eval()  # BN statistics of the running mean: images independent of each other
        batch = _batch(model, num_items=(3, 2))
        both = model(**batch, mode="loss")
        single = [model.loss(batch["inputs"][i:i + 1], batch["data_samples"][i:i + 1]) for i in range(2)]
        for name in ("loss_ld", "loss_ld_vlr"):
            parts = [s[name].item() for s in single]
            if normalize == "upstream":
                assert both[name].item() == pytest.approx(sum(parts), rel=1e-4), name
            else:
                assert min(parts) - 1e-6 <= both[name].item() <= max(parts) + 1e-6, name


def test_upstream_box_rescale_is_upstreams_normaliser_over_mmdets():
    from ld.models.ld_head import upstream_box_rescale

    # mmdet 3.3 divides by max(S, 1), upstream LD by S + 1e-6 (S: the box weights' sum, mean over GPUs)
    assert upstream_box_rescale(torch.tensor(0.5)) == pytest.approx(1 / (0.5 + 1e-6), rel=1e-6)
    assert upstream_box_rescale(torch.tensor(4.0)) == pytest.approx(4 / (4 + 1e-6), rel=1e-6)
    assert upstream_box_rescale(torch.tensor(1.0)) == pytest.approx(1 / (1 + 1e-6), rel=1e-6)


def test_upstream_normalisation_divides_box_and_dfl_losses_by_the_unclamped_weight_sum(params, tmp_path):
    """On an untrained student the box weights (max class scores) sum below 1: mmdet 3 clamps the
    normaliser at 1, upstream does not, so upstream's box and DFL losses are larger by 1 / (S + 1e-6)."""
    losses, sums = {}, {}
    for normalize in ("upstream", "per_positive"):
        model = _distiller("ld_r18_gfl_r50_1x", params, tmp_path / normalize, normalize=normalize)
        torch.manual_seed(0)
        model.init_weights()  # the class prior of 0.01: the first steps of training
        model.eval()
        losses[normalize] = model(**_batch(model, num_items=(1, 1)), mode="loss")
        sums[normalize] = float(sum(model.bbox_head._box_weight_sums))
    weight_sum = sums["upstream"]
    assert weight_sum == pytest.approx(sums["per_positive"]) and 0 < weight_sum < 1
    for name in ("loss_bbox", "loss_dfl"):
        upstream, mmdet = (sum(losses[n][name]).item() for n in ("upstream", "per_positive"))
        assert upstream == pytest.approx(mmdet * max(weight_sum, 1) / (weight_sum + 1e-6), rel=1e-5), name
        assert upstream > mmdet
    assert sum(losses["upstream"]["loss_cls"]).item() == pytest.approx(sum(losses["per_positive"]["loss_cls"]).item())


def test_gflv2_head_outputs_a_joint_score_below_the_class_probability(params, tmp_path):
    from mmdet.registry import MODELS

    cfg = _resolved("gflv2_r18_1x", params)
    model = MODELS.build(cfg.model)
    head = model.bbox_head
    assert head.reg_conf[0].in_channels == 20 and head.reg_conf[0].out_channels == 64
    feats = model.extract_feat(torch.randn(1, 3, 96, 96))
    cls_v2, reg = head(feats)
    plain = [super(type(head), head).forward_single(f, s)[0] for f, s in zip(feats, head.scales)]
    for joint, cls in zip(cls_v2, plain):
        assert joint.shape == cls.shape
        assert ((joint.sigmoid() > 0) & (joint.sigmoid() <= cls.sigmoid() + 1e-6)).all()


def test_teacher_checkpoint_for_another_architecture_is_refused_with_the_keys(params, tmp_path):
    from ld.models import build_teacher

    teacher = _export_untrained("gfl_r50_2x", params, tmp_path)
    wrong = _export_untrained("gfl_r18_1x", params, tmp_path)
    with pytest.raises(BadFileError, match=r"teacher checkpoint .*model\.pth does not fit its config.*missing keys"):
        build_teacher(teacher / "config.py", wrong / "model.pth")


def test_teacher_of_another_number_of_classes(params, tmp_path):
    """A checkpoint with 80 classes for a 3-class teacher config is refused naming the key; a teacher
    that really has 80 classes distils boxes (LD is class-agnostic) but refuses classification KD."""
    from mmdet.registry import MODELS

    from ld.models import build_teacher

    teacher = _export_untrained("gfl_r50_2x", params, tmp_path)
    cfg = Config.fromfile(str(teacher / "config.py"))
    cfg.model.bbox_head.num_classes = 80
    torch.save({"state_dict": MODELS.build(cfg.model).state_dict()}, tmp_path / "coco80.pth")
    with pytest.raises(BadFileError, match=r"does not fit its config.*gfl_cls"):
        build_teacher(teacher / "config.py", tmp_path / "coco80.pth")
    (teacher / "config.py").write_text(cfg.pretty_text)
    (teacher / "model.pth").write_bytes((tmp_path / "coco80.pth").read_bytes())
    model = _distiller_from(teacher, params, tmp_path)
    assert model(**_batch(model), mode="loss")["loss_ld"].item() > 0
    from ld.engine.train import build_train_config

    full = build_train_config("pipelines/configs/ld_full_r18_gfl_r50_1x.py", params, profile="smoke",
                              teacher_dir=teacher, work_root=tmp_path / "work")
    kd = MODELS.build(full.model)
    with pytest.raises(ConfigError, match="kd_main needs teacher and student with the same classes"):
        kd(**_batch(kd), mode="loss")


def test_teacher_with_another_reg_max_is_a_clear_error(params, tmp_path):
    from mmdet.registry import MODELS

    teacher = _export_untrained("gfl_r50_2x", params, tmp_path)
    cfg = Config.fromfile(str(teacher / "config.py"))
    cfg.model.bbox_head.reg_max = 8
    (teacher / "config.py").write_text(cfg.pretty_text)
    torch.save({"state_dict": MODELS.build(cfg.model).state_dict()}, teacher / "model.pth")
    with pytest.raises(ConfigError, match="reg_max 8 != student reg_max 16"):
        _distiller_from(teacher, params, tmp_path)


def _distiller_from(teacher_dir, params, tmp_path):
    from mmdet.registry import MODELS

    from ld.engine.train import build_train_config

    cfg = build_train_config("pipelines/configs/ld_r18_gfl_r50_1x.py", params, profile="smoke",
                             teacher_dir=teacher_dir, work_root=tmp_path / "work")
    return MODELS.build(cfg.model)


def test_head_regions_must_be_switched_explicitly(params, tmp_path):
    with pytest.raises(ConfigError, match="ld_vlr must say explicitly"):
        _distiller("ld_r18_gfl_r50_1x", params, tmp_path, ld_vlr=dict(loss_weight=0.25, T=10))
    with pytest.raises(ConfigError, match="normalize"):
        _distiller("ld_r18_gfl_r50_1x", params, tmp_path / "b", normalize="per_image")


def test_teacher_follows_the_student_across_dtypes(params, tmp_path):
    model = _distiller("ld_r18_gfl_r50_1x", params, tmp_path).double()
    assert next(model.teacher.parameters()).dtype == torch.float64

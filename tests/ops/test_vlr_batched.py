"""ld.ops.vlr.vlr_region_batched: the VLR of a whole batch, ground truth padded (pad_gt), bitwise the same as
the image-by-image VLR it replaces in the LD head, so the pipeline's metrics do not move when the head
switches. The reference below is the per-image code as it was before the batched version (box_ops' IoU and
DIoU, ATSS thresholds from cdist + per-level topk + mean + std over the candidates, arg-max over the gts)."""
import random

import pytest
import torch

from ld.ops.box_ops import box_centers, box_iou, diou_matrix
from ld.ops.vlr import _batch_thresholds, _iou_and_overlap, atss_thresholds, pad_gt, vlr_region, vlr_region_batched

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(autouse=True)
def _one_thread():
    """Hundreds of tiny batches: intra-op threads only contend (and a busy machine makes them crawl)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _reference_thresholds(anchors, num_level_anchors, gt_bboxes, topk):
    ious = box_iou(anchors, gt_bboxes)
    distances = torch.cdist(box_centers(anchors).float(), box_centers(gt_bboxes).float())
    candidates, start = [], 0
    for count in num_level_anchors:
        candidates.append(distances[start:start + count].topk(min(topk, count), dim=0, largest=False).indices + start)
        start += count
    candidate_ious = ious.gather(0, torch.cat(candidates, dim=0))
    return candidate_ious.mean(0) + candidate_ious.std(0)


def _reference_vlr(anchors, num_level_anchors, gt_bboxes, alpha, topk, overlap):
    """The former per-image ``vlr_region``, verbatim but for the argument checks."""
    n = anchors.shape[0]
    weights = anchors.new_zeros(n)
    gt_index = torch.full((n,), -1, dtype=torch.long, device=anchors.device)
    if gt_bboxes.numel() == 0 or n == 0:
        return weights, gt_index
    thresholds = _reference_thresholds(anchors, num_level_anchors, gt_bboxes, topk)
    diou = diou_matrix(anchors, gt_bboxes, denominator="union" if overlap == "diou" else "first")
    in_band = (diou >= alpha * thresholds[None, :]) & (diou < thresholds[None, :])
    ious = box_iou(anchors, gt_bboxes).masked_fill(~in_band, -1.0)
    best_iou, best_gt = ious.max(dim=1)
    selected = best_iou > 0
    weights[selected] = best_iou[selected].to(weights.dtype)
    gt_index[selected] = best_gt[selected]
    return weights, gt_index


def _reference_batch(anchors, num_level_anchors, gts, **kw):
    out = [_reference_vlr(anchors[i], num_level_anchors, g, **kw) for i, g in enumerate(gts)]
    return torch.stack([w for w, _ in out]), torch.stack([i for _, i in out])


def _grid_anchors(rng, h, w, strides, scale, dtype):
    """Square anchors on each level's grid (a location every ``stride`` px), levels concatenated."""
    levels = []
    for s in strides:
        offset = s / 2 * rng.randint(0, 1)
        ys, xs = torch.meshgrid(torch.arange(-(-h // s)).double() * s + offset,
                                torch.arange(-(-w // s)).double() * s + offset, indexing="ij")
        cx, cy, half = xs.flatten(), ys.flatten(), scale * s / 2
        levels.append(torch.stack([cx - half, cy - half, cx + half, cy + half], 1))
    return torch.cat(levels).to(dtype), [level.shape[0] for level in levels]


def _boxes(rng, g, h, w, mode):
    """``g`` boxes, some partly outside the ``h x w`` image; integer or half-integer corners in modes 1 and 2,
    so that many anchors are equidistant from a centre or have equal IoUs."""
    if mode == 0:
        xy = [[rng.uniform(-20, max(h, w)), rng.uniform(-20, max(h, w))] for _ in range(g)]
        wh = [[rng.uniform(1, 80), rng.uniform(1, 80)] for _ in range(g)]
    else:
        xy = [[rng.randint(-10, max(h, w)) / mode, rng.randint(-10, max(h, w)) / mode] for _ in range(g)]
        wh = [[float(rng.randint(1, 64)), float(rng.randint(1, 64))] for _ in range(g)]
    xy, wh = torch.tensor(xy, dtype=torch.float64).reshape(g, 2), torch.tensor(wh, dtype=torch.float64).reshape(g, 2)
    return torch.cat([xy, xy + wh], 1)


def random_case(seed):
    """A batch: anchors ``(B, N, 4)``, anchors per level, per-image gts ``[(G_i, 4)]`` and the VLR settings."""
    rng = random.Random(seed)
    dtype = rng.choice([torch.float32, torch.float64])
    b, h, w = rng.randint(1, 4), rng.randint(8, 120), rng.randint(8, 120)
    if rng.random() < 0.7:
        strides = [8, 16, 32, 64, 128][:rng.randint(1, 5)]
        anchors, sizes = _grid_anchors(rng, h, w, strides, rng.choice([1.0, 2.0, 4.0, 8.0]), dtype)
    else:  # arbitrary boxes with integer corners (some empty), cut into 1 to 3 levels
        n = rng.randint(1, 80)
        xy = torch.tensor([[rng.randint(-5, max(h, w)), rng.randint(-5, max(h, w))] for _ in range(n)])
        wh = torch.tensor([[rng.randint(0, 40), rng.randint(0, 40)] for _ in range(n)])
        anchors = torch.cat([xy, xy + wh], 1).to(dtype)
        cuts = sorted(rng.randint(0, n) for _ in range(rng.randint(0, 2)))
        sizes = [hi - lo for lo, hi in zip([0, *cuts], [*cuts, n])]
    anchors = anchors[None].repeat(b, 1, 1)
    if rng.random() < 0.3:  # images with different anchors
        anchors = anchors + torch.tensor([[[rng.randint(-3, 3) for _ in range(4)]] for _ in range(b)], dtype=dtype)
    no_objects = rng.random() < 0.1
    gt_dtype = dtype if rng.random() < 0.8 else rng.choice([torch.float32, torch.float64])  # may differ from anchors'
    gts = []
    for i in range(b):
        g = 0 if no_objects else rng.choices([0, 1, 2, 3, 5, 8, 13, 30, 70], [12, 30, 12, 12, 10, 10, 7, 5, 2])[0]
        boxes = _boxes(rng, g, h, w, rng.randint(0, 2))
        if g >= 2 and rng.random() < 0.4:  # duplicated ground truths: the arg-max tie goes to the first
            boxes[[rng.randrange(g) for _ in range(rng.randint(1, g - 1))]] = boxes[rng.randrange(g)].clone()
        if g >= 1 and rng.random() < 0.3:  # a ground truth that is an anchor
            boxes[0] = anchors[i, rng.randrange(anchors.shape[1])].double()
        gts.append(boxes.to(gt_dtype))
    settings = dict(alpha=rng.choice([0.0, 0.25, 0.3, 0.5, 0.9]), topk=rng.choice([1, 2, 3, 9, 9, 20]),
                    overlap=rng.choice(["diou", "upstream"]))
    return anchors, sizes, gts, settings


# ---------------------------------------------------------------------------------------------------------------
# Bitwise identity with the per-image VLR
# ---------------------------------------------------------------------------------------------------------------

N_RANDOM = 1000


@pytest.mark.parametrize("device", DEVICES)
def test_batched_vlr_is_bitwise_the_per_image_vlr_on_random_batches(device):
    seen = dict(vlr_anchors=0, empty_images=0, empty_batches=0, float64=0, upstream=0, many_gts=0)
    for seed in range(N_RANDOM):
        anchors, sizes, gts, kw = random_case(seed)
        anchors, gts = anchors.to(device), [g.to(device) for g in gts]
        ref_w, ref_i = _reference_batch(anchors, sizes, gts, **kw)
        padded, valid = pad_gt(gts)
        w, i = vlr_region_batched(anchors, sizes, padded, valid, **kw)
        msg = f"seed {seed}: {kw}, gts per image {[g.shape[0] for g in gts]}, {anchors.dtype}"
        assert w.dtype == ref_w.dtype and w.shape == ref_w.shape, msg
        assert torch.equal(w, ref_w) and torch.equal(i, ref_i), msg
        # vlr_region (the batched code with B = 1) is still the former per-image code
        for k, g in enumerate(gts):
            one_w, one_i = vlr_region(anchors[k], sizes, g, **kw)
            assert torch.equal(one_w, ref_w[k]) and torch.equal(one_i, ref_i[k]), msg
        seen["vlr_anchors"] += int((ref_i >= 0).sum())
        seen["empty_images"] += sum(g.shape[0] == 0 for g in gts)
        seen["empty_batches"] += padded.shape[1] == 0
        seen["float64"] += anchors.dtype == torch.float64
        seen["upstream"] += kw["overlap"] == "upstream"
        seen["many_gts"] += padded.shape[1] > 64  # past the sum kernel's 64-column blocks
    assert min(seen.values()) > 0, seen
    assert seen["vlr_anchors"] > 5000, seen


def test_thresholds_of_the_real_gts_are_bitwise_the_per_image_ones_whatever_the_padding():
    """The part of the VLR that is not elementwise: a naive padded batch (cdist, topk, mean and std over
    (B, K, M)) rounds ~1.5% of these thresholds differently; the batched code computes them image by image."""
    checked = 0
    for seed in range(300):
        anchors, sizes, gts, kw = random_case(seed)
        padded, valid = pad_gt(gts)
        padded = torch.cat([padded, torch.rand(padded.shape[0], 3, 4, dtype=padded.dtype) * 50], 1)  # more padding
        ious, _ = _iou_and_overlap(anchors, padded, "diou")
        real = [slice(0, g.shape[0]) if g.shape[0] else None for g in gts]
        thresholds = _batch_thresholds(anchors, sizes, padded, real, kw["topk"], ious)
        for k, g in enumerate(gts):
            assert thresholds[k, g.shape[0]:].isnan().all()
            if g.shape[0]:
                expected = _reference_thresholds(anchors[k], sizes, g, kw["topk"])
                torch.testing.assert_close(thresholds[k, :g.shape[0]], expected, rtol=0, atol=0, equal_nan=True)
                torch.testing.assert_close(atss_thresholds(anchors[k], sizes, g, kw["topk"]), expected,
                                           rtol=0, atol=0, equal_nan=True)
                checked += g.shape[0]
    assert checked > 3000


# ---------------------------------------------------------------------------------------------------------------
# Known answers (the one-image cases of test_ld_family, batched)
# ---------------------------------------------------------------------------------------------------------------

# Four 4x4 anchors with centres every 2 px along x; the ground truth is the first anchor.
ANCHORS = torch.tensor([[0.0, 0.0, 4.0, 4.0], [2.0, 0.0, 6.0, 4.0], [4.0, 0.0, 8.0, 4.0], [6.0, 0.0, 10.0, 4.0]])
GT = torch.tensor([[0.0, 0.0, 4.0, 4.0]])
TWO_GTS = torch.tensor([[0.0, 0.0, 4.0, 4.0], [3.0, 0.0, 7.0, 4.0]])


def test_an_image_without_objects_gets_zeros_and_minus_one_beside_one_with():
    # image 0: t = 0.805, band [0.201, 0.805): anchor 1 (DIoU 0.256, IoU 1/3) only; image 1: nothing
    gts, valid = pad_gt([GT, torch.zeros(0, 4)])
    assert gts.shape == (2, 1, 4) and valid.tolist() == [[True], [False]]
    weights, gt_index = vlr_region_batched(ANCHORS[None].repeat(2, 1, 1), [4], gts, valid)
    assert gt_index.tolist() == [[-1, 0, -1, -1], [-1, -1, -1, -1]]
    torch.testing.assert_close(weights, torch.tensor([[0.0, 1 / 3, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]))


def test_a_batch_without_objects_is_all_zeros():
    gts, valid = pad_gt([torch.zeros(0, 4), torch.zeros(0, 4), torch.zeros(0, 4)])
    assert gts.shape == (3, 0, 4) and valid.shape == (3, 0)
    weights, gt_index = vlr_region_batched(ANCHORS[None].repeat(3, 1, 1), [4], gts, valid)
    assert weights.shape == (3, 4) and weights.dtype == torch.float32 and (weights == 0).all()
    assert gt_index.dtype == torch.long and (gt_index == -1).all()
    # no anchors at all
    weights, gt_index = vlr_region_batched(torch.zeros(2, 0, 4), [0], *pad_gt([GT, GT]))
    assert weights.shape == (2, 0) and gt_index.shape == (2, 0)


def test_an_anchor_in_two_bands_goes_to_the_larger_iou_and_duplicates_to_the_first():
    # anchor 1 ([2, 6]) is in both bands (test_ld_family): IoU 1/3 with gt 0, 0.6 with gt 1 -> gt 1, weight 0.6
    gts, valid = pad_gt([GT, TWO_GTS, TWO_GTS[[1, 1, 0]]])
    weights, gt_index = vlr_region_batched(ANCHORS[None].repeat(3, 1, 1), [4], gts, valid, alpha=0.0)
    assert gt_index[0].tolist() == [-1, 0, -1, -1]
    assert gt_index[1, 1].item() == 1 and weights[1, 1].item() == pytest.approx(0.6)
    assert gt_index[2, 1].item() == 0 and weights[2, 1].item() == pytest.approx(0.6)  # the first of two equal gts
    for k, g in enumerate([GT, TWO_GTS, TWO_GTS[[1, 1, 0]]]):
        one_w, one_i = vlr_region(ANCHORS, [4], g, alpha=0.0)
        assert torch.equal(one_w, weights[k]) and torch.equal(one_i, gt_index[k])


# ---------------------------------------------------------------------------------------------------------------
# Padding
# ---------------------------------------------------------------------------------------------------------------

def test_invalid_padded_gts_change_nothing_whatever_their_boxes():
    for seed in range(60):
        anchors, sizes, gts, kw = random_case(seed)
        padded, valid = pad_gt(gts)
        ref_w, ref_i = vlr_region_batched(anchors, sizes, padded, valid, **kw)
        # more padding at the end, with boxes that would claim anchors if they counted: copies of the real
        # gts, anchors themselves, random boxes
        b, m = valid.shape
        boxes_like = anchors.to(padded.dtype)
        extra = torch.cat([padded, boxes_like[:, :5], torch.rand(b, 4, 4, dtype=padded.dtype) * 60], 1)
        extra[:, m:m + 5, 2:] += 1
        extra_valid = torch.cat([valid, torch.zeros(b, extra.shape[1] - m, dtype=torch.bool)], 1)
        garbage = extra.clone()
        garbage[:, :m][~valid] = boxes_like[:, :1].expand(b, m, 4)[~valid]  # padding slots filled too
        for boxes in (extra, garbage):
            w, i = vlr_region_batched(anchors, sizes, boxes, extra_valid, **kw)
            assert torch.equal(w, ref_w) and torch.equal(i, ref_i), seed
        # padding anywhere (not only at the end): the same regions, indices along the padded dim (to the
        # same box: of duplicated gts, the first in the new order)
        perm = torch.randperm(extra.shape[1], generator=torch.Generator().manual_seed(seed))
        shuffled = garbage[:, perm]
        w, i = vlr_region_batched(anchors, sizes, shuffled, extra_valid[:, perm], **kw)
        assert torch.equal(w, ref_w) and torch.equal(i >= 0, ref_i >= 0), seed
        assert extra_valid[:, perm].gather(1, i.clamp(min=0))[i >= 0].all(), seed
        chosen = shuffled.gather(1, i.clamp(min=0)[..., None].expand(-1, -1, 4))
        expected = padded.gather(1, ref_i.clamp(min=0)[..., None].expand(-1, -1, 4)) if m else chosen
        assert torch.equal(chosen[i >= 0], expected[ref_i >= 0]), seed


def test_pad_gt_pads_with_zeros_after_the_real_boxes():
    a, b = torch.tensor([[1.0, 2.0, 3.0, 4.0]]), torch.tensor([[5.0, 6.0, 7.0, 8.0], [0.0, 0.0, 1.0, 1.0]])
    gts, valid = pad_gt([a, torch.zeros(0, 4), b])
    assert gts.shape == (3, 2, 4) and gts.dtype == torch.float32
    assert valid.tolist() == [[True, False], [False, False], [True, True]]
    assert torch.equal(gts[0, 0], a[0]) and torch.equal(gts[2], b) and (gts[~valid] == 0).all()
    assert pad_gt([torch.zeros(0, 4, dtype=torch.float64)])[0].shape == (1, 0, 4)
    with pytest.raises(ValueError, match="at least one image"):
        pad_gt([])


def test_batched_vlr_checks_its_arguments():
    anchors = ANCHORS[None].repeat(2, 1, 1)
    gts, valid = pad_gt([GT, GT])
    with pytest.raises(ValueError, match="sums to"):
        vlr_region_batched(anchors, [3], gts, valid)
    with pytest.raises(ValueError, match=r"anchors must be \(B, N, 4\)"):
        vlr_region_batched(ANCHORS, [4], gts, valid)
    with pytest.raises(ValueError, match="gt_bboxes must be"):
        vlr_region_batched(anchors, [4], gts[:1], valid[:1])
    with pytest.raises(ValueError, match="gt_valid must be a bool"):
        vlr_region_batched(anchors, [4], gts, valid.float())
    with pytest.raises(ValueError, match="overlap must be"):
        vlr_region_batched(anchors, [4], gts, valid, overlap="giou")
    with pytest.raises(ValueError, match="alpha must lie"):
        vlr_region_batched(anchors, [4], gts, valid, alpha=1.0)


# ---------------------------------------------------------------------------------------------------------------
# Image padding: upstream's VLR considers each image's inside anchors only
# ---------------------------------------------------------------------------------------------------------------
# Upstream (HikariTJU/LD mmdet/models/dense_heads/ld_head.py _get_target_single, likewise ld_atss.py, ld_gflv2.py,
# ld_retina.py) assigns an image on flat_anchors[inside_flags] only, inside_flags = anchor_inside_flags(flat_anchors,
# valid_flags, img_shape, allowed_border) (mmdet/core/anchor/utils.py), valid_flags from the image's own pad_shape
# (mmdet/core/anchor/anchor_generator.py: a level's valid locations are the first ceil(pad / stride) rows and
# columns); get_vlr_region (mmdet/core/bbox/assigners/atss_assigner.py) runs on those anchors and unmap puts 0
# elsewhere. Restated below in plain torch, from upstream's code, sharing nothing with ld.ops.

def upstream_valid_flags(featmap_sizes, strides, pad_shape, num_base):
    """``(N,)`` bool: mmdet's ``AnchorGenerator.valid_flags``, levels concatenated, ``num_base`` anchors a location."""
    flags = []
    for (fh, fw), s in zip(featmap_sizes, strides):
        vh, vw = min(-(-int(pad_shape[0]) // s), fh), min(-(-int(pad_shape[1]) // s), fw)
        vy, vx = torch.arange(fh) < vh, torch.arange(fw) < vw
        flags.append((vy[:, None] & vx[None, :]).reshape(-1).repeat_interleave(num_base))
    return torch.cat(flags)


def upstream_inside_flags(flat_anchors, valid, img_shape, allowed_border):
    """mmdet's ``anchor_inside_flags``."""
    if allowed_border < 0:
        return valid
    h, w = img_shape[:2]
    return (valid & (flat_anchors[:, 0] >= -allowed_border) & (flat_anchors[:, 1] >= -allowed_border)
            & (flat_anchors[:, 2] < w + allowed_border) & (flat_anchors[:, 3] < h + allowed_border))


def _upstream_overlaps(b1, b2, mode):
    """iou2d_calculator.py ``bbox_overlaps`` (not aligned): ``'iou'``; ``'upstream'``: its ``mode='diou'``, the
    intersection over ``b1``'s area minus rho^2 / c^2; ``'diou'``: the textbook DIoU (over the union)."""
    area1 = (b1[:, 2] - b1[:, 0]) * (b1[:, 3] - b1[:, 1])
    area2 = (b2[:, 2] - b2[:, 0]) * (b2[:, 3] - b2[:, 1])
    wh = (torch.min(b1[:, None, 2:], b2[None, :, 2:]) - torch.max(b1[:, None, :2], b2[None, :, :2])).clamp(min=0)
    overlap = wh[..., 0] * wh[..., 1]
    union = area1[:, None] if mode == "upstream" else area1[:, None] + area2[None, :] - overlap
    ious = overlap / torch.max(union, union.new_tensor([1e-7]))
    if mode == "iou":
        return ious
    rho2 = (((b2[None, :, 0] + b2[None, :, 2]) - (b1[:, None, 0] + b1[:, None, 2])) ** 2 / 4
            + ((b2[None, :, 1] + b2[None, :, 3]) - (b1[:, None, 1] + b1[:, None, 3])) ** 2 / 4)
    enclose = (torch.max(b1[:, None, 2:], b2[None, :, 2:]) - torch.min(b1[:, None, :2], b2[None, :, :2])).clamp(min=0)
    return ious - rho2 / torch.max(enclose[..., 0] ** 2 + enclose[..., 1] ** 2, ious.new_tensor([1e-7]))


def upstream_get_vlr_region(bboxes, num_level_bboxes, gt_bboxes, alpha, topk, overlap):
    """atss_assigner.py ``get_vlr_region`` (alpha, topk and the overlap as arguments): ``(weights, gt_index)``."""
    n, g = bboxes.shape[0], gt_bboxes.shape[0]
    weights, gt_index = bboxes.new_zeros(n), torch.full((n,), -1, dtype=torch.long, device=bboxes.device)
    if n == 0 or g == 0:
        return weights, gt_index
    ious = _upstream_overlaps(bboxes, gt_bboxes, "iou")
    band_overlap = _upstream_overlaps(bboxes, gt_bboxes, overlap)
    centre = lambda b: torch.stack(((b[:, 0] + b[:, 2]) / 2.0, (b[:, 1] + b[:, 3]) / 2.0), dim=1)  # noqa: E731
    distances = (centre(bboxes)[:, None, :] - centre(gt_bboxes)[None, :, :]).pow(2).sum(-1).sqrt()
    candidates, start = [], 0
    for count in num_level_bboxes:
        candidates.append(distances[start:start + count].topk(min(topk, count), dim=0, largest=False).indices + start)
        start += count
    candidate_overlaps = ious[torch.cat(candidates), torch.arange(g, device=bboxes.device)]
    thr = candidate_overlaps.mean(0) + candidate_overlaps.std(0)
    band = (band_overlap < thr[None, :]) & (band_overlap >= alpha * thr[None, :])  # every anchor is a candidate
    max_overlaps, argmax = torch.where(band, ious, torch.full_like(ious, -100000000)).max(dim=1)
    chosen = max_overlaps != -100000000
    weights[chosen], gt_index[chosen] = max_overlaps[chosen], argmax[chosen]
    return weights, gt_index


def upstream_vlr(flat_anchors, num_level_anchors, gt_bboxes, inside, alpha=0.25, topk=9, overlap="upstream"):
    """_get_target_single: the VLR of ``flat_anchors[inside]``, unmapped (weight 0, index -1 elsewhere)."""
    inside = inside.to(flat_anchors.device)
    counts = [int(f.sum()) for f in inside.split(num_level_anchors)]
    w, i = upstream_get_vlr_region(flat_anchors[inside], counts, gt_bboxes, alpha, topk, overlap)
    weights, gt_index = flat_anchors.new_zeros(flat_anchors.shape[0]), torch.full_like(inside, -1, dtype=torch.long)
    weights[inside], gt_index[inside] = w, i
    return weights, gt_index


def padded_case(seed):
    """A batch of images of different sizes padded to the largest: mmdet-ordered grid anchors ``(B, N, 4)`` of
    the padded batch (``k`` a location), anchors per level, per-image gts, each image's inside flags ``(B, N)``
    (valid flags from its own pad shape, ``anchor_inside_flags`` with a random ``allowed_border``) and settings."""
    rng = random.Random(seed)
    dtype = rng.choice([torch.float32, torch.float64])
    b = rng.randint(2, 4)
    divisor = rng.choice([1, 8, 32])
    img_shapes = [(rng.randint(16, 160), rng.randint(16, 160)) for _ in range(b)]
    if rng.random() < 0.3:
        img_shapes[rng.randrange(b)] = (160, 160)
    pad_shapes = [(-(-h // divisor) * divisor, -(-w // divisor) * divisor) for h, w in img_shapes]
    height, width = max(p[0] for p in pad_shapes), max(p[1] for p in pad_shapes)
    strides = [8, 16, 32, 64, 128][:rng.randint(2, 5)]
    scales = [rng.choice([1.0, 2.0, 4.0, 8.0]) for _ in range(rng.choice([1, 1, 3]))]  # k anchors a location
    levels, featmap_sizes = [], []
    for s in strides:
        fh, fw = -(-height // s), -(-width // s)
        ys, xs = torch.meshgrid(torch.arange(fh).double() * s, torch.arange(fw).double() * s, indexing="ij")
        cx, cy = xs.reshape(-1, 1), ys.reshape(-1, 1)
        half = torch.tensor(scales, dtype=torch.float64)[None] * s / 2  # (1, k)
        levels.append(torch.stack([cx - half, cy - half, cx + half, cy + half], -1).reshape(-1, 4))
        featmap_sizes.append((fh, fw))
    flat = torch.cat(levels).to(dtype)
    sizes = [level.shape[0] for level in levels]
    allowed_border = rng.choice([-1, -1, 0, 16])
    inside = torch.stack([upstream_inside_flags(flat, upstream_valid_flags(featmap_sizes, strides, pad, len(scales)),
                                                img, allowed_border) for img, pad in zip(img_shapes, pad_shapes)])
    gts = []
    for h, w in img_shapes:
        g = rng.choices([0, 1, 2, 3, 5, 8, 20], [5, 30, 15, 15, 15, 10, 5])[0]
        boxes = _boxes(rng, g, h, w, rng.randint(0, 2))
        lo, hi = torch.zeros(4, dtype=torch.float64), torch.tensor([w, h, w, h], dtype=torch.float64)
        if rng.random() < 0.8:  # clipped to the image, as mmdet's transforms clip them
            boxes = torch.max(torch.min(boxes, hi), lo)
            boxes = boxes[(boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])]
        gts.append(boxes.to(dtype))
    settings = dict(alpha=rng.choice([0.0, 0.25, 0.25, 0.5]), topk=rng.choice([1, 3, 9, 9, 20]),
                    overlap=rng.choice(["diou", "upstream"]))
    return flat[None].repeat(b, 1, 1), sizes, gts, inside, settings


N_PADDED = 400


@pytest.mark.parametrize("device", DEVICES)
def test_the_vlr_of_a_padded_mixed_size_batch_is_upstreams_rule_on_each_images_inside_anchors(device):
    seen = dict(changed=0, vlr_anchors=0, upstream=0, diou=0, float64=0, border=0, few_inside=0)
    for seed in range(N_PADDED):
        anchors, sizes, gts, inside, kw = padded_case(seed)
        anchors, gts, inside = anchors.to(device), [g.to(device) for g in gts], inside.to(device)
        padded, valid = pad_gt(gts)
        w, i = vlr_region_batched(anchors, sizes, padded, valid, **kw, inside=inside)
        ref = [upstream_vlr(anchors[k], sizes, g, inside[k], **kw) for k, g in enumerate(gts)]
        ref_w, ref_i = torch.stack([r[0] for r in ref]), torch.stack([r[1] for r in ref])
        msg = f"seed {seed}: {kw}, gts {[g.shape[0] for g in gts]}, inside {inside.sum(1).tolist()} of {sizes}"
        chosen = ref_w > 0  # upstream also "selects" IoU-0 anchors of the band (degenerate boxes): weight 0 either way
        assert torch.equal(i >= 0, chosen) and torch.equal(i[chosen], ref_i[chosen]), msg
        torch.testing.assert_close(w, ref_w, rtol=0, atol=0, msg=msg)
        assert not (w[~inside] != 0).any() and (i[~inside] == -1).all(), msg
        # bitwise the one-image VLR of the inside anchors alone, unmapped
        for k, g in enumerate(gts):
            counts = [int(f.sum()) for f in inside[k].split(sizes)]
            one_w, one_i = vlr_region(anchors[k][inside[k]], counts, g, **kw)
            assert torch.equal(w[k][inside[k]], one_w) and torch.equal(i[k][inside[k]], one_i), msg
            assert torch.equal(vlr_region(anchors[k], sizes, g, **kw, inside=inside[k])[0], w[k]), msg
        seen["changed"] += not torch.equal(vlr_region_batched(anchors, sizes, padded, valid, **kw)[0], w)
        seen["vlr_anchors"] += int(chosen.sum())
        seen[kw["overlap"]] += 1
        seen["float64"] += anchors.dtype == torch.float64
        seen["border"] += not torch.equal(inside, inside.any(0, keepdim=True).expand_as(inside))
        seen["few_inside"] += any(min(int(f.sum()) for f in row.split(sizes)) < kw["topk"] for row in inside)
    assert min(seen.values()) > 0 and seen["changed"] > N_PADDED // 4 and seen["vlr_anchors"] > 5000, seen


def test_a_batch_without_padding_is_unchanged_by_the_inside_flags():
    """Same-size images: every anchor is inside, and the VLR is bitwise the one without ``inside``."""
    for seed in range(200):
        anchors, sizes, gts, kw = random_case(seed)
        padded, valid = pad_gt(gts)
        ref_w, ref_i = vlr_region_batched(anchors, sizes, padded, valid, **kw)
        every = torch.ones(anchors.shape[:2], dtype=torch.bool)
        w, i = vlr_region_batched(anchors, sizes, padded, valid, **kw, inside=every)
        assert torch.equal(w, ref_w) and torch.equal(i, ref_i), seed
    # the inside flags of same-size images (the batch's own pad shape) are all True
    strides, shape = [8, 16, 32], (96, 64)
    featmap_sizes = [(-(-shape[0] // s), -(-shape[1] // s)) for s in strides]
    assert upstream_valid_flags(featmap_sizes, strides, shape, 9).all()


def test_an_outside_anchor_is_no_candidate_of_the_atss_threshold():
    """One level, the gt the first anchor: with all four anchors t = 0.805 and anchor 1 (DIoU 0.256, IoU 1/3) is
    the VLR (test_ld_family); with anchor 3 outside, t is over anchors 0-2 only, a higher threshold; with anchors
    1-3 outside, nothing remains but the gt's own anchor, which is above its threshold."""
    every = torch.ones(4, dtype=torch.bool)
    assert vlr_region(ANCHORS, [4], GT, inside=every)[1].tolist() == [-1, 0, -1, -1]
    three = torch.tensor([True, True, True, False])
    ious = box_iou(ANCHORS[:3], GT)[:, 0]
    thr = float(ious.mean() + ious.std())
    assert thr > 0.805
    w, i = vlr_region(ANCHORS, [4], GT, inside=three, topk=9)
    assert i.tolist() == upstream_vlr(ANCHORS, [4], GT, three, topk=9, overlap="diou")[1].tolist()
    assert i[3] == -1 and w[3] == 0
    w, i = vlr_region(ANCHORS, [4], GT, inside=torch.tensor([True, False, False, False]))
    assert i.tolist() == [-1, -1, -1, -1] and (w == 0).all()
    # no inside anchor at all: nothing, in a batch beside an image with all
    w, i = vlr_region_batched(ANCHORS[None].repeat(2, 1, 1), [4], *pad_gt([GT, GT]),
                              inside=torch.tensor([[False] * 4, [True] * 4]))
    assert i.tolist() == [[-1, -1, -1, -1], [-1, 0, -1, -1]] and (w[0] == 0).all()


def test_inside_flags_are_checked():
    anchors = ANCHORS[None].repeat(2, 1, 1)
    gts, valid = pad_gt([GT, GT])
    with pytest.raises(ValueError, match="inside must be a bool"):
        vlr_region_batched(anchors, [4], gts, valid, inside=torch.ones(2, 4))
    with pytest.raises(ValueError, match="inside must be a bool"):
        vlr_region_batched(anchors, [4], gts, valid, inside=torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="inside must be a bool"):
        vlr_region(ANCHORS, [4], GT, inside=torch.ones(2, 4, dtype=torch.bool))

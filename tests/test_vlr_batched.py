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

"""Tests for ld.ops.voting_cluster_diou_nms against a slow, obviously-correct pure-Python reference."""

from __future__ import annotations

import functools
import importlib
import math

import pytest
import torch

from ld.ops import box_ops
from ld.ops.voting_cluster_diou_nms import voting_cluster_diou_nms, voting_cluster_diou_nms_reference

# the NMS's DIoU: the centre-distance penalty raised to beta = 0.8
diou_matrix = functools.partial(box_ops.diou_matrix, beta=0.8)

# ----------------------------------------------------------------------------------------------------------------
# Pure-Python reference
# ----------------------------------------------------------------------------------------------------------------


def ref_diou(a, b, beta=0.8):
    ax1, ay1, ax2, ay2 = a
    bx1, by1, bx2, by2 = b
    iw = max(0.0, min(ax2, bx2) - max(ax1, bx1))
    ih = max(0.0, min(ay2, by2) - max(ay1, by1))
    inter = iw * ih
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    iou = inter / union
    rho2 = ((ax1 + ax2) / 2 - (bx1 + bx2) / 2) ** 2 + ((ay1 + ay2) / 2 - (by1 + by2) / 2) ** 2
    c2 = (max(ax2, bx2) - min(ax1, bx1)) ** 2 + (max(ay2, by2) - min(ay1, by1)) ** 2
    return iou - (rho2 / c2) ** beta


def ref_iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def ref_voting_nms(
    boxes, scores, labels, iou_threshold=0.6, max_num=-1, beta=0.8, vote_threshold=0.7, vote_sigma=0.025
):
    """Greedy per-class DIoU-NMS + score voting, one box at a time. Returns (dets, labels, keep) as lists."""
    n = len(boxes)
    order = sorted(range(n), key=lambda i: (-scores[i], i))  # descending score, ties in input order
    rank = {idx: r for r, idx in enumerate(order)}
    kept = []
    for cls in sorted(set(labels)):
        kept_cls = []
        for j in (i for i in order if labels[i] == cls):
            if all(ref_diou(boxes[i], boxes[j], beta) <= iou_threshold for i in kept_cls):
                kept_cls.append(j)
        kept.extend(kept_cls)
    kept.sort(key=lambda i: rank[i])
    if max_num > 0:
        kept = kept[:max_num]
    dets = []
    for i in kept:
        total = scores[i]
        acc = [scores[i] * c for c in boxes[i]]
        for j in range(n):
            if labels[j] != labels[i] or rank[j] <= rank[i]:
                continue
            d = ref_diou(boxes[i], boxes[j], beta)
            if d > vote_threshold:
                w = scores[j] * math.exp(-((1 - d) ** 2) / vote_sigma)
                total += w
                acc = [a + w * c for a, c in zip(acc, boxes[j])]
        dets.append([a / total for a in acc] + [scores[i]])
    return dets, [labels[i] for i in kept], kept


def run_both(boxes, scores, labels, **kwargs):
    boxes = torch.as_tensor(boxes, dtype=torch.float64).reshape(-1, 4)
    scores = torch.as_tensor(scores, dtype=torch.float64)
    labels = torch.as_tensor(labels, dtype=torch.long)
    got = voting_cluster_diou_nms(boxes, scores, labels, **kwargs)
    want = ref_voting_nms(boxes.tolist(), scores.tolist(), labels.tolist(), **kwargs)
    return got, want


def assert_matches(got, want):
    dets, labels, keep = got
    want_dets, want_labels, want_keep = want
    assert keep.dtype == torch.long
    assert keep.tolist() == want_keep
    assert labels.tolist() == want_labels
    assert dets.shape == (len(want_keep), 5)
    if want_dets:
        torch.testing.assert_close(dets, torch.tensor(want_dets, dtype=dets.dtype), rtol=1e-9, atol=1e-9)


def random_boxes(gen, n, size=100.0, clustered=True):
    """Random xyxy boxes; ``clustered`` jitters a few seed boxes so that many pairs overlap strongly."""
    if clustered and n:
        n_seeds = max(1, n // 8)
        xy = torch.rand(n_seeds, 2, generator=gen, dtype=torch.float64) * size
        wh = torch.rand(n_seeds, 2, generator=gen, dtype=torch.float64) * size / 3 + 2
        pick = torch.randint(0, n_seeds, (n,), generator=gen)
        jitter = torch.randn(n, 4, generator=gen, dtype=torch.float64) * wh[pick].repeat(1, 2) * 0.08
        boxes = torch.cat([xy[pick], xy[pick] + wh[pick]], 1) + jitter
    else:
        xy = torch.rand(n, 2, generator=gen, dtype=torch.float64) * size
        wh = torch.rand(n, 2, generator=gen, dtype=torch.float64) * size / 3 + 1
        boxes = torch.cat([xy, xy + wh], 1)
    x1 = torch.minimum(boxes[:, 0], boxes[:, 2] - 0.5)
    y1 = torch.minimum(boxes[:, 1], boxes[:, 3] - 0.5)
    return torch.stack([x1, y1, boxes[:, 2], boxes[:, 3]], 1)


# ----------------------------------------------------------------------------------------------------------------
# Randomised comparison with the reference
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("num_classes", [1, 3, 7])
def test_random_inputs_match_reference(seed, num_classes):
    gen = torch.Generator().manual_seed(seed * 31 + num_classes)
    n = int(torch.randint(1, 201, (1,), generator=gen))
    boxes = random_boxes(gen, n, clustered=seed % 3 != 2)
    scores = torch.rand(n, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, num_classes, (n,), generator=gen)
    got, want = run_both(boxes, scores, labels)
    assert_matches(got, want)
    assert 0 < len(want[2]) <= n


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(iou_threshold=0.3),
        dict(iou_threshold=0.5, beta=1.0),
        dict(iou_threshold=0.8, vote_threshold=0.9),
        dict(iou_threshold=0.6, vote_threshold=0.3, vote_sigma=0.1),  # kept boxes vote too
        dict(iou_threshold=0.0),
        dict(iou_threshold=-0.2),  # even disjoint neighbours suppress each other
        dict(max_num=5),
    ],
)
def test_random_inputs_other_parameters_match_reference(kwargs):
    gen = torch.Generator().manual_seed(1234)
    n = 150
    boxes = random_boxes(gen, n, size=60.0)
    scores = torch.rand(n, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 3, (n,), generator=gen)
    got, want = run_both(boxes, scores, labels, **kwargs)
    assert_matches(got, want)


@pytest.mark.parametrize("seed", range(3))
def test_tied_scores_match_reference(seed):
    gen = torch.Generator().manual_seed(100 + seed)
    n = 120
    boxes = random_boxes(gen, n)
    scores = torch.randint(0, 4, (n,), generator=gen).double() / 4 + 0.25  # only four distinct scores
    labels = torch.randint(0, 2, (n,), generator=gen)
    got, want = run_both(boxes, scores, labels)
    assert_matches(got, want)


def test_all_scores_equal_keeps_input_order():
    gen = torch.Generator().manual_seed(7)
    boxes = random_boxes(gen, 60, clustered=False)
    scores = torch.full((60,), 0.5, dtype=torch.float64)
    got, want = run_both(boxes, scores, torch.zeros(60, dtype=torch.long))
    assert_matches(got, want)
    assert got[2].tolist() == sorted(got[2].tolist())


def test_identical_boxes_match_reference():
    gen = torch.Generator().manual_seed(3)
    base = torch.tensor([[10.0, 20.0, 50.0, 70.0], [12.0, 22.0, 48.0, 71.0], [80.0, 80.0, 90.0, 95.0]])
    boxes = base[torch.randint(0, 3, (40,), generator=gen)]
    scores = torch.rand(40, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 2, (40,), generator=gen)
    got, want = run_both(boxes, scores, labels)
    assert_matches(got, want)
    # One survivor per (distinct box cluster, class) at most.
    assert len(want[2]) <= 6


def test_nested_boxes_match_reference():
    # Concentric and corner-anchored boxes nested inside each other, increasingly small.
    boxes, scores = [], []
    for k in range(30):
        s = 100.0 * 0.93**k
        boxes.append([50 - s / 2, 50 - s / 2, 50 + s / 2, 50 + s / 2])
        boxes.append([0.0, 0.0, s, s * 0.8])
        scores += [0.2 + 0.02 * (k % 7), 0.9 - 0.01 * k]
    got, want = run_both(boxes, scores, [0] * len(scores))
    assert_matches(got, want)
    assert len(want[2]) > 2  # a chain: neighbours suppress each other, distant links survive


def test_single_class_dense_cluster_matches_reference():
    gen = torch.Generator().manual_seed(11)
    n = 200
    boxes = torch.tensor([30.0, 30.0, 70.0, 70.0], dtype=torch.float64) + torch.randn(n, 4, generator=gen).double() * 3
    scores = torch.rand(n, generator=gen, dtype=torch.float64)
    got, want = run_both(boxes, scores, [0] * n)
    assert_matches(got, want)


# ----------------------------------------------------------------------------------------------------------------
# Edge cases
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_empty_input(dtype):
    dets, labels, keep = voting_cluster_diou_nms(
        torch.zeros((0, 4), dtype=dtype), torch.zeros((0,), dtype=dtype), torch.zeros((0,), dtype=torch.long)
    )
    assert dets.shape == (0, 5) and dets.dtype == dtype
    assert labels.shape == (0,) and labels.dtype == torch.long
    assert keep.shape == (0,) and keep.dtype == torch.long


def test_one_box_is_returned_unchanged():
    boxes = torch.tensor([[1.0, 2.0, 3.0, 5.0]])
    dets, labels, keep = voting_cluster_diou_nms(boxes, torch.tensor([0.3]), torch.tensor([4]))
    torch.testing.assert_close(dets, torch.tensor([[1.0, 2.0, 3.0, 5.0, 0.3]]))
    assert labels.tolist() == [4] and keep.tolist() == [0]


@pytest.mark.parametrize("max_num", [1, 3, 10, 1000, 0, -1])
def test_max_num_truncates_to_top_scores(max_num):
    gen = torch.Generator().manual_seed(5)
    n = 80
    boxes = random_boxes(gen, n, clustered=False)
    scores = torch.rand(n, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 4, (n,), generator=gen)
    got, want = run_both(boxes, scores, labels, max_num=max_num)
    assert_matches(got, want)
    full, _ = run_both(boxes, scores, labels)
    k = len(full[2]) if max_num <= 0 else min(max_num, len(full[2]))
    assert got[2].tolist() == full[2][:k].tolist()
    torch.testing.assert_close(got[0], full[0][:k])


def test_output_sorted_by_descending_score_and_inputs_untouched():
    gen = torch.Generator().manual_seed(9)
    boxes = random_boxes(gen, 100)
    scores = torch.rand(100, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 3, (100,), generator=gen)
    copies = boxes.clone(), scores.clone(), labels.clone()
    dets, out_labels, keep = voting_cluster_diou_nms(boxes, scores, labels)
    assert torch.all(dets[1:, 4] <= dets[:-1, 4])
    torch.testing.assert_close(dets[:, 4], scores[keep])  # scores are unchanged
    assert torch.equal(out_labels, labels[keep])
    assert torch.equal(boxes, copies[0]) and torch.equal(scores, copies[1]) and torch.equal(labels, copies[2])


def test_float32_and_half_inputs():
    gen = torch.Generator().manual_seed(21)
    boxes = random_boxes(gen, 100) * 2
    scores = torch.rand(100, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 3, (100,), generator=gen)
    ref = voting_cluster_diou_nms(boxes, scores, labels)
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        dets, out_labels, keep = voting_cluster_diou_nms(boxes.to(dtype), scores.to(dtype), labels)
        assert dets.dtype == dtype and keep.dtype == torch.long
        if dtype == torch.float32:  # low precision may flip borderline pairs; float32 must agree here
            assert keep.tolist() == ref[2].tolist()
            torch.testing.assert_close(dets, ref[0].float(), rtol=1e-4, atol=1e-3)
        assert torch.isfinite(dets.float()).all()


def test_invalid_shapes_raise():
    with pytest.raises(ValueError):
        voting_cluster_diou_nms(torch.zeros(3, 5), torch.zeros(3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError):
        voting_cluster_diou_nms(torch.zeros(3, 4), torch.zeros(2), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError):
        diou_matrix(torch.zeros(3), torch.zeros(2, 4))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    gen = torch.Generator().manual_seed(42)
    boxes = random_boxes(gen, 200)
    scores = torch.rand(200, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 5, (200,), generator=gen)
    cpu = voting_cluster_diou_nms(boxes, scores, labels)
    gpu = voting_cluster_diou_nms(boxes.cuda(), scores.cuda(), labels.cuda())
    assert all(t.device.type == "cuda" for t in gpu)
    assert gpu[2].cpu().tolist() == cpu[2].tolist()
    torch.testing.assert_close(gpu[0].cpu(), cpu[0])


# ----------------------------------------------------------------------------------------------------------------
# Hand-made known answers
# ----------------------------------------------------------------------------------------------------------------


def test_two_identical_boxes_one_kept_coordinates_unchanged():
    boxes = torch.tensor([[10.0, 10.0, 30.0, 40.0], [10.0, 10.0, 30.0, 40.0]])
    dets, labels, keep = voting_cluster_diou_nms(boxes, torch.tensor([0.9, 0.8]), torch.tensor([2, 2]))
    assert keep.tolist() == [0] and labels.tolist() == [2]
    torch.testing.assert_close(dets, torch.tensor([[10.0, 10.0, 30.0, 40.0, 0.9]]))


def test_suppressed_box_votes_hand_computed():
    # Concentric boxes: the centre-distance penalty is 0, so DIoU = IoU = 100 / 121 ~ 0.826 > 0.7 > 0.6.
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [-0.5, -0.5, 10.5, 10.5]], dtype=torch.float64)
    scores = torch.tensor([0.9, 0.6], dtype=torch.float64)
    dets, _, keep = voting_cluster_diou_nms(boxes, scores, torch.tensor([0, 0]))
    assert keep.tolist() == [0]
    diou = 100 / 121
    w = 0.6 * math.exp(-((1 - diou) ** 2) / 0.025)
    lo = (0.9 * 0.0 + w * -0.5) / (0.9 + w)
    hi = (0.9 * 10.0 + w * 10.5) / (0.9 + w)
    torch.testing.assert_close(dets, torch.tensor([[lo, lo, hi, hi, 0.9]], dtype=torch.float64))
    assert lo < 0 and hi > 10  # it moved towards the suppressed box


def test_voting_does_not_depend_on_input_order():
    # Same pair as above with the input order reversed: the kept box is still the higher-scoring one.
    boxes = torch.tensor([[-0.5, -0.5, 10.5, 10.5], [0.0, 0.0, 10.0, 10.0]], dtype=torch.float64)
    scores = torch.tensor([0.6, 0.9], dtype=torch.float64)
    dets, _, keep = voting_cluster_diou_nms(boxes, scores, torch.tensor([1, 1]))
    assert keep.tolist() == [1]
    w = 0.6 * math.exp(-((1 - 100 / 121) ** 2) / 0.025)
    torch.testing.assert_close(dets[0, 0].item(), (w * -0.5) / (0.9 + w))


def test_suppressed_box_below_vote_threshold_does_not_vote():
    # DIoU = IoU = 100 / 144 ~ 0.694: above the NMS threshold 0.6, below the vote threshold 0.7.
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [-1.0, -1.0, 11.0, 11.0]])
    dets, _, keep = voting_cluster_diou_nms(boxes, torch.tensor([0.9, 0.8]), torch.tensor([0, 0]))
    assert keep.tolist() == [0]
    torch.testing.assert_close(dets, torch.tensor([[0.0, 0.0, 10.0, 10.0, 0.9]]))


def test_low_overlap_boxes_both_kept_and_do_not_vote():
    # DIoU = 100 / 196 ~ 0.51 < 0.6.
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [-2.0, -2.0, 12.0, 12.0]])
    dets, _, keep = voting_cluster_diou_nms(boxes, torch.tensor([0.9, 0.8]), torch.tensor([0, 0]))
    assert keep.tolist() == [0, 1]
    torch.testing.assert_close(dets[:, :4], boxes)


def test_diou_penalty_keeps_what_iou_alone_would_suppress():
    # Shifted by 24: IoU = 7600 / 12400 ~ 0.613 > 0.6, but the centre-distance penalty
    # (24^2 / (124^2 + 100^2)) ** 0.8 ~ 0.048 brings DIoU to ~ 0.565 < 0.6.
    boxes = torch.tensor([[0.0, 0.0, 100.0, 100.0], [24.0, 0.0, 124.0, 100.0]], dtype=torch.float64)
    assert ref_iou(boxes[0].tolist(), boxes[1].tolist()) > 0.6
    expected = 7600 / 12400 - (24**2 / (124**2 + 100**2)) ** 0.8
    assert expected < 0.6
    torch.testing.assert_close(diou_matrix(boxes[:1], boxes[1:])[0, 0].item(), expected)
    _, _, keep = voting_cluster_diou_nms(boxes, torch.tensor([0.9, 0.8], dtype=torch.float64), torch.tensor([0, 0]))
    assert keep.tolist() == [0, 1]


def test_suppression_chain_matches_greedy_not_fast_nms():
    # A suppresses B, B would suppress C, but A does not suppress C. Greedy NMS (and Cluster-NMS) keep A and C;
    # Fast-NMS, which lets suppressed boxes suppress, would drop C.
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [2.0, 0.0, 12.0, 10.0], [4.0, 0.0, 14.0, 10.0]])
    d = diou_matrix(boxes, boxes)
    assert d[0, 1] > 0.6 and d[1, 2] > 0.6 and d[0, 2] < 0.6
    assert d[0, 1] < 0.7  # nobody votes
    dets, _, keep = voting_cluster_diou_nms(boxes, torch.tensor([0.9, 0.8, 0.7]), torch.tensor([0, 0, 0]))
    assert keep.tolist() == [0, 2]
    torch.testing.assert_close(dets[:, :4], boxes[[0, 2]])


def test_different_classes_never_suppress_or_vote():
    boxes = torch.tensor([[10.0, 10.0, 30.0, 40.0], [10.0, 10.0, 30.0, 40.0], [10.5, 10.5, 30.5, 40.5]])
    dets, labels, keep = voting_cluster_diou_nms(boxes, torch.tensor([0.9, 0.8, 0.7]), torch.tensor([0, 1, 2]))
    assert keep.tolist() == [0, 1, 2] and labels.tolist() == [0, 1, 2]
    torch.testing.assert_close(dets[:, :4], boxes)


# ----------------------------------------------------------------------------------------------------------------
# diou_matrix
# ----------------------------------------------------------------------------------------------------------------


def test_diou_matrix_properties():
    gen = torch.Generator().manual_seed(0)
    boxes = random_boxes(gen, 50)
    d = diou_matrix(boxes, boxes)
    assert d.shape == (50, 50) and d.dtype == torch.float64
    torch.testing.assert_close(torch.diagonal(d), torch.ones(50, dtype=torch.float64))
    torch.testing.assert_close(d, d.T)
    b = boxes.tolist()
    iou = torch.tensor([[ref_iou(x, y) for y in b] for x in b], dtype=torch.float64)
    assert torch.all(d <= iou + 1e-12)
    assert torch.all(d >= -1) and torch.all(d <= 1)
    want = torch.tensor([[ref_diou(x, y) for y in b] for x in b], dtype=torch.float64)
    torch.testing.assert_close(d, want)


def test_diou_matrix_rectangular_and_beta():
    a = torch.tensor([[0.0, 0.0, 4.0, 4.0]])
    b = torch.tensor([[0.0, 0.0, 4.0, 4.0], [8.0, 0.0, 12.0, 4.0], [2.0, 0.0, 6.0, 4.0]])
    d1 = diou_matrix(a, b, beta=1.0)
    assert d1.shape == (1, 3)
    # Disjoint: IoU 0, rho^2 = 64, c^2 = 12^2 + 4^2 = 160.  Half overlap: IoU 8/24, rho^2 = 4, c^2 = 52.
    torch.testing.assert_close(d1, torch.tensor([[1.0, -64 / 160, 8 / 24 - 4 / 52]]))
    d08 = diou_matrix(a, b)
    torch.testing.assert_close(d08, torch.tensor([[1.0, -((64 / 160) ** 0.8), 8 / 24 - (4 / 52) ** 0.8]]))
    assert diou_matrix(a, b[:0]).shape == (1, 0)


# ----------------------------------------------------------------------------------------------------------------
# Per-class blocking: the same output, bit for bit, as the all-class (N, N) formulation; memory per class
# ----------------------------------------------------------------------------------------------------------------

nms_module = importlib.import_module("ld.ops.voting_cluster_diou_nms")


def assert_bitwise(got, want):
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        assert torch.equal(g, w)


@pytest.fixture
def threads():
    """Run with a given torch thread count, restored afterwards."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def multiclass_case(seed, n, num_classes, dtype=torch.float64, skewed=False, ties=False, duplicates=False):
    gen = torch.Generator().manual_seed(seed)
    boxes = random_boxes(gen, n, size=300.0, clustered=seed % 4 != 3)
    if duplicates and n > 1:
        boxes[torch.randint(0, n, (n // 4,), generator=gen)] = boxes[torch.randint(0, n, (n // 4,), generator=gen)]
    scores = torch.rand(n, generator=gen, dtype=torch.float64)
    if ties:
        scores = torch.randint(0, 5, (n,), generator=gen).double() / 5 + 0.1
    labels = torch.randint(0, num_classes, (n,), generator=gen)
    if skewed:
        labels = torch.where(torch.rand(n, generator=gen) < 0.9, labels % 3, labels)
    return boxes.to(dtype), scores.to(dtype), labels


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("num_classes", [20, 80])
def test_many_classes_match_python_reference(seed, num_classes):
    boxes, scores, labels = multiclass_case(seed, 240, num_classes, skewed=seed % 2 == 1, duplicates=seed == 2,
                                            ties=seed == 3)
    got, want = run_both(boxes, scores, labels, max_num=50 if seed == 1 else -1)
    assert_matches(got, want)


@pytest.mark.parametrize("nthreads", [1, 2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bitwise_equal_to_all_class_formulation(dtype, nthreads, threads):
    threads(nthreads)
    cases = 0
    for seed in range(18):
        n = [0, 1, 2, 7, 19, 33, 186, 190, 350, 600][seed % 10] if seed < 10 else 50 + 37 * seed
        num_classes = [1, 2, 3, 5, 80, 80][seed % 6]
        kwargs = [{}, {"max_num": 30}, {"max_num": 1}, {"iou_threshold": 0.3, "vote_threshold": 0.5},
                  {"beta": 1.0}, {}][seed % 6]
        boxes, scores, labels = multiclass_case(seed, n, num_classes, dtype=dtype, skewed=seed % 3 == 0,
                                                ties=seed % 5 == 0, duplicates=seed % 4 == 0)
        assert_bitwise(voting_cluster_diou_nms(boxes, scores, labels, **kwargs),
                       voting_cluster_diou_nms_reference(boxes, scores, labels, **kwargs))
        cases += 1
    assert cases == 18


@pytest.mark.parametrize("budgets", [(64, 16, 50), (4096, 256, 1000)])
def test_chunked_paths_bitwise_equal(monkeypatch, budgets):
    """Tiny budgets force every chunked path on small inputs: several blocks per image, rows of a block in
    chunks, dense suppression/vote matrices, voting weights built a few rows at a time."""
    block, small, vote = budgets
    monkeypatch.setattr(nms_module, "_BLOCK_ELEMS", block)
    monkeypatch.setattr(nms_module, "_SMALL_BLOCK_ELEMS", small)
    monkeypatch.setattr(nms_module, "_VOTE_ELEMS", vote)
    for seed in range(8):
        boxes, scores, labels = multiclass_case(100 + seed, 150 + 20 * seed, [1, 3, 10, 40][seed % 4],
                                                dtype=[torch.float32, torch.float64][seed % 2], skewed=seed % 3 == 1)
        kwargs = {"max_num": 40} if seed % 4 == 2 else {}
        if seed >= 6:  # dense clusters: most pairs suppress and vote (dense block matrices)
            boxes = boxes[:, :2].repeat(1, 2) % 20 + torch.tensor([30.0, 30.0, 70.0, 70.0], dtype=boxes.dtype)
        assert_bitwise(voting_cluster_diou_nms(boxes, scores, labels, **kwargs),
                       voting_cluster_diou_nms_reference(boxes, scores, labels, **kwargs))


@pytest.mark.parametrize("nthreads", [1, 2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_pair_diou_bitwise_equal_to_matrix(dtype, nthreads, threads):
    """Every DIoU of the blocked computation is the float the (N, N) matrix holds, including the pairs that
    the matrix's CPU power gives to ATen's scalar loop (small N; row N/2 - 1 with two threads)."""
    threads(nthreads)
    gen = torch.Generator().manual_seed(0)
    for n in [2, 5, 7, 9, 11, 13, 23, 31, 33, 186, 188, 342]:
        boxes = random_boxes(gen, n, clustered=False).to(dtype)
        want = diou_matrix(boxes, boxes)
        i, j = torch.triu_indices(n, n, 1)
        pow_ = nms_module._PowLikeDense(n, dtype, boxes.device, 0.8)
        cols = box_ops.box_columns(boxes)
        got = nms_module._pair_diou(cols, i, j, pow_)  # the candidate pairs alone (sparse chunks)
        assert torch.equal(got, want[i, j]), n
        # a dense chunk: rows 1: of a one-class block against its columns 2: (its pairs a < b)
        rank = torch.arange(n)
        bi, bj = tuple(c[None, 1:, None] for c in cols), tuple(c[None, None, 2:] for c in cols)
        chunk = box_ops.pair_iou(bi, bj).sub_(
            pow_(box_ops.pair_penalty(bi, bj), rank[None, 1:, None], rank[None, None, 2:]))
        upper = torch.ones(chunk.shape[1:], dtype=torch.bool).triu_()
        assert torch.equal(chunk[0][upper], want[1:, 2:][upper]), n


def test_class_blocks():
    assert nms_module._class_blocks([40] * 80) == [list(range(80))]  # all in one (80, 40, 40) block
    blocks = nms_module._class_blocks([900, 3, 950, 5, 880] + [2] * 75)
    assert blocks[:3] == [[2], [0], [4]]  # large classes alone
    assert blocks[3:] == [[3, 1] + list(range(5, 80))]  # the small ones together
    assert nms_module._class_blocks([300] + [30] * 5) == [[0], [1, 2, 3, 4, 5]]  # no 10x padding


def test_memory_does_not_scale_with_all_pairs(monkeypatch):
    """80 classes x 40 boxes: no pairwise intermediate is wider than a class, none holds more than the
    (80, 40, 40) block's pairs, and no single allocation comes near the N x N = 3200^2 matrix."""
    gen = torch.Generator().manual_seed(0)
    n, num_classes = 3200, 80
    xy = torch.rand(n, 2, generator=gen) * 800
    boxes = torch.cat([xy, xy + torch.rand(n, 2, generator=gen) * 100 + 5], 1)
    scores = torch.rand(n, generator=gen)
    labels = torch.arange(n) % num_classes
    shapes = []
    iou = nms_module.pair_iou

    def recording_iou(bi, bj):
        out = iou(bi, bj)
        shapes.append(tuple(out.shape))
        return out

    monkeypatch.setattr(nms_module, "pair_iou", recording_iou)
    for module in (box_ops, nms_module):  # the reference's all-pairs matrix is not called
        monkeypatch.setattr(module, "diou_matrix", lambda *a, **k: pytest.fail("an all-pairs DIoU matrix"))
    got = voting_cluster_diou_nms(boxes, scores, labels)
    block_shapes = [s for s in shapes if len(s) == 3]
    assert block_shapes and all(s[0] <= num_classes and s[1] <= 40 and s[2] <= 40 for s in block_shapes)
    assert all(math.prod(s) <= num_classes * 40 * 40 for s in shapes)

    from torch.profiler import profile

    with profile(profile_memory=True) as prof:
        voting_cluster_diou_nms(boxes, scores, labels)
    largest = max(e.cpu_memory_usage for e in prof.events())
    assert largest < n * n * 4 / 8  # an (N, N) float32 matrix is 39 MiB; the largest allocation here is far less
    monkeypatch.undo()
    assert_bitwise(got, voting_cluster_diou_nms_reference(boxes, scores, labels))

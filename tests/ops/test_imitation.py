"""Known-answer tests of the feature-imitation regions and loss (``ld.ops.imitation``).

The rules restate upstream HikariTJU/LD (``ld_head.py``: ``get_im_region``, ``get_gi_region``;
``kd_loss.py``: ``IMLoss`` = ``F.mse_loss``); the last tests compare the module with loop-based
restatements of them on random cases.
"""
from __future__ import annotations

import math
import random

import pytest
import torch

from ld.ops.box_ops import box_centers, box_iou
from ld.ops.imitation import (
    GI_NMS_IOU,
    GI_TOPK,
    IMITATION_METHODS,
    finegrained_region,
    gi_region,
    imitation_loss,
    points_inside_boxes,
)

F64 = torch.float64


def _t(rows, dtype=F64) -> torch.Tensor:
    return torch.tensor(rows, dtype=dtype)


def _logit(p: float) -> float:
    """The logit whose sigmoid is ``p``."""
    return math.log(p / (1 - p))


def _logits(rows) -> torch.Tensor:
    return _t([[_logit(p) for p in row] for row in rows])


# --------------------------------------------------------------------------------------------------------------
# points_inside_boxes
# --------------------------------------------------------------------------------------------------------------

def test_points_inside_boxes_is_strict_and_any_over_boxes():
    """Border points are outside; a point inside either of two boxes is inside."""
    boxes = _t([[0, 0, 4, 4], [10, 10, 20, 20]])
    points = _t([
        [2, 2],  # inside box 0
        [0, 2],  # on the left border of box 0
        [4, 2],  # right border
        [2, 0],  # top border
        [2, 4],  # bottom border
        [4, 4],  # corner
        [15, 15],  # inside box 1 only
        [7, 7],  # between the boxes
        [3.999, 0.001],  # just inside box 0
        [20, 15],  # on the right border of box 1
    ])
    expected = torch.tensor([True, False, False, False, False, False, True, False, True, False])
    out = points_inside_boxes(points, boxes)
    assert out.dtype == torch.bool and out.shape == (10,)
    assert torch.equal(out, expected)


def test_points_inside_boxes_without_boxes_is_all_false():
    points = _t([[1, 1], [2, 3], [5, 5]])
    out = points_inside_boxes(points, torch.zeros(0, 4, dtype=F64))
    assert out.dtype == torch.bool and out.shape == (3,)
    assert not out.any()


def test_points_inside_integer_boxes():
    """Integer gt boxes are compared with float points."""
    out = points_inside_boxes(_t([[0.5, 0.5], [1.0, 0.5]], torch.float32), torch.tensor([[0, 0, 1, 1]]))
    assert torch.equal(out, torch.tensor([True, False]))


# --------------------------------------------------------------------------------------------------------------
# finegrained_region
# --------------------------------------------------------------------------------------------------------------

# gt A = [0, 0, 4, 4] (area 16), gt B = [100, 100, 110, 110] (area 100); no anchor overlaps both.
FG_GTS = _t([[0, 0, 4, 4], [100, 100, 110, 110]])
FG_ANCHORS = _t([
    [0, 0, 4, 4],  # a0: equal to A, IoU 1                                   -> selected (1 > 0.5)
    [2, 0, 6, 4],  # a1: half of A, inter 8, union 24, IoU 1/3               -> not (1/3 < 0.5)
    [0, 0, 4, 3],  # a2: inside A, inter 12, union 16, IoU 3/4               -> selected
    [0, 0, 2, 4],  # a3: inside A, inter 8, union 16, IoU 1/2: not > 1/2     -> not (strict)
    [105, 105, 115, 115],  # a4: B's best, inter 25, union 175, IoU 1/7      -> selected (1/7 > 1/14)
    [108, 108, 118, 118],  # a5: inter 4, union 196, IoU 1/49 < 1/14         -> not
    [106, 105, 116, 115],  # a6: inter 20, union 180, IoU 1/9 > 1/14         -> selected
])
FG_IOU = _t([
    [1, 0], [1 / 3, 0], [3 / 4, 0], [1 / 2, 0], [0, 1 / 7], [0, 1 / 49], [0, 1 / 9],
])


def test_finegrained_hand_ious():
    """The IoUs worked out in the comments above."""
    torch.testing.assert_close(box_iou(FG_ANCHORS, FG_GTS), FG_IOU)


def test_finegrained_region_known_answer():
    """Relative to each gt's best IoU: B's anchors of IoU 1/7 and 1/9 are selected, A's of 1/3 is not."""
    out = finegrained_region(FG_ANCHORS, FG_GTS)
    assert out.dtype == torch.bool and out.shape == (7,)
    assert out.tolist() == [True, False, True, False, True, False, True]


def test_finegrained_region_per_gt_and_ratio():
    """Each gt only selects against its own maximum; the ratio is a parameter."""
    assert finegrained_region(FG_ANCHORS, FG_GTS[:1]).tolist() == [True, False, True, False, False, False, False]
    assert finegrained_region(FG_ANCHORS, FG_GTS[1:]).tolist() == [False, False, False, False, True, False, True]
    # ratio 0.3: A keeps IoU > 0.3 (1, 1/3, 3/4, 1/2); B keeps IoU > 0.3/7 (1/7, 1/9; 1/49 = 0.0204 < 0.0429)
    assert finegrained_region(FG_ANCHORS, FG_GTS, ratio=0.3).tolist() == [True] * 5 + [False, True]


def test_finegrained_region_gt_without_overlap_selects_nothing():
    """A gt no anchor overlaps has max IoU 0, and IoU > 0 holds nowhere."""
    far = _t([[500, 500, 510, 510]])
    assert not finegrained_region(FG_ANCHORS, far).any()
    both = torch.cat([FG_GTS, far])
    assert torch.equal(finegrained_region(FG_ANCHORS, both), finegrained_region(FG_ANCHORS, FG_GTS))


def test_finegrained_region_empty_inputs():
    out = finegrained_region(FG_ANCHORS, torch.zeros(0, 4, dtype=F64))
    assert out.dtype == torch.bool and out.shape == (7,) and not out.any()
    out = finegrained_region(torch.zeros(0, 4, dtype=F64), FG_GTS)
    assert out.dtype == torch.bool and out.shape == (0,)


# --------------------------------------------------------------------------------------------------------------
# gi_region
# --------------------------------------------------------------------------------------------------------------

# Five locations, two classes. z = p_teacher - p_student; GI score = max |z|; the box is the teacher's when z at
# that class is >= 0, else the student's.
GI_T_PROB = [[0.9, 0.5], [0.5, 0.2], [0.6, 0.3], [0.7, 0.2], [0.1, 0.5]]
GI_S_PROB = [[0.1, 0.5], [0.5, 0.9], [0.1, 0.9], [0.3, 0.5], [0.4, 0.5]]
# loc0: z = [ 0.8,  0.0] -> score 0.8, class 0, z >= 0 -> teacher box T0
# loc1: z = [ 0.0, -0.7] -> score 0.7, class 1, z < 0  -> student box S1
# loc2: z = [ 0.5, -0.6] -> score 0.6, class 1, z < 0  -> student box S2 (although z of class 0 is positive)
# loc3: z = [ 0.4, -0.3] -> score 0.4, class 0, z >= 0 -> teacher box T3
# loc4: z = [-0.3,  0.0] -> score 0.3, class 0, z < 0  -> student box S4
GI_T_BOXES = _t([
    [0, 0, 10, 10],  # T0 (used)
    [50, 0, 60, 10],  # T1 (not used; disjoint from everything: loc1 would be kept with it)
    [1, 0, 11, 10],  # T2 (not used; IoU 9/11 with T0: loc2 would be suppressed with it)
    [55, 50, 65, 60],  # T3 (used)
    [0, 0, 10, 10],  # T4 (not used; equal to T0: loc4 would be suppressed with it)
])
GI_S_BOXES = _t([
    [200, 0, 210, 10],  # S0 (not used; disjoint: loc1 would survive with it)
    [2, 0, 12, 10],  # S1 (used): with T0 inter 80, union 120, IoU 2/3 > 0.3 -> suppressed by loc0 (0.8 > 0.7)
    [50, 50, 60, 60],  # S2 (used): disjoint from T0 -> kept
    [100, 100, 110, 110],  # S3 (not used; disjoint: loc3 would be kept with it)
    [57, 50, 67, 60],  # S4 (used): with S2 inter 30, union 170, IoU 0.18 -> kept; with T3 IoU 2/3 but T3 is out
])
# T3 with S2: inter 50, union 150, IoU 1/3 > 0.3 -> loc3 suppressed by loc2 (0.6 > 0.4).


def test_gi_region_known_answer():
    """Teacher/student box choice, NMS at 0.3 (a suppressed box suppresses nothing), descending score."""
    keep = gi_region(_logits(GI_T_PROB), _logits(GI_S_PROB), GI_T_BOXES, GI_S_BOXES)
    assert keep.dtype == torch.long
    assert keep.tolist() == [0, 2, 4]


def test_gi_region_hand_ious():
    """The IoUs in the comments above."""
    iou = box_iou(_t([[0, 0, 10, 10], [50, 50, 60, 60], [55, 50, 65, 60]]),
                  _t([[2, 0, 12, 10], [55, 50, 65, 60], [57, 50, 67, 60], [1, 0, 11, 10]]))
    torch.testing.assert_close(iou[0, 0], _t(2 / 3))
    torch.testing.assert_close(iou[1, 1], _t(1 / 3))
    torch.testing.assert_close(iou[1, 2], _t(30 / 170))
    torch.testing.assert_close(iou[2, 2], _t(2 / 3))
    torch.testing.assert_close(iou[0, 3], _t(9 / 11))


def test_gi_region_swapping_the_logits_flips_the_boxes():
    """Teacher and student logits swapped, boxes not: z changes sign, so each location takes the other box."""
    keep = gi_region(_logits(GI_S_PROB), _logits(GI_T_PROB), GI_T_BOXES, GI_S_BOXES)
    # GI boxes: S0, T1, T2, S3, T4 with scores 0.8, 0.7, 0.6, 0.4, 0.3. S0, T1, S3 disjoint from all;
    # T2 overlaps T4 (IoU 9/11) and T2 scores higher, so loc4 goes.
    assert keep.tolist() == [0, 1, 2, 3]
    # swapping the boxes too swaps them back: the same selection as the known answer
    assert gi_region(_logits(GI_S_PROB), _logits(GI_T_PROB), GI_S_BOXES, GI_T_BOXES).tolist() == [0, 2, 4]


def test_gi_region_tie_uses_the_teacher_box():
    """z = 0 at the arg-max class counts as the teacher's (upstream: z >= 0)."""
    t_cls = _t([[3.0], [0.0]])
    s_cls = _t([[-3.0], [0.0]])  # loc1: z = 0, score 0
    t_boxes = _t([[0, 0, 10, 10], [0, 0, 10, 10]])  # loc1's teacher box equals loc0's: suppressed
    s_boxes = _t([[0, 0, 10, 10], [50, 50, 60, 60]])  # loc1's student box is disjoint: would be kept
    assert gi_region(t_cls, s_cls, t_boxes, s_boxes).tolist() == [0]


def _disjoint_boxes(n: int) -> torch.Tensor:
    return _t([[20 * i, 0, 20 * i + 10, 10] for i in range(n)])


def test_gi_region_keeps_the_top_ten_by_score():
    """12 disjoint GI boxes: the 10 highest scores are kept, in descending order."""
    probs = [0.55, 0.9, 0.6, 0.95, 0.7, 0.52, 0.8, 0.65, 0.85, 0.75, 0.58, 0.99]
    t_cls = _logits([[p] for p in probs])
    s_cls = torch.zeros(12, 1, dtype=F64)  # p = 0.5: score = p - 0.5, all teacher boxes
    boxes = _disjoint_boxes(12)
    keep = gi_region(t_cls, s_cls, boxes, boxes)
    expected = sorted(range(12), key=lambda i: -probs[i])[:10]
    assert GI_TOPK == 10 and len(keep) == 10
    assert keep.tolist() == expected
    assert 5 not in keep.tolist() and 0 not in keep.tolist()  # the two lowest (0.52, 0.55)
    assert gi_region(t_cls, s_cls, boxes, boxes, topk=3).tolist() == expected[:3]


def test_gi_region_threshold_parameter():
    """With iou_threshold 0.7 the IoU-2/3 pair (T0, S1) both survive; with 0.3 loc1 goes."""
    t_cls, s_cls = _logits(GI_T_PROB), _logits(GI_S_PROB)
    assert GI_NMS_IOU == 0.3
    # at 0.7: T0, S1 (2/3), S2, T3 (1/3 with S2), S4 (2/3 with T3) all kept
    assert gi_region(t_cls, s_cls, GI_T_BOXES, GI_S_BOXES, iou_threshold=0.7).tolist() == [0, 1, 2, 3, 4]


def test_gi_region_detaches_and_handles_empty():
    """Inputs that require grad are fine (the indices carry no graph); no locations -> no index."""
    t_cls = _logits(GI_T_PROB).requires_grad_()
    s_cls = _logits(GI_S_PROB).requires_grad_()
    keep = gi_region(t_cls, s_cls, GI_T_BOXES.clone().requires_grad_(), GI_S_BOXES.clone().requires_grad_())
    assert keep.tolist() == [0, 2, 4] and not keep.requires_grad
    empty = gi_region(torch.zeros(0, 2), torch.zeros(0, 2), torch.zeros(0, 4), torch.zeros(0, 4))
    assert empty.dtype == torch.long and empty.shape == (0,)


# --------------------------------------------------------------------------------------------------------------
# imitation_loss
# --------------------------------------------------------------------------------------------------------------

# Student zeros, teacher rows below: squared errors per row [1, 1], [4, 4], [9, 9], [1, 9] (sums 2, 8, 18, 10).
T_FEAT = [[1, 1], [2, 2], [3, 3], [1, 3]]
REGION = torch.tensor([True, True, False, False])


def _feats():
    s = torch.zeros(4, 2, dtype=F64, requires_grad=True)
    t = _t(T_FEAT).requires_grad_()
    return s, t


def test_fitnet_is_the_mse_of_every_row():
    """(2 + 8 + 18 + 10) / 8 = 4.75, the region ignored; grad 2 (s - t) / 8."""
    for region in (REGION, torch.zeros(4, dtype=torch.bool)):
        s, t = _feats()
        loss = imitation_loss(s, t, region, "fitnet")
        torch.testing.assert_close(loss, _t(4.75))
        loss.backward()
        torch.testing.assert_close(s.grad, -_t(T_FEAT) / 4)
        assert t.grad is None


@pytest.mark.parametrize("method", ["inside_gt", "finegrained", "gibox"])
def test_region_methods_are_the_mse_on_the_region(method):
    """Rows 0 and 1: (2 + 8) / 4 = 2.5; grad 2 (s - t) / 4 there, 0 elsewhere."""
    s, t = _feats()
    loss = imitation_loss(s, t, REGION, method)
    torch.testing.assert_close(loss, _t(2.5))
    loss.backward()
    torch.testing.assert_close(s.grad, _t([[-0.5, -0.5], [-1, -1], [0, 0], [0, 0]]))
    assert t.grad is None


def test_region_methods_on_another_region():
    """Rows 2 and 3: (18 + 10) / 4 = 7; a single row 3: 10 / 2 = 5."""
    s, t = _feats()
    torch.testing.assert_close(imitation_loss(s, t, ~REGION, "inside_gt"), _t(7.0))
    torch.testing.assert_close(imitation_loss(s, t, torch.tensor([False, False, False, True]), "gibox"), _t(5.0))


def test_decouple_is_fg_plus_twice_bg():
    """fg rows 0, 1: 2.5; bg rows 2, 3: 7; 2.5 + 2 * 7 = 16.5. grad: -t / 2 on fg, 2 * (-t / 2) = -t on bg."""
    s, t = _feats()
    loss = imitation_loss(s, t, REGION, "decouple")
    torch.testing.assert_close(loss, _t(16.5))
    loss.backward()
    torch.testing.assert_close(s.grad, _t([[-0.5, -0.5], [-1, -1], [-3, -3], [-1, -3]]))
    assert t.grad is None


def test_decouple_weights_the_background_not_the_foreground():
    """Swapping fg and bg: 7 + 2 * 2.5 = 12."""
    s, t = _feats()
    torch.testing.assert_close(imitation_loss(s, t, ~REGION, "decouple"), _t(12.0))


def test_decouple_with_every_row_foreground():
    """No background row: the background term is 0 (not NaN), leaving the MSE of all rows, 4.75."""
    s, t = _feats()
    loss = imitation_loss(s, t, torch.ones(4, dtype=torch.bool), "decouple")
    torch.testing.assert_close(loss, _t(4.75))


@pytest.mark.parametrize("method", ["inside_gt", "finegrained", "gibox", "decouple"])
def test_empty_region_is_zero_with_a_graph(method):
    """No region row: 0, still differentiable; the student's grad is zeros, the teacher's stays None."""
    s, t = _feats()
    loss = imitation_loss(s, t, torch.zeros(4, dtype=torch.bool), method)
    assert loss.ndim == 0 and loss.item() == 0.0
    assert loss.requires_grad
    loss.backward()
    assert s.grad is not None and torch.equal(s.grad, torch.zeros(4, 2, dtype=F64))
    assert t.grad is None


def test_loss_is_zero_when_student_equals_teacher():
    t = _t(T_FEAT)
    for method in IMITATION_METHODS:
        assert imitation_loss(t.clone(), t, REGION, method).item() == 0.0


def test_imitation_loss_rejects_bad_input():
    s, t = _feats()
    with pytest.raises(ValueError, match="imitation method"):
        imitation_loss(s, t, REGION, "mimic")
    with pytest.raises(ValueError, match="differ"):
        imitation_loss(s, torch.zeros(4, 3, dtype=F64), REGION, "fitnet")
    with pytest.raises(ValueError, match="differ"):
        imitation_loss(s, torch.zeros(3, 2, dtype=F64), REGION[:3], "inside_gt")


# --------------------------------------------------------------------------------------------------------------
# Comparison with loop-based restatements of upstream on random cases
# --------------------------------------------------------------------------------------------------------------

def _ref_iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def _ref_im_region(anchors: list, gts: list) -> tuple[list, list]:
    """Upstream get_im_region: the finegrained flag (IoU > 0.5 * the gt's max IoU) and the inside-gt flag."""
    fine = [False] * len(anchors)
    for g in gts:
        ious = [_ref_iou(a, g) for a in anchors]
        best = max(ious)
        for n, iou in enumerate(ious):
            if iou > 0.5 * best:
                fine[n] = True
    inside = [False] * len(anchors)
    for n, a in enumerate(anchors):
        cx, cy = (a[0] + a[2]) / 2, (a[1] + a[3]) / 2
        for g in gts:
            if g[0] < cx < g[2] and g[1] < cy < g[3]:
                inside[n] = True
    return fine, inside


def _random_boxes(rng: random.Random, n: int, integer: bool, span: float = 32.0, size: float = 16.0) -> list:
    boxes = []
    for _ in range(n):
        if integer:
            x1, y1 = rng.randint(0, int(span)), rng.randint(0, int(span))
            w, h = rng.randint(1, int(size)), rng.randint(1, int(size))
        else:
            x1, y1 = rng.uniform(0, span), rng.uniform(0, span)
            w, h = rng.uniform(0.5, size), rng.uniform(0.5, size)
        boxes.append([float(x1), float(y1), float(x1 + w), float(y1 + h)])
    return boxes


@pytest.mark.parametrize("integer", [True, False])
def test_im_regions_match_a_loop_restatement(integer):
    """50 random images: finegrained_region and the inside-gt flag equal the loops, including ties and borders
    (integer boxes put centres on gt borders and make IoU = 0.5 * max happen)."""
    for seed in range(50):
        rng = random.Random(seed)
        anchors = _random_boxes(rng, rng.randint(1, 40), integer)
        gts = _random_boxes(rng, rng.randint(0, 5), integer)
        fine, inside = _ref_im_region(anchors, gts)
        a = _t(anchors)
        g = _t(gts) if gts else torch.zeros(0, 4, dtype=F64)
        assert finegrained_region(a, g).tolist() == fine, seed
        assert points_inside_boxes(box_centers(a), g).tolist() == inside, seed


def _ref_gi_boxes(t_cls, s_cls, t_boxes, s_boxes) -> tuple[list, list]:
    """Upstream's GI score and box at each location, with loops over locations and classes."""
    tp, sp = t_cls.sigmoid().tolist(), s_cls.sigmoid().tolist()
    scores, boxes = [], []
    for n in range(len(tp)):
        z = [tp[n][c] - sp[n][c] for c in range(len(tp[n]))]
        best = 0
        for c in range(1, len(z)):
            if abs(z[c]) > abs(z[best]):
                best = c
        scores.append(abs(z[best]))
        boxes.append(t_boxes[n].tolist() if z[best] >= 0 else s_boxes[n].tolist())
    return scores, boxes


def _ref_nms(boxes: list, scores: list, thr: float) -> list:
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    keep = []
    for i in order:
        if all(_ref_iou(boxes[i], boxes[k]) <= thr for k in keep):
            keep.append(i)
    return keep


def _random_gi_case(seed: int):
    rng = random.Random(seed)
    n, c = rng.randint(1, 40), rng.randint(1, 4)
    gen = torch.Generator().manual_seed(seed)
    t_cls = torch.randn(n, c, generator=gen, dtype=F64) * 3
    s_cls = torch.randn(n, c, generator=gen, dtype=F64) * 3
    # float32 boxes: the module runs its NMS in float32, the loops then see the same coordinates
    t_boxes = _t(_random_boxes(rng, n, integer=False, span=120.0, size=40.0), torch.float32).to(F64)
    s_boxes = _t(_random_boxes(rng, n, integer=False, span=120.0, size=40.0), torch.float32).to(F64)
    return t_cls, s_cls, t_boxes, s_boxes


def test_gi_region_matches_a_loop_restatement():
    """50 random levels: the GI boxes by loops, greedy NMS at 0.3 by loops, the first 10."""
    kept_many = 0
    for seed in range(50):
        t_cls, s_cls, t_boxes, s_boxes = _random_gi_case(seed)
        scores, boxes = _ref_gi_boxes(t_cls, s_cls, t_boxes, s_boxes)
        expected = _ref_nms(boxes, scores, 0.3)
        kept_many += len(expected) > 10
        assert gi_region(t_cls, s_cls, t_boxes, s_boxes).tolist() == expected[:10], seed
    assert kept_many > 0  # the top-10 cut is exercised


def test_gi_region_matches_torchvision_nms():
    """As above, with upstream's own NMS (torchvision.ops.nms) where torchvision is installed."""
    ops = pytest.importorskip("torchvision.ops")
    for seed in range(50):
        t_cls, s_cls, t_boxes, s_boxes = _random_gi_case(seed)
        scores, boxes = _ref_gi_boxes(t_cls, s_cls, t_boxes, s_boxes)
        expected = ops.nms(torch.tensor(boxes, dtype=torch.float32), torch.tensor(scores, dtype=torch.float32), 0.3)
        assert gi_region(t_cls, s_cls, t_boxes, s_boxes).tolist() == expected[:10].tolist(), seed

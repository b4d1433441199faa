import torch

from ld.ops.box_ops import box_iou, diou_matrix, distances_to_boxes, prior_centers


def test_iou_of_half_overlapping_squares():
    a = torch.tensor([[0.0, 0.0, 4.0, 4.0]])
    b = torch.tensor([[2.0, 0.0, 6.0, 4.0], [10.0, 10.0, 12.0, 12.0]])
    torch.testing.assert_close(box_iou(a, b), torch.tensor([[8 / 24, 0.0]]))


def test_diou_is_iou_minus_normalised_centre_distance():
    a = torch.tensor([[0.0, 0.0, 4.0, 4.0]])
    b = torch.tensor([[2.0, 0.0, 6.0, 4.0]])
    # rho^2 = 2^2, enclosing box 6 x 4: c^2 = 52
    torch.testing.assert_close(diou_matrix(a, b), torch.tensor([[8 / 24 - 4 / 52]]))
    torch.testing.assert_close(diou_matrix(a, a), torch.tensor([[1.0]]))


def test_upstream_vlr_overlap_divides_by_the_first_box_area():
    anchor = torch.tensor([[0.0, 0.0, 2.0, 2.0]])  # inside the gt: intersection / anchor area = 1
    gt = torch.tensor([[0.0, 0.0, 4.0, 4.0]])
    # rho^2 = 2, c^2 = 32
    torch.testing.assert_close(diou_matrix(anchor, gt, denominator="first"), torch.tensor([[1 - 2 / 32]]))
    torch.testing.assert_close(diou_matrix(anchor, gt), torch.tensor([[4 / 16 - 2 / 32]]))


def test_half_precision_is_computed_in_float32():
    a = torch.tensor([[0.0, 0.0, 4.0, 4.0]], dtype=torch.float16)
    out = box_iou(a, a)
    assert out.dtype == torch.float16 and out.item() == 1.0


def test_prior_centres_and_the_decoding_of_distances_take_any_leading_dims():
    anchors = torch.tensor([[[0.0, 0.0, 8.0, 4.0], [8.0, 8.0, 24.0, 16.0]]])  # (1, 2, 4)
    assert prior_centers(anchors).tolist() == [[[4.0, 2.0], [16.0, 12.0]]]
    points = torch.tensor([[3.0, 5.0]])
    assert prior_centers(points) is points  # FCOS's points are their own centres
    distances = torch.tensor([[[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0]]])  # left, top, right, bottom
    assert distances_to_boxes(prior_centers(anchors), distances).tolist() == [[[3.0, 0.0, 7.0, 6.0],
                                                                               [16.0, 12.0, 16.0, 12.0]]]
    assert torch.equal(distances_to_boxes(prior_centers(anchors), distances)[0],
                       distances_to_boxes(prior_centers(anchors[0]), distances[0]))


def _random_boxes(gen, n, dtype):
    xy = torch.rand(n, 2, generator=gen, dtype=torch.float64) * 100
    wh = torch.rand(n, 2, generator=gen, dtype=torch.float64) * 40 + 0.5
    return torch.cat([xy, xy + wh], 1).to(dtype)


def test_iou_and_first_box_overlap_bitwise_equal_mmdets_bbox_overlaps_on_random_boxes():
    """box_ops' pairwise kernel (also the VLR's and the voting NMS's) against mmdet's own bbox_overlaps:
    the same floats for IoU, and for mmdet's 'iof' (the intersection over the first box's area: the upstream
    VLR's overlap, ``diou_matrix(denominator='first')`` before its penalty)."""
    from mmdet.structures.bbox import bbox_overlaps

    gen = torch.Generator().manual_seed(0)
    for dtype in (torch.float32, torch.float64):
        for n, m in [(1, 1), (7, 3), (50, 40), (300, 9)]:
            a, b = _random_boxes(gen, n, dtype), _random_boxes(gen, m, dtype)
            assert torch.equal(box_iou(a, b), bbox_overlaps(a, b, mode="iou")), (dtype, n, m)
            penalty = diou_matrix(a, b, denominator="first") - bbox_overlaps(a, b, mode="iof")
            assert (penalty <= 0).all() and (penalty >= -1).all()


def test_diou_equals_the_formula_pair_by_pair():
    """DIoU = IoU - (rho^2 / c^2) ** beta, restated for each pair in plain Python floats (float64)."""
    gen = torch.Generator().manual_seed(1)
    a, b = _random_boxes(gen, 20, torch.float64), _random_boxes(gen, 15, torch.float64)
    for beta in (1.0, 0.8):
        got = diou_matrix(a, b, beta=beta)
        for i, (ax1, ay1, ax2, ay2) in enumerate(a.tolist()):
            for j, (bx1, by1, bx2, by2) in enumerate(b.tolist()):
                inter = max(0.0, min(ax2, bx2) - max(ax1, bx1)) * max(0.0, min(ay2, by2) - max(ay1, by1))
                union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
                rho2 = ((ax1 + ax2 - bx1 - bx2) ** 2 + (ay1 + ay2 - by1 - by2) ** 2) / 4
                c2 = (max(ax2, bx2) - min(ax1, bx1)) ** 2 + (max(ay2, by2) - min(ay1, by1)) ** 2
                assert abs(got[i, j].item() - (inter / union - (rho2 / c2) ** beta)) < 1e-12, (i, j, beta)

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

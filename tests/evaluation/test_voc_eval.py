"""VOC metrics: known answers, and mmdet's ``eval_map`` on many random cases."""
import itertools

import numpy as np
import pytest

from ld.evaluation.voc import VOC_IOU_NAMES, VOC_IOU_THRS, evaluate_voc, voc_inputs, voc_table

CLASSES = ["cat", "dog"]


def _gt(boxes, labels, ignore_boxes=(), ignore_labels=()):
    return {"bboxes": np.array(boxes, dtype=np.float32).reshape(-1, 4),
            "labels": np.array(labels, dtype=np.int64),
            "bboxes_ignore": np.array(ignore_boxes, dtype=np.float32).reshape(-1, 4),
            "labels_ignore": np.array(ignore_labels, dtype=np.int64)}


def _dets(per_class, num_classes=2):
    """{class: [(x1, y1, x2, y2, score), ...]} -> the per-class list of (D, 5) arrays of one image."""
    return [np.array(per_class.get(c, []), dtype=np.float32).reshape(-1, 5) for c in range(num_classes)]


def _perfect(gt):
    return [_dets({c: [[*b, 0.9] for b, lab in zip(g["bboxes"], g["labels"]) if lab == c] for c in range(2)})
            for g in gt]


@pytest.fixture
def two_images():
    return [_gt([[10, 10, 40, 40], [50, 50, 90, 70]], [0, 1]), _gt([[5, 60, 25, 90]], [0])]


def test_perfect_detections_score_one_everywhere(two_images):
    res = evaluate_voc(two_images, _perfect(two_images), CLASSES)
    assert res["mAP50_voc07_11pt"] == 1.0 and res["mAP50_area"] == 1.0
    assert res["AP"] == 1.0 and res["AP50"] == 1.0 and res["AP75"] == 1.0
    assert list(res["AP_by_iou_voc07_11pt"]) == list(VOC_IOU_NAMES) == [f"AP{k}" for k in range(50, 100, 5)]
    assert all(v == 1.0 for v in res["AP_by_iou_voc07_11pt"].values())
    assert res["per_class"] == [{"class": "cat", "gts": 2, "dets": 2, "recall": 1.0, "ap": 1.0},
                                {"class": "dog", "gts": 1, "dets": 1, "recall": 1.0, "ap": 1.0}]


def test_result_keys_are_named_and_plain_floats_in_unit_range(two_images):
    res = evaluate_voc(two_images, _perfect(two_images), CLASSES)
    assert set(res) == {"per_class", "mAP50_voc07_11pt", "mAP50_area", "AP_by_iou_voc07_11pt", "AP", "AP50", "AP75"}
    scalars = [res[k] for k in ("mAP50_voc07_11pt", "mAP50_area", "AP", "AP50", "AP75")]
    scalars += list(res["AP_by_iou_voc07_11pt"].values()) + [r[k] for r in res["per_class"] for k in ("recall", "ap")]
    assert all(type(v) is float and 0.0 <= v <= 1.0 for v in scalars)
    assert all(type(r["gts"]) is int and type(r["dets"]) is int for r in res["per_class"])


def test_no_detections_give_zero(two_images):
    res = evaluate_voc(two_images, [_dets({}) for _ in two_images], CLASSES)
    assert res["mAP50_voc07_11pt"] == 0.0 and res["mAP50_area"] == 0.0 and res["AP"] == 0.0
    assert all(v == 0.0 for v in res["AP_by_iou_voc07_11pt"].values())
    rows = [(r["gts"], r["dets"], r["recall"], r["ap"]) for r in res["per_class"]]
    assert rows == [(2, 0, 0.0, 0.0), (1, 0, 0.0, 0.0)]


def test_one_class_found_the_other_missed_gives_half(two_images):
    dets = [[d[0], np.empty((0, 5), np.float32)] for d in _perfect(two_images)]  # drop every dog detection
    res = evaluate_voc(two_images, dets, CLASSES)
    assert res["mAP50_voc07_11pt"] == 0.5 and res["mAP50_area"] == 0.5 and res["AP"] == 0.5
    assert [r["ap"] for r in res["per_class"]] == [1.0, 0.0]


def test_iou_058_counts_at_ap50_ap55_only():
    # legacy (+1) widths: gt 100x100, det 100x58, inside it -> IoU = 5800 / 10000 = 0.58
    gt = [_gt([[0, 0, 99, 99]], [0])]
    res = evaluate_voc(gt, [_dets({0: [[0, 0, 99, 57, 0.9]]})], CLASSES)
    expected = {name: (1.0 if name in ("AP50", "AP55") else 0.0) for name in VOC_IOU_NAMES}
    assert res["AP_by_iou_voc07_11pt"] == expected
    assert res["AP"] == pytest.approx(2 / 10)  # mean of 1, 1, 0 x 8
    assert res["AP50"] == 1.0 and res["AP75"] == 0.0
    assert res["mAP50_voc07_11pt"] == 1.0 and res["mAP50_area"] == 1.0


def test_legacy_coordinates_change_the_iou():
    # gt [0,0,5,5], det [0,0,5,3]: legacy IoU = (6*4)/(6*6) = 0.667, plain IoU = (5*3)/(5*5) = 0.6
    gt, dets = [_gt([[0, 0, 5, 5]], [0])], [_dets({0: [[0, 0, 5, 3, 0.9]]})]
    legacy = evaluate_voc(gt, dets, CLASSES)["AP_by_iou_voc07_11pt"]
    plain = evaluate_voc(gt, dets, CLASSES, use_legacy_coordinate=False)["AP_by_iou_voc07_11pt"]
    assert legacy["AP65"] == 1.0 and legacy["AP70"] == 0.0
    assert plain["AP55"] == 1.0 and plain["AP65"] == 0.0


def test_11point_and_area_ap_differ_on_hand_made_pr_curve():
    # 2 gts; detections by score: TP, FP, TP -> (recall, precision) = (.5, 1), (.5, .5), (1, 2/3)
    gt = [_gt([[0, 0, 9, 9], [20, 20, 29, 29]], [0, 0])]
    dets = [_dets({0: [[0, 0, 9, 9, 0.9], [50, 50, 59, 59, 0.8], [20, 20, 29, 29, 0.7]]})]
    res = evaluate_voc(gt, dets, CLASSES)
    # 11 points: recall >= 0, .1, ..., .5 -> max precision 1 (6 points); .6 ... 1.0 -> 2/3 (5 points)
    ap_11pt = (6 * 1 + 5 * 2 / 3) / 11
    # area under the monotone envelope: recall 0 -> .5 at precision 1, .5 -> 1 at precision 2/3
    ap_area = 0.5 * 1 + 0.5 * 2 / 3
    assert ap_11pt == pytest.approx(0.848485, abs=1e-6) and ap_area == pytest.approx(0.833333, abs=1e-6)
    cat = res["per_class"][0]
    assert cat == {"class": "cat", "gts": 2, "dets": 3, "recall": 1.0, "ap": pytest.approx(ap_11pt, abs=1e-6)}
    # dog has no gt: its row stays (ap 0) but the mean is over classes with gt, as in mmdet
    assert res["per_class"][1]["gts"] == 0 and res["per_class"][1]["ap"] == 0.0
    assert res["mAP50_voc07_11pt"] == pytest.approx(ap_11pt, abs=1e-6)
    assert res["mAP50_area"] == pytest.approx(ap_area, abs=1e-6)


def test_difficult_objects_are_neither_tp_nor_fn():
    normal, difficult = [0, 0, 9, 9], [30, 30, 49, 49]
    gt = [_gt([normal], [0], [difficult], [0])]
    # a detection on the difficult object, scored above the true positive: not a false positive
    res = evaluate_voc(gt, [_dets({0: [[*difficult, 0.95], [*normal, 0.9]]})], CLASSES)
    assert res["per_class"][0] == {"class": "cat", "gts": 1, "dets": 2, "recall": 1.0, "ap": 1.0}
    # the difficult object left undetected: not a miss
    res = evaluate_voc(gt, [_dets({0: [[*normal, 0.9]]})], CLASSES)
    assert res["per_class"][0]["gts"] == 1 and res["per_class"][0]["recall"] == 1.0 and res["AP"] == 1.0
    # the same object as an ordinary gt would be a miss
    res = evaluate_voc([_gt([normal, difficult], [0, 0])], [_dets({0: [[*normal, 0.9]]})], CLASSES)
    assert res["per_class"][0]["recall"] == 0.5 and res["mAP50_area"] == 0.5


def test_recall_landing_on_an_11_point_threshold_counts_as_mmdet_counts_it():
    """5 ground truths, detections ranked TP TP TP FP TP TP: recall 3/5 is 0.6 in float64, just below
    np.arange's 0.6000000000000001, so the threshold 0.6 takes the precision 5/6 of recall 1.0, not 1.0
    (mmdet: (6 * 1 + 5 * 5/6) / 11 = 0.924242; a float32 recall would give 0.939394)."""
    boxes = [[10.0 * k, 0, 10.0 * k + 8, 8] for k in range(5)]
    gt = [_gt(boxes, [0] * 5)]
    ranked = [boxes[0], boxes[1], boxes[2], [200, 200, 208, 208], boxes[3], boxes[4]]
    dets = [_dets({0: [[*b, 1.0 - 0.1 * i] for i, b in enumerate(ranked)]})]
    res = evaluate_voc(gt, dets, CLASSES)
    assert res["mAP50_voc07_11pt"] == pytest.approx((6 + 5 * 5 / 6) / 11, abs=1e-6) == 0.924242
    assert res["mAP50_area"] == pytest.approx(0.6 * 1 + 0.4 * 5 / 6, abs=1e-6)  # the precision envelope


def _random_case(rng, num_classes=3):
    """Images with 0-6 objects (some difficult), each found with probability 0.8 at a jitter of 0, 1
    or 4 px, plus up to 2 false positives per class; scores from a few values (ties); some images
    without ground truth or detections. Counts of 5 make recalls land on the 11-point thresholds."""
    gt, dets = [], []
    for _ in range(int(rng.integers(1, 7))):
        n = int(rng.choice([0, 1, 5, 5, 6]))
        xy = rng.uniform(0, 80, (n, 2))
        boxes = np.hstack([xy, xy + rng.uniform(4, 30, (n, 2))]).round(int(rng.integers(0, 3)))
        labels = rng.integers(0, num_classes, n)
        difficult = rng.uniform(size=n) < 0.2
        gt.append(_gt(boxes[~difficult], labels[~difficult], boxes[difficult], labels[difficult]))
        img = []
        for c in range(num_classes):
            own = boxes[(labels == c) & (rng.uniform(size=n) < 0.8)]
            own = own + rng.normal(0, rng.choice([0.0, 1.0, 4.0]), own.shape)
            noise = np.hstack([rng.uniform(0, 80, (2, 2)), rng.uniform(85, 110, (2, 2))])[:int(rng.integers(0, 3))]
            cls = np.vstack([own, noise])
            scores = rng.choice([0.3, 0.5, 0.5, 0.9], (len(cls), 1))
            img.append(np.hstack([cls, scores]).astype(np.float32))
        dets.append(img)
    return gt, dets


class _InlinePool:
    """``multiprocessing.Pool``'s two calls that ``eval_map`` makes, run in this process: the same
    matching functions on the same arguments, without forking this test's process twice a call."""

    def __init__(self, processes):
        pass

    def starmap(self, func, iterable):
        return list(itertools.starmap(func, iterable))

    def close(self):
        pass


@pytest.mark.parametrize("legacy", [True, False])
def test_equals_mmdet_eval_map_at_every_iou_on_random_cases(legacy, monkeypatch):
    """Every number against mmdet's eval_map itself, called as mmdet's VOCMetric calls it (its pool
    inline: the pipeline tests run the real one)."""
    from mmdet.evaluation.functional import eval_map, mean_ap

    monkeypatch.setattr(mean_ap, "Pool", _InlinePool)

    rng = np.random.default_rng(7)
    checked_nonzero = 0
    for _ in range(25):
        gt, dets = _random_case(rng)
        res = evaluate_voc(gt, dets, ["a", "b", "c"], use_legacy_coordinate=legacy, nproc=1)
        for name, thr in zip(VOC_IOU_NAMES, VOC_IOU_THRS):
            expected, per_class = eval_map(dets, gt, iou_thr=thr, eval_mode="11points", logger="silent",
                                           use_legacy_coordinate=legacy, nproc=1)
            assert res["AP_by_iou_voc07_11pt"][name] == round(expected, 6)
            if thr == 0.5:
                assert [r["ap"] for r in res["per_class"]] == [round(float(r["ap"]), 6) for r in per_class]
                assert [r["gts"] for r in res["per_class"]] == [int(r["num_gts"]) for r in per_class]
                assert [r["dets"] for r in res["per_class"]] == [int(r["num_dets"]) for r in per_class]
        area, _ = eval_map(dets, gt, iou_thr=0.5, eval_mode="area", logger="silent",
                           use_legacy_coordinate=legacy, nproc=1)
        assert res["mAP50_area"] == round(area, 6)
        assert res["AP"] == pytest.approx(np.mean(list(res["AP_by_iou_voc07_11pt"].values())), abs=1e-6)
        checked_nonzero += 0 < res["AP"] < 1
    assert checked_nonzero >= 10  # the cases are not all trivial


def test_voc_inputs_convert_coco_ground_truth_and_results_alike():
    coco = {"images": [{"id": 7, "file_name": "a.jpg"}, {"id": 3, "file_name": "b.jpg"}],
            "categories": [{"id": 5, "name": "dog"}, {"id": 2, "name": "cat"}],
            "annotations": [{"id": 1, "image_id": 3, "category_id": 5, "bbox": [10, 20, 30, 40], "iscrowd": 0},
                            {"id": 2, "image_id": 3, "category_id": 2, "bbox": [1, 2, 3, 4], "iscrowd": 1}]}
    records = [{"image_id": 3, "category_id": 5, "bbox": [10, 20, 30, 40], "score": 0.5}]
    gt, dets, names = voc_inputs(coco, records)
    assert names == ["cat", "dog"]  # category-id order
    assert gt[0]["bboxes"].shape == (0, 4) and dets[0][0].shape == dets[0][1].shape == (0, 5)
    np.testing.assert_array_equal(gt[1]["bboxes"], [[10, 20, 40, 60]])
    np.testing.assert_array_equal(gt[1]["labels"], [1])
    np.testing.assert_array_equal(gt[1]["bboxes_ignore"], [[1, 2, 4, 6]])  # iscrowd (VOC difficult): ignored
    np.testing.assert_array_equal(gt[1]["labels_ignore"], [0])
    np.testing.assert_allclose(dets[1][1], [[10, 20, 40, 60, 0.5]])
    res = evaluate_voc(gt, dets, names)
    assert res["AP"] == 1.0 and [r["gts"] for r in res["per_class"]] == [0, 1]


def test_voc_table_has_class_rows_and_map_row(two_images):
    res = evaluate_voc(two_images, _perfect(two_images), CLASSES)
    df = voc_table(res)
    assert list(df.columns) == ["class", "gts", "dets", "recall", "ap"]
    assert list(df["class"]) == ["cat", "dog", "mAP"]
    assert list(df["gts"][:2]) == [2, 1] and df["gts"].isna().tolist() == [False, False, True]
    assert df["ap"].iloc[-1] == res["mAP50_voc07_11pt"]


def test_inconsistent_inputs_are_rejected(two_images):
    with pytest.raises(ValueError, match="gt has 2 images but dets has 1"):
        evaluate_voc(two_images, [_dets({})], CLASSES)
    with pytest.raises(ValueError, match="expected one per class"):
        evaluate_voc(two_images, [_dets({}, 3), _dets({}, 3)], CLASSES)
    with pytest.raises(ValueError, match=r"labels outside \[0, 2\)"):
        evaluate_voc([_gt([[0, 0, 1, 1]], [2])], [_dets({})], CLASSES)



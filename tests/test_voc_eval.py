import numpy as np
import pytest

from ld.errors import BadFileError, MissingFileError
from ld.evaluation.voc import VOC_IOU_NAMES, evaluate_voc, load_voc_annotations, voc_table

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


def test_matches_mmdet_eval_map():
    from mmdet.evaluation.functional import eval_map

    rng = np.random.default_rng(0)
    gt, dets = [], []
    for _ in range(3):
        xy = rng.uniform(0, 80, (6, 2))
        boxes = np.hstack([xy, xy + rng.uniform(8, 30, (6, 2))]).astype(np.float32)
        labels = rng.integers(0, 3, 6)
        gt.append(_gt(boxes[:5], labels[:5], boxes[5:], labels[5:]))
        img = []
        for c in range(3):
            own = boxes[labels == c] + rng.normal(0, 3, (int((labels == c).sum()), 4))
            noise = np.hstack([rng.uniform(0, 80, (2, 2)), rng.uniform(90, 110, (2, 2))])
            cls = np.vstack([own, noise]).astype(np.float32)
            img.append(np.hstack([cls, rng.uniform(0, 1, (len(cls), 1))]).astype(np.float32))
        dets.append(img)
    res = evaluate_voc(gt, dets, ["a", "b", "c"])
    for key, thr, mode in (("mAP50_voc07_11pt", 0.5, "11points"), ("mAP50_area", 0.5, "area")):
        expected, per_class = eval_map(dets, gt, iou_thr=thr, eval_mode=mode, use_legacy_coordinate=True,
                                       logger="silent", nproc=1)
        assert res[key] == pytest.approx(expected, abs=1e-6)
    assert [r["ap"] for r in res["per_class"]] != [0.0, 0.0, 0.0]
    assert [r["gts"] for r in res["per_class"]] == [int(r["num_gts"]) for r in per_class]
    expected75, _ = eval_map(dets, gt, iou_thr=0.75, eval_mode="11points", use_legacy_coordinate=True,
                             logger="silent", nproc=1)
    assert res["AP75"] == pytest.approx(expected75, abs=1e-6)


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


# --- load_voc_annotations ----------------------------------------------------------------------

def _xml(objects):
    parts = ["<annotation><filename>x.jpg</filename><size><width>120</width><height>100</height></size>"]
    for name, box, difficult in objects:
        diff = "" if difficult is None else f"<difficult>{difficult}</difficult>"
        coords = "".join(f"<{t}>{v}</{t}>" for t, v in zip(("xmin", "ymin", "xmax", "ymax"), box))
        parts.append(f"<object><name>{name}</name><pose>Unspecified</pose>{diff}<bndbox>{coords}</bndbox></object>")
    return "".join(parts) + "</annotation>\n"


@pytest.fixture
def voc_root(tmp_path):
    (tmp_path / "ImageSets" / "Main").mkdir(parents=True)
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "ImageSets" / "Main" / "val.txt").write_text("000001\n000002\n\n")
    (tmp_path / "Annotations" / "000001.xml").write_text(
        _xml([("cat", (11, 21, 50, 60), 0), ("dog", (5, 5, 15, 16), 1)]))
    (tmp_path / "Annotations" / "000002.xml").write_text(
        _xml([("dog", (1, 1, 100, 80), None), ("cat", (30, 40, 70, 90), 0)]))
    return tmp_path


def test_load_voc_annotations_reads_boxes_labels_and_difficult(voc_root):
    first, second = load_voc_annotations(voc_root, "val", CLASSES, minus_one=False)
    np.testing.assert_array_equal(first["bboxes"], [[11, 21, 50, 60]])
    np.testing.assert_array_equal(first["labels"], [0])
    np.testing.assert_array_equal(first["bboxes_ignore"], [[5, 5, 15, 16]])
    np.testing.assert_array_equal(first["labels_ignore"], [1])
    np.testing.assert_array_equal(second["bboxes"], [[1, 1, 100, 80], [30, 40, 70, 90]])
    np.testing.assert_array_equal(second["labels"], [1, 0])
    assert second["bboxes_ignore"].shape == (0, 4) and second["labels_ignore"].shape == (0,)
    assert first["bboxes"].dtype == np.float32 and first["labels"].dtype == np.int64


def test_load_voc_annotations_subtracts_one_like_mmdet_by_default(voc_root):
    first, second = load_voc_annotations(voc_root, "val", CLASSES)
    np.testing.assert_array_equal(first["bboxes"], [[10, 20, 49, 59]])
    np.testing.assert_array_equal(first["bboxes_ignore"], [[4, 4, 14, 15]])
    np.testing.assert_array_equal(second["bboxes"], [[0, 0, 99, 79], [29, 39, 69, 89]])


def test_loaded_ground_truth_evaluates(voc_root):
    gt = load_voc_annotations(voc_root, "val", CLASSES)
    res = evaluate_voc(gt, _perfect(gt), CLASSES)
    assert res["AP"] == 1.0
    assert [r["gts"] for r in res["per_class"]] == [2, 1]  # the difficult dog is not counted


def test_unknown_class_names_the_file(voc_root):
    (voc_root / "Annotations" / "000002.xml").write_text(_xml([("horse", (1, 1, 10, 10), 0)]))
    with pytest.raises(BadFileError, match=r"000002\.xml: object 0 has class 'horse'"):
        load_voc_annotations(voc_root, "val", CLASSES)


def test_missing_xml_names_the_file(voc_root):
    (voc_root / "Annotations" / "000002.xml").unlink()
    with pytest.raises(MissingFileError, match=r"Annotations/000002\.xml does not exist.*val\.txt"):
        load_voc_annotations(voc_root, "val", CLASSES)


def test_missing_split_file_names_the_file(voc_root):
    with pytest.raises(MissingFileError, match=r"ImageSets/Main/test\.txt does not exist"):
        load_voc_annotations(voc_root, "test", CLASSES)


@pytest.mark.parametrize("text,message", [
    ("<annotation><object>", r"000001\.xml is not valid XML"),
    (_xml([("cat", ("a", 1, 10, 10), 0)]), r"000001\.xml: object 0 has no numeric <bndbox><xmin>"),
    ("<annotation><object><name>cat</name></object></annotation>", r"000001\.xml: object 0 \(cat\) has no <bndbox>"),
])
def test_malformed_xml_names_the_file(voc_root, text, message):
    (voc_root / "Annotations" / "000001.xml").write_text(text)
    with pytest.raises(BadFileError, match=message):
        load_voc_annotations(voc_root, "val", CLASSES)

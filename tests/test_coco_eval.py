import json

import pytest

from ld.evaluation.coco import COCO_METRICS, evaluate_coco


@pytest.fixture
def gt(tmp_path):
    images = [{"id": i, "file_name": f"{i}.jpg", "width": 100, "height": 100} for i in (1, 2)]
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 30, 30], "area": 900, "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 2, "bbox": [50, 50, 40, 20], "area": 800, "iscrowd": 0},
        {"id": 3, "image_id": 2, "category_id": 1, "bbox": [5, 60, 20, 30], "area": 600, "iscrowd": 0},
    ]
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({"images": images, "annotations": anns,
                                "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}))
    return path, anns


def test_perfect_detections_score_one(gt):
    path, anns = gt
    dets = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.9}
            for a in anns]
    metrics = evaluate_coco(path, dets)
    assert list(metrics) == list(COCO_METRICS)
    assert metrics["AP"] == pytest.approx(1.0) and metrics["AR100"] == pytest.approx(1.0)
    assert metrics["APl"] == -1.0  # no large objects: pycocotools' -1 is kept, not hidden


def test_shifted_boxes_lose_strict_ap_first(gt):
    path, anns = gt
    dets = [{"image_id": a["image_id"], "category_id": a["category_id"],
             "bbox": [a["bbox"][0] + 4, a["bbox"][1], a["bbox"][2], a["bbox"][3]], "score": 0.9} for a in anns]
    metrics = evaluate_coco(path, dets)
    assert metrics["AP50"] == pytest.approx(1.0)
    assert metrics["AP"] < metrics["AP50"]


def test_no_detections_give_zero(gt):
    assert evaluate_coco(gt[0], [])["AP"] == 0.0


def test_results_file_that_is_not_json_is_named(gt, tmp_path):
    bad = tmp_path / "dets.bbox.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=r"dets\.bbox\.json is not a COCO results JSON"):
        evaluate_coco(gt[0], bad)


def test_unknown_image_ids_are_an_error(gt):
    with pytest.raises(ValueError, match="image ids not in"):
        evaluate_coco(gt[0], [{"image_id": 99, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1.0}])


def test_faster_coco_eval_gives_pycocotools_numbers(gt):
    path, anns = gt
    gen = __import__("random").Random(0)
    dets = [{"image_id": a["image_id"], "category_id": c, "score": gen.random(),
             "bbox": [a["bbox"][0] + gen.uniform(-6, 6), a["bbox"][1] + gen.uniform(-6, 6), a["bbox"][2], a["bbox"][3]]}
            for a in anns for c in (1, 2) for _ in range(3)]
    reference = evaluate_coco(path, dets)
    assert 0 < reference["AP"] < 1
    assert evaluate_coco(path, dets, backend="faster_coco_eval") == pytest.approx(reference, abs=1e-6)
    with pytest.raises(ValueError, match="unknown COCO evaluation backend"):
        evaluate_coco(path, dets, backend="nope")

import json

import pytest

from ld.evaluation.coco import COCO_METRICS, evaluate_coco
from tests.conftest import COCO_ANNS


def test_perfect_detections_score_one(coco_gt):
    path, anns = coco_gt, COCO_ANNS
    dets = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.9}
            for a in anns]
    metrics = evaluate_coco(path, dets)
    assert list(metrics) == list(COCO_METRICS)
    assert metrics["AP"] == pytest.approx(1.0) and metrics["AR100"] == pytest.approx(1.0)
    assert metrics["APl"] == -1.0  # no large objects: pycocotools' -1 is kept, not hidden


def test_shifted_boxes_lose_strict_ap_first(coco_gt):
    path, anns = coco_gt, COCO_ANNS
    dets = [{"image_id": a["image_id"], "category_id": a["category_id"],
             "bbox": [a["bbox"][0] + 4, a["bbox"][1], a["bbox"][2], a["bbox"][3]], "score": 0.9} for a in anns]
    metrics = evaluate_coco(path, dets)
    assert metrics["AP50"] == pytest.approx(1.0)
    assert metrics["AP"] < metrics["AP50"]


@pytest.mark.parametrize("backend", ["pycocotools", "faster_coco_eval"])
def test_no_detections_give_zero_where_there_is_ground_truth_and_minus_one_where_there_is_none(coco_gt, backend):
    metrics = evaluate_coco(coco_gt, [], backend=backend)
    # every object is small (area < 32^2): no medium or large ground truth, so -1 there, as pycocotools
    assert metrics == {**{k: 0.0 for k in COCO_METRICS}, "APm": -1.0, "APl": -1.0}


def _random_coco(rng, path):
    """A COCO file of 1-5 images with 0-6 objects of all sizes (some crowd), and detections around them."""
    images, anns, dets = [], [], []
    for i in range(1, int(rng.integers(1, 6)) + 1):
        images.append({"id": i, "file_name": f"{i}.jpg", "width": 640, "height": 480})
        for _ in range(int(rng.integers(0, 7))):
            w, h = rng.choice([8, 40, 150]) * rng.uniform(0.5, 1.5, 2)
            x, y = rng.uniform(0, 400), rng.uniform(0, 300)
            cat = int(rng.integers(1, 4))
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": cat, "bbox": [x, y, w, h],
                         "area": w * h, "iscrowd": int(rng.uniform() < 0.1)})
            for _ in range(int(rng.integers(0, 3))):
                jitter = rng.normal(0, 0.1 * min(w, h), 4)
                dets.append({"image_id": i, "category_id": cat if rng.uniform() < 0.8 else int(rng.integers(1, 4)),
                             "bbox": [x + jitter[0], y + jitter[1], max(1.0, w + jitter[2]), max(1.0, h + jitter[3])],
                             "score": float(rng.choice([0.2, 0.5, 0.9]))})
    path.write_text(json.dumps({"images": images, "annotations": anns,
                                "categories": [{"id": c, "name": f"c{c}"} for c in (1, 2, 3)]}))
    return dets


def test_equals_pycocotools_cocoeval_called_directly_on_random_cases(tmp_path):
    import contextlib
    import io

    import numpy as np
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    rng = np.random.default_rng(3)
    for case in range(20):
        path = tmp_path / f"gt{case}.json"
        dets = _random_coco(rng, path)
        metrics = evaluate_coco(path, dets)
        if not dets:
            continue
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(str(path))
            ev = COCOeval(coco, coco.loadRes(dets), iouType="bbox")
            ev.evaluate(), ev.accumulate(), ev.summarize()
        assert list(metrics.values()) == [round(float(v), 6) for v in ev.stats[:9]]


def test_results_file_that_is_not_json_is_named(coco_gt, tmp_path):
    bad = tmp_path / "dets.bbox.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=r"dets\.bbox\.json is not a COCO results JSON"):
        evaluate_coco(coco_gt, bad)


def test_unknown_image_ids_are_an_error(coco_gt):
    with pytest.raises(ValueError, match="image ids not in"):
        evaluate_coco(coco_gt, [{"image_id": 99, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1.0}])


def test_faster_coco_eval_gives_pycocotools_numbers(coco_gt):
    path, anns = coco_gt, COCO_ANNS
    gen = __import__("random").Random(0)
    dets = [{"image_id": a["image_id"], "category_id": c, "score": gen.random(),
             "bbox": [a["bbox"][0] + gen.uniform(-6, 6), a["bbox"][1] + gen.uniform(-6, 6), a["bbox"][2], a["bbox"][3]]}
            for a in anns for c in (1, 2) for _ in range(3)]
    reference = evaluate_coco(path, dets)
    assert 0 < reference["AP"] < 1
    assert evaluate_coco(path, dets, backend="faster_coco_eval") == pytest.approx(reference, abs=1e-6)
    with pytest.raises(ValueError, match="unknown COCO evaluation backend"):
        evaluate_coco(path, dets, backend="nope")


def test_per_class_ap_is_cocoeval_restricted_to_that_class_on_random_cases(tmp_path):
    """Per class: the AP / AP50 / AP75 of pycocotools run with ``params.catIds = [that class]`` (all
    areas, 100 detections), -1 for a class without ground truth; the overall metrics stay as they were."""
    import contextlib
    import io

    import numpy as np
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    rng = np.random.default_rng(5)
    for case in range(15):
        path = tmp_path / f"gt{case}.json"
        dets = _random_coco(rng, path)
        if not dets:
            continue
        metrics = evaluate_coco(path, dets, per_class=True)
        assert {k: v for k, v in metrics.items() if k != "per_class"} == evaluate_coco(path, dets)
        for row, cat in zip(metrics["per_class"], (1, 2, 3)):
            with contextlib.redirect_stdout(io.StringIO()):
                coco = COCO(str(path))
                ev = COCOeval(coco, coco.loadRes(dets), iouType="bbox")
                ev.params.catIds = [cat]
                ev.evaluate(), ev.accumulate(), ev.summarize()
            assert row == {"class": f"c{cat}", "AP": round(float(ev.stats[0]), 6),
                           "AP50": round(float(ev.stats[1]), 6), "AP75": round(float(ev.stats[2]), 6)}, (case, cat)

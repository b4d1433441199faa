import hashlib
import json
from pathlib import Path

import pytest

from ld.data.check import parse_voc
from ld.data.synth import CLASSES, SynthSpec, render_image, write_dataset

SPEC = SynthSpec(num_train=6, num_val=3, image_size=64, max_objects=4, seed=7)


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    write_dataset(root, SPEC, show_progress=False)
    return root


def test_same_seed_gives_same_bytes(generated, tmp_path):
    write_dataset(tmp_path, SPEC, show_progress=False)
    assert _digests(tmp_path) == _digests(generated)


def test_other_seed_gives_other_images(tmp_path):
    write_dataset(tmp_path, SynthSpec(num_train=6, num_val=3, image_size=64, seed=8), show_progress=False)
    a = (tmp_path / "JPEGImages" / "train_000000.jpg").read_bytes()
    write_dataset(tmp_path / "b", SPEC, show_progress=False)
    assert a != (tmp_path / "b" / "JPEGImages" / "train_000000.jpg").read_bytes()


def test_image_depends_only_on_seed_split_and_index():
    small = SynthSpec(num_train=2, num_val=1, image_size=64, seed=7)
    pixels_a, objects_a = render_image(small, "train", 1)
    pixels_b, objects_b = render_image(SPEC, "train", 1)
    assert (pixels_a == pixels_b).all() and objects_a == objects_b
    pixels_val, _ = render_image(SPEC, "val", 1)
    assert not (pixels_val == pixels_b).all()


def test_coco_json_loads_in_pycocotools(generated):
    from pycocotools.coco import COCO

    for split, count in (("train", SPEC.num_train), ("val", SPEC.num_val)):
        coco = COCO(str(generated / "annotations" / f"instances_{split}.json"))
        assert len(coco.getImgIds()) == count
        assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(CLASSES)
        assert len(coco.getAnnIds()) == sum(len(render_image(SPEC, split, i)[1]) for i in range(count))
        for img in coco.loadImgs(coco.getImgIds()):
            assert (generated / "JPEGImages" / img["file_name"]).is_file()


def test_boxes_lie_inside_images_with_positive_size(generated):
    for split in ("train", "val"):
        data = json.loads((generated / "annotations" / f"instances_{split}.json").read_text())
        for ann in data["annotations"]:
            x, y, w, h = ann["bbox"]
            assert w > 0 and h > 0
            assert 0 <= x and 0 <= y and x + w <= SPEC.image_size + 1e-6 and y + h <= SPEC.image_size + 1e-6
            assert abs(ann["area"] - w * h) < 0.1


def test_voc_tree_matches_coco(generated):
    ids = (generated / "ImageSets" / "Main" / "train.txt").read_text().split()
    assert len(ids) == SPEC.num_train
    coco = json.loads((generated / "annotations" / "instances_train.json").read_text())
    by_file = {img["file_name"]: img["id"] for img in coco["images"]}
    for stem in ids:
        xml = generated / "Annotations" / f"{stem}.xml"
        assert f"<filename>{stem}.jpg</filename>" in xml.read_text()
        parsed, problems = parse_voc(xml, CLASSES)  # the VOC checker's parser: no problem in any file
        assert problems == [] and parsed["width"] == parsed["height"] == SPEC.image_size
        anns = [a for a in coco["annotations"] if a["image_id"] == by_file[f"{stem}.jpg"]]
        assert len(parsed["objects"]) == len(anns)
        for obj, ann in zip(parsed["objects"], anns):
            assert obj["name"] == CLASSES[ann["category_id"] - 1] and not obj["difficult"]
            xmin, ymin, xmax, ymax = obj["bbox"]
            assert all(v == int(v) for v in obj["bbox"])  # whole pixel indices
            assert 1 <= xmin < xmax <= SPEC.image_size and 1 <= ymin < ymax <= SPEC.image_size
            x, y, w, h = ann["bbox"]
            assert abs(xmin - 1 - x) <= 1 and abs(xmax - (x + w)) <= 1


def test_boundaries_are_ambiguous():
    spec = SynthSpec(num_train=40, num_val=1, image_size=96, seed=3)
    objects = [o for i in range(40) for o in render_image(spec, "train", i)[1]]
    widths = [o.edge_width for o in objects]
    assert min(widths) < 1.0 < 2.0 < max(widths)  # crisp and blurred edges both occur
    assert sum(o.occlusion > 0.1 for o in objects) >= 3  # partial occlusion occurs
    assert all(o.occlusion <= spec.max_occlusion for o in objects)
    assert {o.label for o in objects} == set(range(len(CLASSES)))


@pytest.mark.parametrize("field,value", [("num_train", 0), ("image_size", 16), ("max_occlusion", 1.5)])
def test_bad_spec_names_the_field(field, value):
    with pytest.raises(ValueError, match=f"data.{field}"):
        SynthSpec(**{field: value})

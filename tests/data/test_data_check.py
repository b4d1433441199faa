"""`ld data check` on tiny fixtures in the real COCO 2017 and VOCdevkit layouts, with bad records."""
import json

import numpy as np
import pytest
from PIL import Image

from ld.cli import main
from ld.data.check import check_coco, check_voc


def _jpeg(path, size=(32, 24)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), 128, np.uint8)).save(path)


@pytest.fixture
def coco(tmp_path):
    for split in ("train2017", "val2017"):
        for i in (1, 2):
            _jpeg(tmp_path / split / f"{i:012d}.jpg")
        anns = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 10, 10], "area": 100, "iscrowd": 0}]
        (tmp_path / "annotations").mkdir(exist_ok=True)
        (tmp_path / "annotations" / f"instances_{split}.json").write_text(json.dumps({
            "images": [{"id": i, "file_name": f"{i:012d}.jpg", "width": 32, "height": 24} for i in (1, 2)],
            "annotations": anns, "categories": [{"id": 1, "name": "thing"}]}))
    return tmp_path


def test_clean_coco_tree_passes_with_counts(coco):
    report = check_coco(coco, verify_images=True)
    assert report.ok, report.summary()
    assert report.counts["val2017"] == {"images": 2, "annotations": 1, "categories": 1, "bad_images": 0,
                                        "bad_annotations": 0}


def test_coco_bad_records_are_each_named(coco):
    ann = coco / "annotations" / "instances_train2017.json"
    data = json.loads(ann.read_text())
    data["images"].append({"id": 3, "file_name": "000000000003.jpg", "width": 32, "height": 24})  # no file
    data["annotations"] += [
        {"id": 2, "image_id": 1, "category_id": 1, "bbox": [2, 2, 0, 5]},              # zero width
        {"id": 3, "image_id": 1, "category_id": 1, "bbox": [float("nan"), 2, 4, 4]},   # NaN
        {"id": 4, "image_id": 1, "category_id": 1, "bbox": [20, 20, 30, 30]},          # outside 32x24
        {"id": 5, "image_id": 1, "category_id": 7, "bbox": [2, 2, 4, 4]},              # unknown category
        {"id": 6, "image_id": 99, "category_id": 1, "bbox": [2, 2, 4, 4]},             # missing image
    ]
    ann.write_text(json.dumps(data))
    (coco / "train2017" / "000000000002.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (coco / "annotations" / "instances_val2017.json").write_text("{not json")
    problems = "\n".join(check_coco(coco, verify_images=True).problems)
    for expected in ("image id 3 (000000000003.jpg): image file missing", "image id 2 (000000000002.jpg): image "
                     "cannot be decoded", "annotation id 2: box has zero or negative size",
                     "annotation id 3: box has NaN", "annotation id 4: box (20.0, 20.0, 50.0, 50.0) lies outside",
                     "annotation id 5: unknown category id 7", "annotation id 6: refers to image id 99",
                     "instances_val2017.json: not valid JSON"):
        assert expected in problems, expected


def test_coco_missing_annotation_file_and_cli_exit_code(coco, capsys):
    (coco / "annotations" / "instances_val2017.json").unlink()
    assert main(["data", "check", "coco", str(coco)]) == 2
    assert "instances_val2017.json: missing" in capsys.readouterr().err


def _voc_image(base, image_id, objects, size=(32, 24)):
    _jpeg(base / "JPEGImages" / f"{image_id}.jpg", size)
    objs = "".join(f"<object><name>{n}</name><difficult>0</difficult><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
                   f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>" for n, b in objects)
    (base / "Annotations").mkdir(parents=True, exist_ok=True)
    (base / "Annotations" / f"{image_id}.xml").write_text(
        f"<annotation><size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>{objs}</annotation>")


@pytest.fixture
def voc(tmp_path):
    for year, splits in (("VOC2007", ("trainval", "test")), ("VOC2012", ("trainval",))):
        base = tmp_path / "VOCdevkit" / year
        for split in splits:
            ids = [f"{year}_{split}_{i}" for i in (1, 2)]
            for image_id in ids:
                _voc_image(base, image_id, [("dog", (2, 2, 12, 12)), ("person", (5, 3, 20, 20))])
            (base / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
            (base / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return tmp_path


def test_clean_voc_tree_passes_with_counts(voc):
    report = check_voc(voc, verify_images=True)
    assert report.ok, report.summary()
    assert report.counts["VOC2007 test"] == {"images": 2, "objects": 4, "images_with_problems": 0}


def test_voc_bad_records_are_each_named(voc):
    base = voc / "VOCdevkit" / "VOC2007"
    _voc_image(base, "VOC2007_trainval_1", [("dragon", (2, 2, 12, 12)), ("dog", (12, 2, 2, 12)),
                                            ("cat", (2, 2, 40, 12))])
    (base / "Annotations" / "VOC2007_trainval_2.xml").write_text("<annotation><size>")
    (base / "ImageSets" / "Main" / "trainval.txt").write_text("VOC2007_trainval_1\nVOC2007_trainval_2\nlost_one\n")
    (voc / "VOCdevkit" / "VOC2012" / "ImageSets" / "Main" / "trainval.txt").unlink()
    problems = "\n".join(check_voc(voc).problems)
    for expected in ("object 0: unknown class 'dragon'", "object 1 (dog): box has zero or negative size",
                     "object 2 (cat): box (2.0, 2.0, 40.0, 12.0) lies outside the 32.0x24.0 image",
                     "VOC2007_trainval_2.xml: malformed XML", "id lost_one: annotation",
                     "VOC2012/ImageSets/Main/trainval.txt: missing"):
        assert expected in problems, expected

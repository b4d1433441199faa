"""`ld data check` on bad input: each case is a listed problem naming the file, the record and the field, never
a traceback and never a silent pass. Fixtures: the 2-image COCO / VOC trees of tests/data/test_data_check.py."""
import json

import numpy as np
import pytest
from PIL import Image

from ld.cli import main
from ld.data.check import check_coco, check_voc, parse_voc
from tests.data.test_data_check import _jpeg, _voc_image, coco, voc  # noqa: F401  (fixtures)


def _edit(path, change):
    """Rewrite a JSON file with ``change(data)`` applied (it edits ``data`` in place)."""
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _train(root):
    return root / "annotations" / "instances_train2017.json"


def _val(root):
    return root / "annotations" / "instances_val2017.json"


def _problems(report) -> str:
    assert not report.ok
    return "\n".join(report.problems)


def _exif_jpeg(path, orientation, size=(32, 24)):
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(np.full((size[1], size[0], 3), 128, np.uint8)).save(path, exif=exif.tobytes())


def test_good_trees_still_pass_with_and_without_decoding(coco, voc):  # noqa: F811
    for verify in (False, True):
        assert check_coco(coco, verify_images=verify).ok, check_coco(coco, verify_images=verify).summary()
        assert check_voc(voc, verify_images=verify).ok, check_voc(voc, verify_images=verify).summary()
    _exif_jpeg(coco / "train2017" / "000000000001.jpg", 1)  # Orientation 1: stored as displayed
    assert check_coco(coco).ok


@pytest.mark.parametrize("content, what", [("[]", "top level is an array"), ('"images"', "top level is a string"),
                                           ("null", "top level is null"), ("3", "top level is a number")])
def test_coco_top_level_not_an_object(coco, content, what):  # noqa: F811
    _train(coco).write_text(content)
    problems = _problems(check_coco(coco))
    assert f"instances_train2017.json: {what}, not an object with images, annotations and categories" in problems


@pytest.mark.parametrize("key", ["images", "annotations", "categories"])
def test_coco_missing_top_level_list(coco, key):  # noqa: F811
    _edit(_val(coco), lambda d: d.pop(key))
    assert f"instances_val2017.json: no list under ['{key}']" in _problems(check_coco(coco))


@pytest.mark.parametrize("bbox, what", [
    ([2, 2, 10], "'bbox' [2, 2, 10] has 3 values, not 4"),
    (["2", 2, 10, 10], "'bbox' [\"2\", 2, 10, 10] holds values that are not numbers"),
    ([2, None, 10, 10], "'bbox' [2, null, 10, 10] holds values that are not numbers"),
    ([2, True, 10, 10], "'bbox' [2, true, 10, 10] holds values that are not numbers"),
    (None, "'bbox' is null, not a list"),
    ("2 2 10 10", "'bbox' is \"2 2 10 10\", not a list"),
    (..., "no 'bbox'"),
])
def test_coco_malformed_bbox(coco, bbox, what):  # noqa: F811
    def change(data):
        ann = data["annotations"][0]
        if bbox is ...:
            del ann["bbox"]
        else:
            ann["bbox"] = bbox
    _edit(_train(coco), change)
    report = check_coco(coco)
    assert f"instances_train2017.json: annotation id 1: {what}" in _problems(report)
    assert report.counts["train2017"]["bad_annotations"] == 1


@pytest.mark.parametrize("change, what", [
    (lambda a: a.pop("image_id"), "no 'image_id'"),
    (lambda a: a.pop("category_id"), "no 'category_id'"),
    (lambda a: a.update(image_id=99), "refers to image id 99, which is not in the file"),
    (lambda a: a.update(image_id="1"), "refers to image id \"1\", which is not in the file"),
    (lambda a: a.update(category_id=7), "unknown category id 7"),
    (lambda a: a.update(category_id=[1]), "unknown category id [1]"),
    (lambda a: a.pop("area"), "no 'area' (mmdet's training and COCO evaluation read it)"),
])
def test_coco_annotation_without_or_with_unknown_image_and_category(coco, change, what):  # noqa: F811
    _edit(_val(coco), lambda d: change(d["annotations"][0]))
    assert f"instances_val2017.json: annotation id 1: {what}" in _problems(check_coco(coco))


@pytest.mark.parametrize("change, what", [
    (lambda i: i.pop("id"), "images[1] (000000000002.jpg): no 'id'"),
    (lambda i: i.update(id="2"), "images[1] (000000000002.jpg): 'id' is \"2\", not an integer"),
    (lambda i: i.pop("file_name"), "image id 2: no 'file_name'"),
    (lambda i: i.update(file_name=None), "image id 2: 'file_name' is null, not a file name"),
    (lambda i: i.pop("width"), "image id 2 (000000000002.jpg): no 'width'"),
    (lambda i: i.pop("height"), "image id 2 (000000000002.jpg): no 'height'"),
    (lambda i: i.update(width=0), "image id 2 (000000000002.jpg): 'width' is 0, not a positive integer"),
    (lambda i: i.update(height=-24), "image id 2 (000000000002.jpg): 'height' is -24, not a positive integer"),
    (lambda i: i.update(width=32.5), "image id 2 (000000000002.jpg): 'width' is 32.5, not a positive integer"),
    (lambda i: i.update(height="24"), "image id 2 (000000000002.jpg): 'height' is \"24\", not a positive integer"),
])
def test_coco_image_record_fields(coco, change, what):  # noqa: F811
    _edit(_train(coco), lambda d: change(d["images"][1]))
    report = check_coco(coco)
    assert f"instances_train2017.json: {what}" in _problems(report)
    assert report.counts["train2017"]["bad_images"] == 1


def test_coco_image_record_not_an_object(coco):  # noqa: F811
    _edit(_train(coco), lambda d: d["images"].append([3, "000000000003.jpg"]))
    assert "instances_train2017.json: images[2]: is an array, not an object" in _problems(check_coco(coco))


def test_coco_duplicate_image_ids(coco):  # noqa: F811
    _edit(_train(coco), lambda d: d["images"][1].update(id=1))
    report = check_coco(coco)
    assert ("instances_train2017.json: image id 1 (000000000002.jpg): duplicate 'id' (images[0] has it too): COCO "
            "tools keep one of the two images") in _problems(report)
    assert report.counts["train2017"]["bad_images"] == 1


def test_coco_duplicate_annotation_ids(coco):  # noqa: F811
    _edit(_val(coco), lambda d: d["annotations"].append({**d["annotations"][0], "image_id": 2}))
    report = check_coco(coco)
    assert ("instances_val2017.json: annotation id 1: duplicate 'id' (annotations[0] has it too)"
            in _problems(report))
    assert report.counts["val2017"]["bad_annotations"] == 1


@pytest.mark.parametrize("extra, what", [
    ({"id": 1, "name": "other"}, "category id 1: duplicate 'id' (categories[0] has it too)"),
    ({"id": 2, "name": "thing"}, "category id 2: duplicate 'name' \"thing\" (categories[0] has it too)"),
    ({"id": 2}, "category id 2: no 'name'"),
    ({"name": "other"}, "categories[1]: no 'id'"),
])
def test_coco_bad_or_duplicate_categories(coco, extra, what):  # noqa: F811
    for ann in (_train(coco), _val(coco)):  # both files alike: the problem is the record, not a difference
        _edit(ann, lambda d: d["categories"].append(extra))
    problems = _problems(check_coco(coco))
    assert f"instances_train2017.json: {what}" in problems and f"instances_val2017.json: {what}" in problems
    assert "different 'categories'" not in problems


def test_coco_no_categories(coco):  # noqa: F811
    _edit(_val(coco), lambda d: d.update(categories=[]))
    problems = _problems(check_coco(coco))
    assert "instances_val2017.json: no categories" in problems
    assert "instances_val2017.json: annotation id 1: unknown category id 1" in problems


@pytest.mark.parametrize("val_categories, what", [
    ([{"id": 1, "name": "thing"}, {"id": 2, "name": "other"}], "only in instances_val2017.json: 2 'other'"),
    ([{"id": 1, "name": "stuff"}], "id 1 is 'thing' in instances_train2017.json but 'stuff' in instances_val2017"),
    ([{"id": 2, "name": "thing"}], "only in instances_train2017.json: 1 'thing'; only in instances_val2017.json: "
                                   "2 'thing'"),
])
def test_coco_train_and_val_with_different_categories(coco, val_categories, what):  # noqa: F811
    _edit(_val(coco), lambda d: d.update(categories=val_categories))
    problems = _problems(check_coco(coco))
    assert f"instances_train2017.json and {_val(coco)}: different 'categories' ({what}" in problems
    assert "same class would get different labels in training and test" in problems


def test_coco_train_and_val_with_categories_in_a_different_order(coco):  # noqa: F811
    cats = [{"id": 1, "name": "thing"}, {"id": 2, "name": "other"}]
    _edit(_train(coco), lambda d: d.update(categories=cats))
    _edit(_val(coco), lambda d: d.update(categories=cats[::-1]))
    assert (f"{_train(coco)} and {_val(coco)}: different 'categories' (the same categories in a different order)"
            in _problems(check_coco(coco)))


@pytest.mark.parametrize("verify", [False, True])
def test_coco_size_in_json_differs_from_the_image_file(coco, verify):  # noqa: F811
    _edit(_train(coco), lambda d: d["images"][0].update(width=40))
    _jpeg(coco / "val2017" / "000000000002.jpg", size=(24, 32))  # the file is portrait, the record landscape
    problems = _problems(check_coco(coco, verify_images=verify))
    assert ("instances_train2017.json: image id 1 (000000000001.jpg): image file is 32x24 pixels but the record "
            "says 40x24 (width x height)") in problems
    assert ("instances_val2017.json: image id 2 (000000000002.jpg): image file is 24x32 pixels but the record "
            "says 32x24") in problems


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_coco_exif_rotated_jpeg(coco, orientation):  # noqa: F811
    _exif_jpeg(coco / "val2017" / "000000000001.jpg", orientation)
    report = check_coco(coco)
    problems = _problems(report)
    assert f"instances_val2017.json: image id 1 (000000000001.jpg): EXIF Orientation is {orientation}" in problems
    assert "rotate the pixels and drop the tag (e.g. `exiftran -ai FILE`" in problems
    assert report.counts["val2017"]["bad_images"] == 1


def test_cli_reports_bad_coco_input_and_exits_2_without_traceback(coco, capsys):  # noqa: F811
    _edit(_train(coco), lambda d: d["images"][1].update(id=1))
    _edit(_val(coco), lambda d: d["annotations"][0].update(bbox=[1, 2, 3]))
    assert main(["data", "check", "coco", str(coco), "--verify-images"]) == 2
    err = capsys.readouterr().err
    assert "image id 1 (000000000002.jpg): duplicate 'id'" in err
    assert "annotation id 1: 'bbox' [1, 2, 3] has 3 values, not 4" in err
    assert "Traceback" not in err
    _train(coco).write_text("[]")
    assert main(["data", "check", "coco", str(coco)]) == 2
    err = capsys.readouterr().err
    assert "instances_train2017.json: top level is an array" in err and "Traceback" not in err


def test_voc_split_with_no_objects(voc):  # noqa: F811
    base = voc / "VOCdevkit" / "VOC2007"
    for i in (1, 2):
        _voc_image(base, f"VOC2007_test_{i}", [])
    report = check_voc(voc)
    assert (f"{base / 'ImageSets' / 'Main' / 'test.txt'}: its 2 images hold no usable objects (0 in all"
            in _problems(report))
    assert report.counts["VOC2007 test"]["objects"] == 0


def test_voc_split_with_only_difficult_objects(voc):  # noqa: F811
    base = voc / "VOCdevkit" / "VOC2012"
    for i in (1, 2):
        xml = base / "Annotations" / f"VOC2012_trainval_{i}.xml"
        xml.write_text(xml.read_text().replace("<difficult>0</difficult>", "<difficult>1</difficult>"))
    assert "VOC2012/ImageSets/Main/trainval.txt: its 2 images hold no usable objects (4 in all" in \
        _problems(check_voc(voc))


def test_voc_id_listed_twice_in_an_imagesets_file(voc):  # noqa: F811
    ids_file = voc / "VOCdevkit" / "VOC2007" / "ImageSets" / "Main" / "trainval.txt"
    ids_file.write_text("VOC2007_trainval_1\nVOC2007_trainval_2\nVOC2007_trainval_1\n")
    report = check_voc(voc)
    assert f"{ids_file}: id VOC2007_trainval_1: listed 2 times" in _problems(report)
    assert report.counts["VOC2007 trainval"] == {"images": 2, "objects": 4, "images_with_problems": 0}


@pytest.mark.parametrize("text, difficult", [(" 1 ", True), ("\n  1\n", True), (" 0 ", False), ("1", True)])
def test_voc_difficult_with_whitespace_counts(voc, text, difficult):  # noqa: F811
    xml = voc / "VOCdevkit" / "VOC2007" / "Annotations" / "VOC2007_test_1.xml"
    xml.write_text(xml.read_text().replace("<difficult>0</difficult>", f"<difficult>{text}</difficult>", 1))
    parsed, problems = parse_voc(xml)
    assert problems == [] and [o["difficult"] for o in parsed["objects"]] == [difficult, False]
    assert check_voc(voc).ok


def test_voc_without_difficult_is_not_difficult(voc):  # noqa: F811
    xml = voc / "VOCdevkit" / "VOC2007" / "Annotations" / "VOC2007_test_1.xml"
    xml.write_text(xml.read_text().replace("<difficult>0</difficult>", ""))
    parsed, problems = parse_voc(xml)
    assert problems == [] and [o["difficult"] for o in parsed["objects"]] == [False, False]


@pytest.mark.parametrize("text", ["2", "yes", "", "-1"])
def test_voc_difficult_other_than_0_or_1(voc, text):  # noqa: F811
    xml = voc / "VOCdevkit" / "VOC2007" / "Annotations" / "VOC2007_test_1.xml"
    xml.write_text(xml.read_text().replace("<difficult>0</difficult>", f"<difficult>{text}</difficult>", 1))
    report = check_voc(voc)
    assert f"{xml}: object 0 (dog): <difficult> is {text!r}, not 0 or 1" in _problems(report)
    assert report.counts["VOC2007 test"]["images_with_problems"] == 1


def test_voc_image_size_and_exif_rotation(voc):  # noqa: F811
    base = voc / "VOCdevkit" / "VOC2007"
    _jpeg(base / "JPEGImages" / "VOC2007_test_1.jpg", size=(40, 24))
    _exif_jpeg(base / "JPEGImages" / "VOC2007_test_2.jpg", 6)
    problems = _problems(check_voc(voc))
    assert ("test.txt: id VOC2007_test_1: image file is 40x24 pixels but the record says 32x24 (width x height)"
            in problems)
    assert "test.txt: id VOC2007_test_2: EXIF Orientation is 6" in problems


def test_voc_non_positive_size(voc):  # noqa: F811
    xml = voc / "VOCdevkit" / "VOC2007" / "Annotations" / "VOC2007_test_1.xml"
    xml.write_text(xml.read_text().replace("<width>32</width>", "<width>0</width>"))
    assert f"{xml}: <size> is 0x24: width and height must be positive" in _problems(check_voc(voc))


def test_cli_reports_bad_voc_input_and_exits_2_without_traceback(voc, capsys):  # noqa: F811
    base = voc / "VOCdevkit" / "VOC2007"
    (base / "ImageSets" / "Main" / "test.txt").write_text("VOC2007_test_1\nVOC2007_test_1\n")
    xml = base / "Annotations" / "VOC2007_test_1.xml"
    xml.write_text(xml.read_text().replace("<difficult>0</difficult>", "<difficult>x</difficult>"))
    assert main(["data", "check", "voc", str(voc)]) == 2
    err = capsys.readouterr().err
    assert "test.txt: id VOC2007_test_1: listed 2 times" in err
    assert "object 0 (dog): <difficult> is 'x', not 0 or 1" in err
    assert "Traceback" not in err
    assert main(["data", "check", "voc", str(voc / "nothing")]) == 2

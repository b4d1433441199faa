"""The coco / voc profiles on tiny fixtures in the real layouts: the data stage (check, VOC -> COCO
conversion) and a training iteration reading the trees in place."""
from __future__ import annotations

import copy
import json
import re

import pytest

from ld.data.prepare import ANN_FILES, prepare_dataset, voc_to_coco
from ld.errors import BadFileError, ConfigError
from tests.data.test_data_check import _jpeg, _voc_image, voc  # noqa: F401  (fixture)


@pytest.fixture
def coco_tree(tmp_path):
    """COCO 2017 layout with real COCO category names (person = 1, dog = 18), two images per split."""
    root = tmp_path / "coco"
    for split in ("train2017", "val2017"):
        for i in (1, 2):
            _jpeg(root / split / f"{i:012d}.jpg", size=(64, 48))
        anns = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [4, 4, 30, 30], "area": 900, "iscrowd": 0},
                {"id": 2, "image_id": 2, "category_id": 18, "bbox": [20, 10, 20, 25], "area": 500, "iscrowd": 0}]
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps({
            "images": [{"id": i, "file_name": f"{i:012d}.jpg", "width": 64, "height": 48} for i in (1, 2)],
            "annotations": anns, "categories": [{"id": 1, "name": "person"}, {"id": 18, "name": "dog"}]}))
    return root


@pytest.fixture
def voc_tree(tmp_path):
    """VOCdevkit with VOC2007 trainval + test and VOC2012 trainval, two 64x48 images each."""
    for year, splits in (("VOC2007", ("trainval", "test")), ("VOC2012", ("trainval",))):
        base = tmp_path / "voc" / "VOCdevkit" / year
        for split in splits:
            ids = [f"{year}_{split}_{i}" for i in (1, 2)]
            for image_id in ids:
                _voc_image(base, image_id, [("dog", (3, 3, 30, 30)), ("person", (25, 10, 50, 45))], size=(64, 48))
            (base / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
            (base / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return tmp_path / "voc"



def _tiny(params, layout: str, root) -> dict:
    """params.yaml with its `layout` profile shrunk to a CPU test: the fixture root, 64 px, 1 epoch."""
    params = copy.deepcopy(params)
    profile = params["profiles"][layout]
    profile.update(batch_size=2, workers=0, warmup_iters=1, pretrained=False,
                   schedules={"1x": {"epochs": 1, "steps": [1]}, "2x": {"epochs": 1, "steps": [1]}},
                   model={"channels": 64, "stacked_convs": 1, "anchor_scale": 4})
    profile["data"] = {**profile["data"], "root": str(root), "image_size": [64, 48]}
    return params


def test_voc_to_coco_converts_07_12_trainval_with_mmdets_box_convention(voc):  # noqa: F811
    base = voc / "VOCdevkit" / "VOC2007"
    _voc_image(base, "VOC2007_trainval_1", [("dog", (2, 2, 12, 12))])
    xml = base / "Annotations" / "VOC2007_trainval_1.xml"
    xml.write_text(xml.read_text().replace("<difficult>0</difficult>", "<difficult>1</difficult>"))
    coco = voc_to_coco(voc / "VOCdevkit", (("VOC2007", "trainval"), ("VOC2012", "trainval")))
    assert len(coco["images"]) == 4 and len(coco["categories"]) == 20
    assert coco["images"][0]["file_name"] == "VOC2007/JPEGImages/VOC2007_trainval_1.jpg"
    assert coco["images"][2]["file_name"].startswith("VOC2012/")
    first = coco["annotations"][0]
    assert first["bbox"] == [1.0, 1.0, 10.0, 10.0] and first["area"] == 100.0
    assert first["iscrowd"] == 1 and first["category_id"] == 12  # difficult: ignored; dog is class 12
    assert {a["iscrowd"] for a in coco["annotations"][1:]} == {0}


def test_voc_data_stage_checks_then_converts_and_refuses_a_bad_tree(voc, params, tmp_path):  # noqa: F811
    profile = _tiny(params, "voc", voc)["profiles"]["voc"]
    summary = prepare_dataset(profile, tmp_path / "data")
    train = json.loads((tmp_path / "data" / ANN_FILES["voc"][0]).read_text())
    test = json.loads((tmp_path / "data" / ANN_FILES["voc"][1]).read_text())
    assert len(train["images"]) == 4 and len(test["images"]) == 2  # VOC07+12 trainval, VOC07 test
    assert summary["counts"]["VOC2007 test"]["objects"] == 4 and (tmp_path / "data" / "check.json").is_file()
    _voc_image(voc / "VOCdevkit" / "VOC2007", "VOC2007_test_1", [("dragon", (2, 2, 12, 12))])
    with pytest.raises(BadFileError, match="unknown class 'dragon'"):
        prepare_dataset(profile, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()  # nothing half-written


def test_coco_data_stage_refuses_an_empty_annotation_file(coco_tree, params, tmp_path):
    profile = _tiny(params, "coco", coco_tree)["profiles"]["coco"]
    assert prepare_dataset(profile, tmp_path / "ok")["counts"]["val2017"]["annotations"] == 2
    (coco_tree / "annotations" / "instances_val2017.json").write_text("")
    with pytest.raises(BadFileError, match="instances_val2017.json: not valid JSON"):
        prepare_dataset(profile, tmp_path / "bad")


def test_a_real_profile_without_a_root_says_how_to_give_one(params):
    profile = copy.deepcopy(params["profiles"]["coco"])
    profile["data"]["root"] = ""
    with pytest.raises(ConfigError, match="needs data.root"):
        prepare_dataset(profile, "unused")
    with pytest.raises(ConfigError, match="layout must be one of"):
        prepare_dataset({**profile, "data": {"layout": "kitti", "root": "x"}}, "unused")


@pytest.mark.parametrize("layout", ["coco", "voc"])
def test_a_training_iteration_reads_the_real_layout_in_place(layout, coco_tree, voc_tree, params, tmp_path,
                                                             repo_root):
    from mmengine.config import Config

    from ld.engine.train import build_train_config, train

    root = coco_tree if layout == "coco" else voc_tree
    params = _tiny(params, layout, root)
    prepare_dataset(params["profiles"][layout], tmp_path / "data")
    cfg = build_train_config("pipelines/configs/gfl_r18_1x.py", params, profile=layout, data_root=tmp_path / "data",
                             work_root=tmp_path / "work")
    assert cfg.model.bbox_head.num_classes == (2 if layout == "coco" else 20)  # the fixture's person, dog; VOC's 20
    assert cfg.lr_rule.lr == pytest.approx(2 / 16 * 0.01)
    train(cfg, tmp_path / "model")
    exported = Config.fromfile(str(tmp_path / "model" / "config.py"))
    assert (tmp_path / "model" / "model.pth").is_file() and exported.train_cfg.max_epochs == 1
    log = next((tmp_path / "work").rglob("*.log")).read_text()
    steps = 1 if layout == "coco" else 6  # COCO train2017: 2 images; VOC07+12 trainval: 4, x3 (RepeatDataset), batch 2
    assert re.search(rf"Epoch\(train\) \[1\]\[\d+/{steps}\]", log)
    assert "Epoch(val)" not in log  # no validation pass: the eval stage evaluates the exported model
    # the exported config works with mmdet's own tools/test.py, which sets load_from and work_dir and tests
    from mmengine.runner import Runner

    exported.load_from, exported.work_dir = str(tmp_path / "model" / "model.pth"), str(tmp_path / "mmdet_test")
    # tools/test.py runs in a process of its own; here mmengine's global visualizer of another test's runner
    # (its folder deleted with that test) would be reused under the config's name
    exported.visualizer.name = f"mmdet-test-{tmp_path.name}"
    assert isinstance(Runner.from_cfg(exported).test(), dict)  # resumed before: KeyError 'message_hub'
    assert "Epoch(test)" in next((tmp_path / "mmdet_test").rglob("*.log")).read_text()


def test_a_perfect_detector_scores_one_on_a_vocdevkit_tree_through_ld_eval(voc_tree, params, tmp_path, repo_root):
    """VOC07 test with a difficult object: the converted annotations and the detections share mmdet's
    box convention, so returning the ground truth scores 1.0 at every IoU, in VOC and COCO metrics."""
    from mmengine.config import Config

    from ld.cli import main
    from ld.profiles import apply_profile
    from tests.evaluation.test_eval_tools import assert_perfect, perfect_results

    xml = voc_tree / "VOCdevkit" / "VOC2007" / "Annotations" / "VOC2007_test_2.xml"
    xml.write_text(xml.read_text().replace("<difficult>0</difficult>", "<difficult>1</difficult>", 1))
    params = _tiny(params, "voc", voc_tree)
    prepare_dataset(params["profiles"]["voc"], tmp_path / "data")
    cfg = Config.fromfile("pipelines/configs/gfl_r18_1x.py")
    apply_profile(cfg, params["profiles"]["voc"], data_root=tmp_path / "data")
    (tmp_path / "config.py").write_text(cfg.pretty_text)
    ann_file = tmp_path / "data" / ANN_FILES["voc"][1]
    assert sum(a["iscrowd"] for a in json.loads(ann_file.read_text())["annotations"]) == 1
    results = perfect_results(ann_file, tmp_path / "perfect.json")
    argv = ["eval", str(tmp_path / "config.py"), "--results", str(results), "--out", str(tmp_path / "m.json"),
            "--tables", str(tmp_path / "tables")]
    assert main(argv) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert_perfect(metrics)
    assert "| dog " in (tmp_path / "tables" / "voc_per_class.md").read_text()

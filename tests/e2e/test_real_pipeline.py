"""`dvc repro` end to end (data -> train -> distill -> eval -> tables) on tiny trees in the real layouts:
a COCO-JSON dataset of its own (2 classes with names and ids of its own) and a VOCdevkit."""
from __future__ import annotations

import json

import pytest
import yaml
from mmengine.config import Config

from tests.data.test_data_check import _jpeg
from tests.data.test_real_data import _tiny, voc_tree  # noqa: F401  (fixture)
from tests.e2e.test_pipeline import PARAMS, _clone, _run, fork_server  # noqa: F401  (fixture)

# pytest-timeout: `dvc repro` of a teacher, an LD student and their evaluation per test
pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]
CLASSES = ("widget", "gadget")  # category ids 7 and 3, listed in that order


def custom_coco_tree(root):
    """A COCO 2017 layout with two classes of its own: 3 training and 2 validation images of 64x48."""
    for split, n in (("train2017", 3), ("val2017", 2)):
        images, anns = [], []
        for i in range(1, n + 1):
            _jpeg(root / split / f"{i:012d}.jpg", size=(64, 48))
            images.append({"id": i, "file_name": f"{i:012d}.jpg", "width": 64, "height": 48})
            for k, (cat, box) in enumerate(((7, [4, 4, 30, 30]), (3, [30, 12, 28, 30]))):
                anns.append({"id": 10 * i + k, "image_id": i, "category_id": cat, "bbox": box,
                             "area": box[2] * box[3], "iscrowd": 0})
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps({
            "images": images, "annotations": anns,
            "categories": [{"id": 7, "name": CLASSES[0]}, {"id": 3, "name": CLASSES[1]}]}))
    return root


def _params(layout: str, root, runs: dict) -> dict:
    params = _tiny(PARAMS, layout, root)
    if layout == "coco":  # a profile of one's own, as the README's "your own dataset" section writes it
        params["profiles"]["mydata"] = params["profiles"].pop("coco")
    return {**params, "profile": "mydata" if layout == "coco" else layout, "teachers": {}, **runs}


def _metrics(root, profile, run):
    return json.loads((root / "results" / profile / "metrics" / f"{run}.json").read_text())


def test_a_coco_json_dataset_of_its_own_runs_end_to_end_teacher_ld_student_eval_table(tmp_path,
                                                                                    fork_server):  # noqa: F811
    tree = custom_coco_tree(tmp_path / "mydata")
    root, env = _clone(tmp_path / "clone")
    runs = {"train": ["gfl_r50_2x"], "distill": {"ld_r18_gfl_r50_1x": {"teacher": "gfl_r50_2x"}}}
    (root / "params.yaml").write_text(yaml.safe_dump(_params("coco", tree, runs), sort_keys=False))
    env = fork_server(root, env)
    out = _run(["dvc", "repro", "table"], root, env)
    for stage in ("data", "train@gfl_r50_2x", "distill@ld_r18_gfl_r50_1x", "eval@gfl_r50_2x",
                  "eval_distill@ld_r18_gfl_r50_1x", "table"):
        assert f"Running stage '{stage}'" in out, out[-3000:]
    assert json.loads((root / "data" / "mydata" / "classes.json").read_text()) == {"classes": list(CLASSES)}
    for run in ("gfl_r50_2x", "ld_r18_gfl_r50_1x"):
        cfg = Config.fromfile(str(root / "models" / "mydata" / run / "config.py"))
        assert tuple(cfg.classes) == CLASSES and cfg.model.bbox_head.num_classes == 2
        assert tuple(cfg.test_dataloader.dataset.metainfo.classes) == CLASSES
        metrics = _metrics(root, "mydata", run)
        assert "voc" not in metrics and 0.0 <= metrics["coco"]["AP"] <= 1.0
        # a run shorter than the logging interval still has its curve (DVC needs the declared plots)
        assert any((root / "results" / "mydata" / "live" / run / "plots").rglob("*.tsv"))
    teacher = Config.fromfile(str(root / "models" / "mydata" / "ld_r18_gfl_r50_1x" / "config.py")).model.teacher_config
    assert Config.fromfile(str(root / teacher)).model.bbox_head.num_classes == 2
    table = (root / "results" / "mydata" / "tables" / "runs.md").read_text()
    assert "gfl_r50_2x" in table and "ld_r18_gfl_r50_1x" in table
    assert "Running stage" not in _run(["dvc", "repro", "table"], root, env)

    # the annotations fixed in place (DVC does not watch data.root: `dvc repro -f data`, as the README says):
    # the data stage records their new digest, and training reruns from scratch, not from the old checkpoint
    ann = tree / "annotations" / "instances_train2017.json"
    ann.write_text(ann.read_text().replace("[4, 4, 30, 30]", "[5, 5, 30, 30]"))
    _run(["dvc", "repro", "-f", "data"], root, env)
    out = _run(["dvc", "repro", "train@gfl_r50_2x"], root, env)
    assert "Running stage 'train@gfl_r50_2x'" in out and "gfl_r50_2x, starts afresh" in out, out[-3000:]
    assert "resumes from" not in out, out[-3000:]  # ld train's header says which (the details are in its log file)


def test_a_vocdevkit_with_classes_of_its_own_runs_end_to_end_with_voc_metrics(voc_tree, tmp_path):  # noqa: F811
    """The fixture's objects are persons and dogs: `data.classes: [person, dog]` makes it a 2-class dataset
    (upstream's HikariTJU/LD issue #36), in that label order. A plain `dvc repro`, as a user types it: each
    stage's `ld` in a process of its own (the other end-to-end repros run theirs through a fork server)."""
    root, env = _clone(tmp_path / "clone")
    params = _params("voc", voc_tree, {"train": ["gfl_r18_1x"], "distill": {}})
    params["profiles"]["voc"]["data"]["classes"] = ["person", "dog"]
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = _run(["dvc", "repro", "table"], root, env)
    assert "Running stage 'eval@gfl_r18_1x'" in out and "Running stage 'table'" in out, out[-3000:]
    cfg = Config.fromfile(str(root / "models" / "voc" / "gfl_r18_1x" / "config.py"))
    assert tuple(cfg.classes) == ("person", "dog") and cfg.model.bbox_head.num_classes == 2
    metrics = _metrics(root, "voc", "gfl_r18_1x")
    assert 0.0 <= metrics["voc"]["AP"] <= 1.0 and 0.0 <= metrics["coco"]["AP"] <= 1.0
    per_class = (root / "results" / "voc" / "eval" / "gfl_r18_1x" / "voc_per_class.csv").read_text()
    assert per_class.splitlines()[1].startswith("person,") and per_class.splitlines()[2].startswith("dog,")
    assert "gfl_r18_1x" in (root / "results" / "voc" / "tables" / "runs.md").read_text()

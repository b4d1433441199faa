from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo_root(monkeypatch) -> Path:
    """Run the test from the repository root (configs and params.yaml use repo-relative paths)."""
    monkeypatch.chdir(REPO)
    return REPO


@pytest.fixture
def params(repo_root) -> dict:
    """``params.yaml`` as the pipeline reads it, read afresh for each test (a test may change its copy)."""
    from ld.profiles import load_params

    return load_params(repo_root / "params.yaml")


@pytest.fixture
def dataset(tmp_path) -> Path:
    """A generated dataset of 4 train / 2 val images of 64 px (seed 1) in ``tmp_path/data``, the test's own
    (a test may change it)."""
    from ld.data.synth import SynthSpec, write_dataset

    write_dataset(tmp_path / "data", SynthSpec(num_train=4, num_val=2, image_size=64, seed=1), show_progress=False)
    return tmp_path / "data"


# Three objects of two classes in two 100 x 100 images (COCO's [x, y, width, height] boxes)
COCO_ANNS = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 30, 30], "area": 900, "iscrowd": 0},
             {"id": 2, "image_id": 1, "category_id": 2, "bbox": [50, 50, 40, 20], "area": 800, "iscrowd": 0},
             {"id": 3, "image_id": 2, "category_id": 1, "bbox": [5, 60, 20, 30], "area": 600, "iscrowd": 0}]


@pytest.fixture
def coco_gt(tmp_path) -> Path:
    """``gt.json``: COCO ground truth of :data:`COCO_ANNS`, categories 1 'a' and 2 'b'."""
    import json

    images = [{"id": i, "file_name": f"{i}.jpg", "width": 100, "height": 100} for i in (1, 2)]
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({"images": images, "annotations": COCO_ANNS,
                                "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}))
    return path


@pytest.fixture(autouse=True)
def _quiet_threads():
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    yield


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory):
    """``tiny_export(config_name) -> folder``: an exported, untrained model (``config.py`` + ``model.pth``,
    the student alone of a distillation config) of ``pipelines/configs/<config_name>.py`` on the smoke
    profile, over a generated dataset of 2 train / 4 val images of 64 px; its test_cfg keeps every box
    (score_thr 0). Made once a session for each config."""
    import torch
    from mmengine.config import Config

    import ld.models  # noqa: F401  (registers the modules)
    from ld.data.synth import SynthSpec, write_dataset
    from ld.models.distiller import build_student, student_only
    from ld.profiles import apply_profile, get_profile, load_params

    root = tmp_path_factory.mktemp("tiny")
    write_dataset(root / "data", SynthSpec(num_train=2, num_val=4, image_size=64), show_progress=False)
    profile = get_profile(load_params(REPO / "params.yaml"), "smoke")
    made: dict[str, Path] = {}

    def export(config_name: str) -> Path:
        if config_name not in made:
            cfg = Config.fromfile(str(REPO / f"pipelines/configs/{config_name}.py"))
            apply_profile(cfg, {**profile, "data": {**profile["data"], "image_size": 64}}, data_root=root / "data")
            cfg = student_only(cfg)
            cfg.model.test_cfg.score_thr = 0.0  # an untrained model scores low: keep its boxes
            out = root / config_name
            out.mkdir()
            (out / "config.py").write_text(cfg.pretty_text)
            torch.manual_seed(0)
            torch.save({"state_dict": build_student(cfg, None).state_dict(), "meta": {"epoch": 1}}, out / "model.pth")
            made[config_name] = out
        return made[config_name]

    return export


@pytest.fixture(scope="session")
def tiny_run(tiny_export) -> Path:
    """An exported, untrained GFocalV1 R-18 (``model/config.py`` + ``model/model.pth``) over a generated
    dataset of 2 train / 4 val images of 64 px (``data/``): :func:`tiny_export`'s ``gfl_r18_1x``."""
    root = tiny_export("gfl_r18_1x").parent
    if not (root / "model").exists():
        (root / "model").symlink_to(root / "gfl_r18_1x")
    return root


# What the tests write under pytest's temporary folder at the most, both workers together (the smoke repro's
# clone beside the pull round trip's remote and fresh clone): 7.1 GB in `make test` from a fresh clone at
# 3e68b90, sampled every 3 s (8.3 GB before finished runs dropped their optimizer state); .venv is 2 GB more
TESTS_PEAK_DISK_GB = 7.5


def pytest_report_header(config):
    """The free disk where the tests write, in the session's header, so that a run stopped by a full disk
    ('No space left on device') shows how much it had."""
    import shutil
    import tempfile

    where = Path(config.option.basetemp or tempfile.gettempdir())
    while not where.exists():
        where = where.parent
    free = shutil.disk_usage(where).free / 1e9
    short = "" if free >= TESTS_PEAK_DISK_GB else ": too little, free some space first"
    return f"disk: {free:.1f} GB free in {where}, the tests write up to {TESTS_PEAK_DISK_GB} GB there{short}"


def pytest_collection_modifyitems(config, items):
    """The slow end-to-end modules first, longest first (measured: the smoke repro, the COCO/VOC trees, the
    released teacher, resume, DDP): `make test` runs the files on two workers (pytest-xdist, ``--dist loadfile
    --no-loadscope-reorder``: without the flag xdist reorders the files by their number of tests, and the
    repro started last), which take them in this order, so the smoke `dvc repro` starts at once and the
    quick tests fill the other worker beside it."""
    first = ("test_pipeline.py", "test_real_pipeline.py", "test_teacher_pipeline.py", "test_resume.py", "test_ddp.py")
    rank = {name: i for i, name in enumerate(first)}
    items.sort(key=lambda item: rank.get(item.path.name, len(first)))  # stable: file order kept otherwise

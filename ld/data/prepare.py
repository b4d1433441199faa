"""The data stage of every profile: what ``data/<profile>/`` holds before training.

A profile's ``data.layout`` says where its images come from:

- ``synth`` (default): the embedded dataset, generated into ``data/<profile>/``;
- ``coco``: the user's COCO 2017 tree at ``data.root``, checked (:func:`ld.data.check.check_coco`);
  the configs read it in place, ``data/<profile>/check.json`` records the counts;
- ``voc``: the user's VOCdevkit at ``data.root``, checked, and its VOC07+12 trainval (training) and
  VOC07 test (evaluation, as the paper) converted to COCO JSON under ``data/<profile>/annotations/``
  so that COCO-style AP is computed on VOC as the paper's VOC tables report it.

The classes a profile trains and evaluates are the dataset's own: the categories of its training
annotations, in the file's order, recorded in ``data/<profile>/classes.json`` (:func:`dataset_classes`),
so a COCO-JSON tree with any number of classes and any names trains like COCO itself.

A check that finds problems stops the stage with every problem listed (nothing trains on bad data).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ld.data.check import VOC_CLASSES, check_coco, check_voc, parse_voc, voc_devkit
from ld.errors import BadFileError, ConfigError
from ld.io import atomic_write_json
from ld.layout import LAYOUTS

VOC_TRAIN: tuple[tuple[str, str], ...] = (("VOC2007", "trainval"), ("VOC2012", "trainval"))
VOC_TEST: tuple[tuple[str, str], ...] = (("VOC2007", "test"),)
# The annotation files each layout trains and evaluates on: (train, val), relative to the data root.
ANN_FILES = {"synth": ("annotations/instances_train.json", "annotations/instances_val.json"),
             "coco": ("annotations/instances_train2017.json", "annotations/instances_val2017.json"),
             "voc": ("annotations/instances_trainval0712.json", "annotations/instances_test2007.json")}
CLASSES_FILE = "classes.json"
IMAGE_PREFIXES = {"synth": ("JPEGImages/", "JPEGImages/"), "coco": ("train2017/", "val2017/"), "voc": ("", "")}


def layout_of(profile: dict[str, Any]) -> str:
    """The profile's data layout (``synth`` unless it says otherwise)."""
    layout = profile["data"].get("layout", "synth")
    if layout not in LAYOUTS:
        raise ConfigError(f"params.yaml: data.layout must be one of {LAYOUTS}, got {layout!r}")
    if layout != "synth" and not profile["data"].get("root"):
        raise ConfigError(f"params.yaml: a '{layout}' profile needs data.root, the folder holding the dataset "
                          f"(e.g. `dvc exp run -S profiles.{layout}.data.root=/datasets/{layout}`)")
    if layout == "coco" and profile["data"].get("classes"):
        raise ConfigError("params.yaml: data.classes is for a VOCdevkit; a COCO tree's classes are the categories "
                          "of its annotation files: remove data.classes")
    return layout


def voc_to_coco(devkit: str | Path, splits: tuple[tuple[str, str], ...],
                classes: tuple[str, ...] = VOC_CLASSES) -> dict[str, Any]:
    """COCO detection JSON of VOC ``splits`` (e.g. VOC07+12 trainval), images named relative to ``devkit``.

    Boxes follow mmdet's VOC convention: VOC's 1-based inclusive pixel indices minus one, so
    ``[x1 - 1, y1 - 1, x2 - x1, y2 - y1]`` as COCO ``[x, y, w, h]``. Objects marked difficult become
    ``iscrowd: 1``: ignored by training (mmdet's ignore flag) and by COCO evaluation, as VOC ignores them.
    Category ids are 1..N in ``classes`` order (VOC's 20 unless the profile lists its own in
    ``data.classes``). Raises BadFileError naming the file of a bad record.
    """
    devkit = Path(devkit)
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(classes)]
    cat_id = {name: i + 1 for i, name in enumerate(classes)}
    images, annotations = [], []
    for year, split in splits:
        ids_file = devkit / year / "ImageSets" / "Main" / f"{split}.txt"
        if not ids_file.is_file():
            raise BadFileError(f"{ids_file} is missing: run `ld data check voc {devkit.parent}`")
        for voc_id in ids_file.read_text().split():
            xml = devkit / year / "Annotations" / f"{voc_id}.xml"
            parsed, problems = parse_voc(xml, classes) if xml.is_file() else (None, [f"{xml}: missing"])
            if problems or parsed is None:
                raise BadFileError("; ".join(problems) + f" (run `ld data check voc {devkit.parent}` for all)")
            image_id = len(images) + 1
            images.append({"id": image_id, "file_name": f"{year}/JPEGImages/{voc_id}.jpg", "voc_id": voc_id,
                           "width": int(parsed["width"]), "height": int(parsed["height"])})
            for obj in parsed["objects"]:
                x1, y1, x2, y2 = obj["bbox"]
                w, h = x2 - x1, y2 - y1
                annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                    "category_id": cat_id[obj["name"]], "bbox": [x1 - 1, y1 - 1, w, h],
                                    "area": w * h, "iscrowd": int(obj["difficult"])})
    return {"images": images, "annotations": annotations, "categories": categories}


def prepare_dataset(profile: dict[str, Any], out: str | Path, verify_images: bool = False) -> dict[str, Any]:
    """Make ``out`` (``data/<profile>``) what the profile's configs read; returns a summary."""
    out = Path(out)
    layout = layout_of(profile)
    if layout == "synth":
        from ld.data.synth import SynthSpec, write_dataset

        spec = {k: v for k, v in profile["data"].items() if k != "layout"}
        return write_dataset(out, SynthSpec(**spec))["splits"]
    root = Path(profile["data"]["root"])
    classes = voc_classes(profile)
    report = (check_coco(root, verify_images=verify_images) if layout == "coco" else
              check_voc(root, verify_images=verify_images, classes=classes))
    if not report.ok:
        raise BadFileError(report.summary() + "\nFix or remove these records, then run the data stage again.")
    summary = {"layout": layout, "root": str(root), "counts": report.counts, "identity": tree_identity(root, layout)}
    if layout == "voc":
        devkit = voc_devkit(root)
        for splits, ann in zip((VOC_TRAIN, VOC_TEST), ANN_FILES["voc"]):
            coco = voc_to_coco(devkit, splits, classes)
            atomic_write_json(out / ann, coco)
            summary[ann] = {"images": len(coco["images"]), "annotations": len(coco["annotations"])}
    else:
        classes = category_names(root / ANN_FILES["coco"][0])
    atomic_write_json(out / CLASSES_FILE, {"classes": list(classes)})
    atomic_write_json(out / "check.json", summary)
    return summary


def tree_identity(root: str | Path, layout: str) -> dict[str, str]:
    """Digests of a COCO / VOC tree outside the repository (annotation files' bytes, image folders' file
    names and sizes), recorded by the data stage: DVC does not watch ``data.root``, so after fixing the
    tree in place `dvc repro -f data` records new digests and everything trained on the tree reruns."""
    from ld.checkpoint import file_digest
    from ld.io import listing_digest

    root = Path(root)
    if layout == "coco":
        return {**{name: file_digest(root / name) for name in ANN_FILES["coco"]},
                **{prefix: listing_digest(root / prefix) for prefix in IMAGE_PREFIXES["coco"]}}
    devkit = voc_devkit(root)
    return {str(year.relative_to(devkit)): listing_digest(year) for year in sorted(devkit.glob("VOC20*"))}


def category_names(ann_file: str | Path) -> tuple[str, ...]:
    """The class names of a COCO instances file in its ``categories`` order, which is mmdet's label order
    (``CocoDataset`` maps category ids to labels in the order the file lists them)."""
    categories = json.loads(Path(ann_file).read_text())["categories"]
    names = [c["name"] for c in categories]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise BadFileError(f"{ann_file}: categories {repeated} appear more than once: give each class one category")
    return tuple(names)


def dataset_classes(profile: dict[str, Any], data_root: str | Path) -> tuple[str, ...]:
    """The class names a ``coco`` / ``voc`` profile trains and evaluates, in label order: the ones the data
    stage recorded in ``data_root/classes.json``; before it has run, the training annotations' categories
    (COCO layout) or VOC's 20 classes, so a config can be resolved without the data stage (e.g. to
    import a released COCO teacher)."""
    recorded = Path(data_root) / CLASSES_FILE
    if recorded.is_file():
        return tuple(json.loads(recorded.read_text())["classes"])
    if layout_of(profile) == "coco":
        ann_file = Path(profile["data"]["root"]) / ANN_FILES["coco"][0]
        if ann_file.is_file():
            return category_names(ann_file)
        from mmdet.datasets import CocoDataset

        return tuple(CocoDataset.METAINFO["classes"])
    return voc_classes(profile)


@dataclass(frozen=True)
class DatasetFiles:
    """Where a profile's dataset is, as the configs' dataloaders and evaluators read it."""

    layout: str
    images_root: Path  # the dataloaders' data_root: the images (and, for synth and coco, the annotations)
    ann_files: tuple[str, str]  # (train, val): relative to images_root, or absolute (VOC's converted ones)
    image_prefixes: tuple[str, str]  # (train, val): the images' folder under images_root
    classes: tuple[str, ...] | None  # the dataset's own classes; None: the configs' (the embedded dataset)


def dataset_files(profile: dict[str, Any], data_root: str | Path) -> DatasetFiles:
    """Where the profile's data is: the generated dataset in ``data_root`` (``data/<profile>``), or the user's
    COCO / VOC tree at ``data.root`` with, for VOC, the COCO annotations the data stage converted into
    ``data_root`` (by absolute path: mmengine joins relative ones to the images' root)."""
    layout, data_root = layout_of(profile), Path(data_root)
    if layout == "synth":
        images_root, ann_files = data_root, ANN_FILES[layout]
    elif layout == "coco":
        images_root, ann_files = Path(profile["data"]["root"]), ANN_FILES[layout]
    else:
        images_root = voc_devkit(profile["data"]["root"])
        ann_files = tuple(str((data_root / name).resolve()) for name in ANN_FILES[layout])
    classes = None if layout == "synth" else dataset_classes(profile, data_root)
    return DatasetFiles(layout, images_root, ann_files, IMAGE_PREFIXES[layout], classes)


def voc_classes(profile: dict[str, Any]) -> tuple[str, ...]:
    """A VOC-layout profile's classes: its ``data.classes`` (a VOCdevkit of one's own, e.g. 2 classes), in
    label order, else VOC's 20."""
    return tuple(profile["data"].get("classes") or VOC_CLASSES)

"""Checks of real datasets in their standard layouts, before any training touches them.

COCO: ``annotations/instances_{train,val}2017.json``, ``train2017/``, ``val2017/``.
VOC: ``VOCdevkit/VOC2007`` and ``VOCdevkit/VOC2012``, each with ``Annotations/``, ``ImageSets/Main/``,
``JPEGImages/`` (VOC07+12 trainval for training, VOC07 test for evaluation, as in the paper).

Each check returns a report: counts, and every problem found with the file and record it is in; it
never stops at the first problem, so one run lists everything to fix.
"""
from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VOC_CLASSES: tuple[str, ...] = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable", "dog",
    "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor")
COCO_SPLITS: tuple[str, ...] = ("train2017", "val2017")
VOC_SPLITS: tuple[tuple[str, str], ...] = (("VOC2007", "trainval"), ("VOC2007", "test"), ("VOC2012", "trainval"))


@dataclass
class CheckReport:
    """What a check found: counts per split and problems (``file: record: what``)."""

    layout: str
    root: str
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self, limit: int = 20) -> str:
        lines = [f"{self.layout} dataset at {self.root}: " + ("OK" if self.ok else f"{len(self.problems)} problems")]
        lines += [f"  {split}: " + ", ".join(f"{k} {v}" for k, v in counts.items())
                  for split, counts in self.counts.items()]
        lines += [f"  - {p}" for p in self.problems[:limit]]
        if len(self.problems) > limit:
            lines.append(f"  ... and {len(self.problems) - limit} more")
        return "\n".join(lines)


EXIF_ORIENTATION = 0x0112  # the EXIF tag; values 2..8 flip or rotate the stored pixels on display
EXIF_FIX = "rotate the pixels and drop the tag (e.g. `exiftran -ai FILE`, or PIL `ImageOps.exif_transpose`)"
_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
               float: "a number", type(None): "null"}


def _box_problem(x1: float, y1: float, x2: float, y2: float, width: float, height: float) -> str | None:
    if any(math.isnan(v) or math.isinf(v) for v in (x1, y1, x2, y2)):
        return "box has NaN or infinite coordinates"
    if x2 <= x1 or y2 <= y1:
        return f"box has zero or negative size ({x1}, {y1}, {x2}, {y2})"
    if x1 < -1 or y1 < -1 or x2 > width + 1 or y2 > height + 1:
        return f"box ({x1}, {y1}, {x2}, {y2}) lies outside the {width}x{height} image"
    return None


def _is_int(value: Any) -> bool:
    """A JSON integer (``true`` and ``false`` are not)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _show(value: Any) -> str:
    """A JSON value as the file spells it, cut short."""
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _exif_orientation(img: Any) -> Any:
    """The EXIF Orientation of an opened image, from the EXIF block its header holds (1 when there is none)."""
    raw = img.info.get("exif")
    if not raw:
        return 1
    from PIL import Image

    exif = Image.Exif()
    try:
        exif.load(raw)
    except Exception:  # a malformed EXIF block: decoders ignore it, as does this check
        return 1
    return exif.get(EXIF_ORIENTATION, 1)


def _image_problems(path: Path, verify: bool, size: tuple[float, float] | None = None) -> list[str]:
    """What is wrong with one image file: missing, unreadable, a pixel size other than the annotated ``size``
    (width, height), an EXIF rotation, and with ``verify`` pixel data that cannot be decoded.

    The header (a few KB, no decoding) is read for every image whatever ``verify``: a size mismatch or an EXIF
    rotation misplaces every box without any error later, and finding them costs little next to decoding."""
    if not path.is_file():
        return ["image file missing"]
    from PIL import Image

    problems = []
    try:
        with Image.open(path) as img:  # reads the header only
            if size is not None and tuple(img.size) != tuple(size):
                problems.append(f"image file is {img.size[0]}x{img.size[1]} pixels but the record says "
                                f"{size[0]:g}x{size[1]:g} (width x height)")
            orientation = _exif_orientation(img)
            if orientation in range(2, 9):
                problems.append(f"EXIF Orientation is {orientation}: the stored pixels are rotated or flipped on "
                                f"display, and decoders disagree on applying it, so boxes and pixels may not line "
                                f"up; {EXIF_FIX}")
            if verify:
                img.load()  # decodes every byte: catches truncated files that verify() lets through
    except Exception as err:  # PIL raises several types for corrupt data
        problems.append(f"image cannot be decoded ({err})")
    return problems


def _load_coco_json(ann: Path, report: CheckReport) -> dict[str, Any] | None:
    """The instances file's object, or None once ``report`` names why it is not a COCO instances file."""
    try:
        data = json.loads(ann.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        report.problems.append(f"{ann}: not valid JSON ({err})")
        return None
    if not isinstance(data, dict):
        report.problems.append(f"{ann}: top level is {_JSON_TYPES.get(type(data), type(data).__name__)}, not an "
                               "object with images, annotations and categories: not a COCO instances file")
        return None
    missing_keys = [k for k in ("images", "annotations", "categories") if not isinstance(data.get(k), list)]
    if missing_keys:
        report.problems.append(f"{ann}: no list under {missing_keys}: not a COCO instances file")
        return None
    return data


def _id_problem(record: dict[str, Any], key: str, seen: dict[int, int], table: str) -> str | None:
    """Why ``record[key]`` is not a new integer id of ``table`` (``seen``: id -> index of its first record)."""
    if key not in record:
        return f"no '{key}'"
    if not _is_int(record[key]):
        return f"'{key}' is {_show(record[key])}, not an integer"
    if record[key] in seen:
        return f"duplicate '{key}' ({table}[{seen[record[key]]}] has it too)"
    return None


def _objects(ann: Path, records: list[Any], table: str, report: CheckReport) -> tuple[list[tuple[int, dict]], int]:
    """The records of ``table`` that are JSON objects, with their positions, and how many are not (each
    named in ``report``)."""
    objects = [(i, r) for i, r in enumerate(records) if isinstance(r, dict)]
    for i, r in enumerate(records):
        if not isinstance(r, dict):
            report.problems.append(f"{ann}: {table}[{i}]: is {_JSON_TYPES.get(type(r), '?')}, not an object")
    return objects, len(records) - len(objects)


def _check_coco_images(ann: Path, records: list[Any], folder: Path, verify: bool,
                       report: CheckReport) -> tuple[dict[int, dict[str, Any]], int]:
    """Image records by id (the first of duplicates) and how many records have problems, each named in ``report``."""
    images: dict[int, dict[str, Any]] = {}
    first: dict[int, int] = {}
    objects, bad = _objects(ann, records, "images", report)
    for i, img in objects:
        image_id, name = img.get("id"), img.get("file_name")
        named = isinstance(name, str) and bool(name)
        where = f"{ann}: " + (f"image id {image_id}" if _is_int(image_id) else f"images[{i}]")
        where += f" ({name})" if named else ""
        problems = []
        id_problem = _id_problem(img, "id", first, "images")
        if id_problem and id_problem.startswith("duplicate"):
            id_problem += ": COCO tools keep one of the two images and give it the annotations of both"
        elif id_problem is None:
            images[image_id], first[image_id] = img, i
        problems += [id_problem] if id_problem else []
        if not named:
            problems.append("no 'file_name'" if "file_name" not in img
                            else f"'file_name' is {_show(name)}, not a file name")
        for key in ("width", "height"):
            if key not in img:
                problems.append(f"no '{key}'")
            elif not (_is_int(img[key]) and img[key] > 0):
                problems.append(f"'{key}' is {_show(img[key])}, not a positive integer")
        if named:
            problems += _image_problems(folder / name, verify, _coco_size(img))
        report.problems += [f"{where}: {p}" for p in problems]
        bad += bool(problems)
    return images, bad


def _coco_size(img: dict[str, Any]) -> tuple[int, int] | None:
    """An image record's (width, height), None unless both are positive integers."""
    width, height = img.get("width"), img.get("height")
    return (width, height) if _is_int(width) and _is_int(height) and width > 0 and height > 0 else None


def _check_coco_categories(ann: Path, records: list[Any],
                           report: CheckReport) -> tuple[set[int], list[tuple[int, str]] | None]:
    """The category ids, and ``(id, name)`` in file order (None when a record has a problem, named in ``report``)."""
    ids: dict[int, int] = {}
    names: dict[str, int] = {}
    ordered: list[tuple[int, str]] | None = []
    if not records:
        report.problems.append(f"{ann}: no categories")
    for i, cat in enumerate(records):
        if not isinstance(cat, dict):
            report.problems.append(f"{ann}: categories[{i}]: is {_JSON_TYPES.get(type(cat), '?')}, not an object")
            ordered = None
            continue
        cat_id, name = cat.get("id"), cat.get("name")
        where = f"{ann}: " + (f"category id {cat_id}" if _is_int(cat_id) else f"categories[{i}]")
        problems = []
        id_problem = _id_problem(cat, "id", ids, "categories")
        if id_problem is None:
            ids[cat_id] = i
        problems += [id_problem] if id_problem else []
        if not (isinstance(name, str) and name.strip()):
            problems.append("no 'name'" if "name" not in cat else f"'name' is {_show(name)}, not a class name")
        elif name in names:
            problems.append(f"duplicate 'name' {_show(name)} (categories[{names[name]}] has it too)")
        else:
            names[name] = i
        report.problems += [f"{where}: {p}" for p in problems]
        if problems or ordered is None:
            ordered = None
        else:
            ordered.append((cat_id, name))
    return set(ids), ordered


def _bbox_problem(ann: dict[str, Any], img: dict[str, Any] | None) -> str | None:
    """Why an annotation's ``bbox`` is not a box ``[x, y, width, height]`` inside its image (``img``, if known)."""
    if "bbox" not in ann:
        return "no 'bbox'"
    bbox = ann["bbox"]
    if not isinstance(bbox, list):
        return f"'bbox' is {_show(bbox)}, not a list [x, y, width, height]"
    if len(bbox) != 4:
        return f"'bbox' {_show(bbox)} has {len(bbox)} values, not 4 [x, y, width, height]"
    if not all(_is_number(v) for v in bbox):
        return f"'bbox' {_show(bbox)} holds values that are not numbers"
    if img is None:
        return None
    x, y, w, h = (float(v) for v in bbox)
    width, height = _coco_size(img) or (math.inf, math.inf)  # a bad size is the image record's problem
    return _box_problem(x, y, x + w, y + h, width, height)


def _annotation_problems(ann: dict[str, Any], images: dict[int, dict[str, Any]],
                         category_ids: set[int]) -> list[str]:
    """What is wrong with one annotation record, its id apart."""
    problems = []
    image_id, category_id = ann.get("image_id"), ann.get("category_id")
    img = images.get(image_id) if _is_int(image_id) else None
    if "image_id" not in ann:
        problems.append("no 'image_id'")
    elif img is None:
        problems.append(f"refers to image id {_show(image_id)}, which is not in the file")
    if "category_id" not in ann:
        problems.append("no 'category_id'")
    elif not (_is_int(category_id) and category_id in category_ids):
        problems.append(f"unknown category id {_show(category_id)}")
    box = _bbox_problem(ann, img)
    problems += [box] if box else []
    if not _is_number(ann.get("area")) or math.isnan(ann["area"]):
        what = "no 'area'" if "area" not in ann else f"'area' is {_show(ann['area'])}, not a number"
        problems.append(f"{what} (mmdet's training and COCO evaluation read it)")
    return problems


def _check_coco_annotations(ann: Path, records: list[Any], images: dict[int, dict[str, Any]],
                            category_ids: set[int], report: CheckReport) -> int:
    """How many annotation records have problems, each problem named in ``report``."""
    seen: dict[int, int] = {}
    objects, bad = _objects(ann, records, "annotations", report)
    for i, a in objects:
        where = f"{ann}: " + (f"annotation id {a['id']}" if _is_int(a.get("id")) else f"annotations[{i}]")
        id_problem = _id_problem(a, "id", seen, "annotations")
        if id_problem is None:
            seen[a["id"]] = i
        problems = ([id_problem] if id_problem else []) + _annotation_problems(a, images, category_ids)
        report.problems += [f"{where}: {p}" for p in problems]
        bad += bool(problems)
    return bad


def _category_difference(a: tuple[Path, list[tuple[int, str]]], b: tuple[Path, list[tuple[int, str]]]) -> str | None:
    """How two files' ``(id, name)`` category lists differ (ids, names or order); None when they are the same."""
    (file_a, cats_a), (file_b, cats_b) = a, b
    if cats_a == cats_b:
        return None
    names_a, names_b = dict(cats_a), dict(cats_b)
    diffs = [f"only in {file.name}: " + ", ".join(f"{i} {n!r}" for i, n in mine if i not in theirs)
             for file, mine, theirs in ((file_a, cats_a, names_b), (file_b, cats_b, names_a))
             if any(i not in theirs for i, _ in mine)]
    diffs += [f"id {i} is {n!r} in {file_a.name} but {names_b[i]!r} in {file_b.name}"
              for i, n in cats_a if i in names_b and names_b[i] != n]
    return "; ".join(diffs) or "the same categories in a different order"


def _check_same_categories(categories: dict[Path, list[tuple[int, str]] | None], report: CheckReport) -> None:
    """Every instances file must list the same categories in the same order: mmdet numbers the classes in file
    order, so any difference gives one class different labels in training and test."""
    files = [(ann, cats) for ann, cats in categories.items() if cats is not None]
    for other in files[1:]:
        difference = _category_difference(files[0], other)
        if difference:
            report.problems.append(f"{files[0][0]} and {other[0]}: different 'categories' ({difference}): the same "
                                   "class would get different labels in training and test; give both files the "
                                   "same categories list")


def check_coco(root: str | Path, verify_images: bool = False) -> CheckReport:
    """Check a COCO 2017 tree: each instances file record by record (images, categories, annotations; ids
    unique), that both files list the same categories in the same order, and every image file.

    Every image's header is read, whatever ``verify_images`` (a few KB per file, no decoding): its pixel size
    must be the record's width x height and it must carry no EXIF rotation. ``verify_images`` also decodes every
    image (slow on full COCO)."""
    root = Path(root)
    report = CheckReport("coco", str(root))
    categories: dict[Path, list[tuple[int, str]] | None] = {}
    for split in COCO_SPLITS:
        ann = root / "annotations" / f"instances_{split}.json"
        if not ann.is_file():
            report.problems.append(f"{ann}: missing (the COCO 2017 layout has annotations/instances_{split}.json)")
            continue
        if not (root / split).is_dir():
            report.problems.append(f"{root / split}: image folder missing")
        data = _load_coco_json(ann, report)
        if data is None:
            continue
        if not data["images"]:
            report.problems.append(f"{ann}: no images")
        images, bad_images = _check_coco_images(ann, data["images"], root / split, verify_images, report)
        category_ids, categories[ann] = _check_coco_categories(ann, data["categories"], report)
        bad_anns = _check_coco_annotations(ann, data["annotations"], images, category_ids, report)
        report.counts[split] = {"images": len(data["images"]), "annotations": len(data["annotations"]),
                                "categories": len(category_ids), "bad_images": bad_images,
                                "bad_annotations": bad_anns}
    _check_same_categories(categories, report)
    return report


def _difficult(obj: ET.Element) -> tuple[bool, str | None]:
    """A VOC object's ``<difficult>`` (absent: 0; whitespace around the value ignored), or why it is not 0 or 1."""
    text = obj.findtext("difficult")
    if text is None:
        return False, None
    if text.strip() not in ("0", "1"):
        return False, f"<difficult> is {text!r}, not 0 or 1"
    return text.strip() == "1", None


def parse_voc(xml: Path, classes: tuple[str, ...] = VOC_CLASSES) -> tuple[dict[str, Any] | None, list[str]]:
    """One VOC annotation file: ``({width, height, objects: [{name, bbox (1-based xyxy), difficult}]}, problems)``;
    objects with a problem (a name not in ``classes``, VOC's 20 unless the profile lists its own) are left
    out of ``objects`` and named in ``problems``; None for unreadable XML."""
    try:
        root = ET.parse(xml).getroot()
    except ET.ParseError as err:
        return None, [f"{xml}: malformed XML ({err})"]
    size = root.find("size")
    try:
        width, height = float(size.findtext("width")), float(size.findtext("height"))
    except (AttributeError, TypeError, ValueError):
        return None, [f"{xml}: <size> with <width> and <height> missing or not numbers"]
    if not (width > 0 and height > 0):
        return None, [f"{xml}: <size> is {width:g}x{height:g}: width and height must be positive"]
    objects, problems = [], []
    for i, obj in enumerate(root.findall("object")):
        name = obj.findtext("name")
        if name not in classes:
            problems.append(f"{xml}: object {i}: unknown class {name!r} (" + (
                f"VOC has {len(VOC_CLASSES)} classes; a dataset of its own lists its classes in the profile's "
                "data.classes)" if classes == VOC_CLASSES else f"data.classes lists {list(classes)})"))
            continue
        try:
            box = [float(obj.find("bndbox").findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")]
        except (AttributeError, TypeError, ValueError):
            problems.append(f"{xml}: object {i}: <bndbox> missing or not numeric")
            continue
        difficult, difficult_problem = _difficult(obj)
        problem = _box_problem(*box, width, height) or difficult_problem
        if problem:
            problems.append(f"{xml}: object {i} ({name}): {problem}")
        else:
            objects.append({"name": name, "bbox": box, "difficult": difficult})
    return {"width": width, "height": height, "objects": objects}, problems


def _image_ids(ids_file: Path, report: CheckReport) -> list[str]:
    """The image ids an ImageSets file lists, each once; ids listed twice or more are named in ``report``."""
    ids = ids_file.read_text().split()
    for image_id, n in Counter(ids).items():
        if n > 1:
            report.problems.append(f"{ids_file}: id {image_id}: listed {n} times (it would be converted {n} times)")
    if not ids:
        report.problems.append(f"{ids_file}: lists no image ids")
    return list(dict.fromkeys(ids))


def voc_devkit(root: str | Path) -> Path:
    """``root/VOCdevkit`` if it exists, else ``root`` (either may be given): the folder holding ``VOC2007/``
    and ``VOC2012/``."""
    root = Path(root)
    return root / "VOCdevkit" if (root / "VOCdevkit").is_dir() else root


def check_voc(root: str | Path, verify_images: bool = False, classes: tuple[str, ...] = VOC_CLASSES) -> CheckReport:
    """Check a VOCdevkit tree (VOC2007 trainval + test, VOC2012 trainval): each split's ids listed once, each
    annotation file, and each split holding objects (not all difficult) to train or evaluate on.

    Every image's header is read, whatever ``verify_images`` (a few KB per file, no decoding): its pixel size
    must be the ``<size>`` of its annotation and it must carry no EXIF rotation. ``verify_images`` also decodes
    every image."""
    root = Path(root)
    devkit = voc_devkit(root)
    report = CheckReport("voc", str(root))
    for year, split in VOC_SPLITS:
        base = devkit / year
        ids_file = base / "ImageSets" / "Main" / f"{split}.txt"
        if not ids_file.is_file():
            report.problems.append(f"{ids_file}: missing (expected VOCdevkit/{year}/ImageSets/Main/{split}.txt)")
            continue
        ids = _image_ids(ids_file, report)
        bad, objects, usable = 0, 0, 0
        for image_id in ids:
            xml = base / "Annotations" / f"{image_id}.xml"
            if not xml.is_file():
                report.problems.append(f"{ids_file}: id {image_id}: annotation {xml} missing")
                bad += 1
                continue
            parsed, problems = parse_voc(xml, classes)
            report.problems += problems
            objects += len(parsed["objects"]) if parsed else 0
            usable += sum(not o["difficult"] for o in parsed["objects"]) if parsed else 0
            size = (parsed["width"], parsed["height"]) if parsed else None
            image_problems = _image_problems(base / "JPEGImages" / f"{image_id}.jpg", verify_images, size)
            report.problems += [f"{ids_file}: id {image_id}: {p}" for p in image_problems]
            bad += bool(problems or image_problems or parsed is None)
        if ids and not usable:
            report.problems.append(f"{ids_file}: its {len(ids)} images hold no usable objects ({objects} in all, the "
                                   "rest difficult or bad): nothing to train or evaluate on")
        report.counts[f"{year} {split}"] = {"images": len(ids), "objects": objects, "images_with_problems": bad}
    return report

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


def _box_problem(x1: float, y1: float, x2: float, y2: float, width: float, height: float) -> str | None:
    if any(math.isnan(v) or math.isinf(v) for v in (x1, y1, x2, y2)):
        return "box has NaN or infinite coordinates"
    if x2 <= x1 or y2 <= y1:
        return f"box has zero or negative size ({x1}, {y1}, {x2}, {y2})"
    if x1 < -1 or y1 < -1 or x2 > width + 1 or y2 > height + 1:
        return f"box ({x1}, {y1}, {x2}, {y2}) lies outside the {width}x{height} image"
    return None


def _image_problem(path: Path, verify: bool) -> str | None:
    if not path.is_file():
        return "image file missing"
    if verify:
        from PIL import Image

        try:
            with Image.open(path) as img:
                img.load()  # decodes every byte: catches truncated files that verify() lets through
        except Exception as err:  # PIL raises several types for corrupt data
            return f"image cannot be decoded ({err})"
    return None


def check_coco(root: str | Path, verify_images: bool = False) -> CheckReport:
    """Check a COCO 2017 tree; ``verify_images`` also decodes every image (slow on full COCO)."""
    root = Path(root)
    report = CheckReport("coco", str(root))
    for split in COCO_SPLITS:
        ann = root / "annotations" / f"instances_{split}.json"
        if not ann.is_file():
            report.problems.append(f"{ann}: missing (the COCO 2017 layout has annotations/instances_{split}.json)")
            continue
        if not (root / split).is_dir():
            report.problems.append(f"{root / split}: image folder missing")
        try:
            data = json.loads(ann.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            report.problems.append(f"{ann}: not valid JSON ({err})")
            continue
        missing_keys = [k for k in ("images", "annotations", "categories") if not isinstance(data.get(k), list)]
        if missing_keys:
            report.problems.append(f"{ann}: no list under {missing_keys}: not a COCO instances file")
            continue
        images = {img["id"]: img for img in data["images"]}
        categories = {c["id"] for c in data["categories"]}
        if not data["images"]:
            report.problems.append(f"{ann}: no images")
        bad_images = 0
        for img in data["images"]:
            problem = _image_problem(root / split / img["file_name"], verify_images)
            if problem:
                bad_images += 1
                report.problems.append(f"{ann}: image id {img['id']} ({img['file_name']}): {problem}")
        bad_anns = 0
        for a in data["annotations"]:
            where = f"{ann}: annotation id {a.get('id')}"
            img = images.get(a.get("image_id"))
            problem = None
            if img is None:
                problem = f"refers to image id {a.get('image_id')}, which is not in the file"
            elif a.get("category_id") not in categories:
                problem = f"unknown category id {a.get('category_id')}"
            else:
                x, y, w, h = (float(v) for v in a.get("bbox", [math.nan] * 4))
                problem = _box_problem(x, y, x + w, y + h, img["width"], img["height"])
            if problem:
                bad_anns += 1
                report.problems.append(f"{where}: {problem}")
        report.counts[split] = {"images": len(data["images"]), "annotations": len(data["annotations"]),
                                "categories": len(categories), "bad_images": bad_images,
                                "bad_annotations": bad_anns}
    return report


def parse_voc(xml: Path) -> tuple[dict[str, Any] | None, list[str]]:
    """One VOC annotation file: ``({width, height, objects: [{name, bbox (1-based xyxy), difficult}]}, problems)``;
    objects with a problem are left out of ``objects`` and named in ``problems``; None for unreadable XML."""
    try:
        root = ET.parse(xml).getroot()
    except ET.ParseError as err:
        return None, [f"{xml}: malformed XML ({err})"]
    size = root.find("size")
    try:
        width, height = float(size.findtext("width")), float(size.findtext("height"))
    except (AttributeError, TypeError, ValueError):
        return None, [f"{xml}: <size> with <width> and <height> missing or not numbers"]
    objects, problems = [], []
    for i, obj in enumerate(root.findall("object")):
        name = obj.findtext("name")
        if name not in VOC_CLASSES:
            problems.append(f"{xml}: object {i}: unknown class {name!r} (VOC has {len(VOC_CLASSES)} classes)")
            continue
        try:
            box = [float(obj.find("bndbox").findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")]
        except (AttributeError, TypeError, ValueError):
            problems.append(f"{xml}: object {i}: <bndbox> missing or not numeric")
            continue
        problem = _box_problem(*box, width, height)
        if problem:
            problems.append(f"{xml}: object {i} ({name}): {problem}")
        else:
            objects.append({"name": name, "bbox": box, "difficult": obj.findtext("difficult") == "1"})
    return {"width": width, "height": height, "objects": objects}, problems


def check_voc(root: str | Path, verify_images: bool = False) -> CheckReport:
    """Check a VOCdevkit tree (VOC2007 trainval + test, VOC2012 trainval)."""
    root = Path(root)
    devkit = root / "VOCdevkit" if (root / "VOCdevkit").is_dir() else root
    report = CheckReport("voc", str(root))
    for year, split in VOC_SPLITS:
        base = devkit / year
        ids_file = base / "ImageSets" / "Main" / f"{split}.txt"
        if not ids_file.is_file():
            report.problems.append(f"{ids_file}: missing (expected VOCdevkit/{year}/ImageSets/Main/{split}.txt)")
            continue
        ids = ids_file.read_text().split()
        bad, objects = 0, 0
        for image_id in ids:
            xml = base / "Annotations" / f"{image_id}.xml"
            if not xml.is_file():
                report.problems.append(f"{ids_file}: id {image_id}: annotation {xml} missing")
                bad += 1
                continue
            parsed, problems = parse_voc(xml)
            report.problems += problems
            objects += len(parsed["objects"]) if parsed else 0
            image_problem = _image_problem(base / "JPEGImages" / f"{image_id}.jpg", verify_images)
            if image_problem:
                report.problems.append(f"{ids_file}: id {image_id}: {image_problem}")
            bad += bool(problems or image_problem or parsed is None)
        report.counts[f"{year} {split}"] = {"images": len(ids), "objects": objects, "images_with_problems": bad}
    return report

"""The embedded dataset: generated images whose object boundaries are genuinely ambiguous.

Every object is a soft-edged shape (disc, square, triangle) drawn over a cluttered, shaded background.
Its annotated box is the exact extent of the geometric shape, but what the image shows of that extent
is blurred (an edge width drawn per object), cast in shadow on one side, partly covered by later
objects and surrounded by distractor blobs of similar colours. So the true edge positions are
uncertain in the image: the situation LD's edge distributions are meant to model.

Image ``i`` of a split depends only on ``(seed, split, i)``: a larger dataset extends a smaller one,
and the same seed gives the same bytes. The dataset is written once in two layouts over the same
JPEG files: COCO (``annotations/instances_{split}.json``) and VOC (``Annotations/*.xml``,
``ImageSets/Main/{split}.txt``, ``JPEGImages/``).
"""
from __future__ import annotations

import io
import math
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from ld.errors import ConfigError
from ld.io import atomic_write_bytes, atomic_write_json

CLASSES: tuple[str, ...] = ("disc", "square", "triangle")
SPLITS: tuple[str, ...] = ("train", "val")
_SPLIT_STREAM = {"train": 0, "val": 1}


@dataclass(frozen=True)
class SynthSpec:
    """What the generator makes; every field is a profile value (``params.yaml: profiles.<p>.data``)."""

    num_train: int = 64
    num_val: int = 32
    image_size: int = 96
    max_objects: int = 4
    seed: int = 2026
    jpeg_quality: int = 90
    max_occlusion: float = 0.6

    def __post_init__(self) -> None:
        for name in ("num_train", "num_val", "image_size", "max_objects"):
            if getattr(self, name) < 1:
                raise ConfigError(f"data.{name} must be >= 1, got {getattr(self, name)}")
        if self.image_size < 32:
            raise ConfigError(f"data.image_size must be >= 32 pixels, got {self.image_size}")
        if not 0.0 < self.max_occlusion < 1.0:
            raise ConfigError(f"data.max_occlusion must lie in (0, 1), got {self.max_occlusion}")


@dataclass(frozen=True)
class SynthObject:
    """One annotated object: class, amodal box (x1, y1, x2, y2) and how ambiguous its edges are."""

    label: int
    box: tuple[float, float, float, float]
    edge_width: float
    occlusion: float


def _polygon_sdf(xx: np.ndarray, yy: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Signed distance (negative inside) to a convex polygon, vertices (V, 2) in clockwise order."""
    d = np.full(xx.shape, -np.inf)
    for (x0, y0), (x1, y1) in zip(vertices, np.roll(vertices, -1, axis=0)):
        nx, ny = -(y1 - y0), x1 - x0  # outward normal of a clockwise edge
        norm = math.hypot(nx, ny)
        d = np.maximum(d, ((xx - x0) * nx + (yy - y0) * ny) / norm)
    return d


def _shape(rng: np.random.Generator, label: int, size: int) -> tuple[callable, np.ndarray]:
    """Draw one shape: a signed-distance function and the (4,) xyxy box of its exact extent."""
    r = rng.uniform(0.08, 0.28) * size
    cx, cy = rng.uniform(0.1 * size, 0.9 * size, 2)
    theta = rng.uniform(0, 2 * math.pi)
    if CLASSES[label] == "disc":
        a, b = r, r * rng.uniform(0.7, 1.0)
        c, s = math.cos(theta), math.sin(theta)

        def sdf(xx, yy):
            u, v = (xx - cx) * c + (yy - cy) * s, -(xx - cx) * s + (yy - cy) * c
            return (np.sqrt((u / a) ** 2 + (v / b) ** 2) - 1.0) * min(a, b)

        hx, hy = math.hypot(a * c, b * s), math.hypot(a * s, b * c)
        return sdf, np.array([cx - hx, cy - hy, cx + hx, cy + hy])
    n = 4 if CLASSES[label] == "square" else 3
    angles = theta - np.arange(n) * 2 * math.pi / n  # clockwise
    vertices = np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles)], axis=1)
    box = np.concatenate([vertices.min(0), vertices.max(0)])
    return (lambda xx, yy: _polygon_sdf(xx, yy, vertices)), box


def _background(rng: np.random.Generator, size: int, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """A shaded gradient with unannotated clutter blobs and sensor noise: (H, W, 3) in [0, 1]."""
    base = rng.uniform(0.2, 0.8, 3)
    slope = rng.uniform(-0.3, 0.3, (2, 3))
    img = base + (xx[..., None] / size - 0.5) * slope[0] + (yy[..., None] / size - 0.5) * slope[1]
    for _ in range(rng.integers(2, 7)):
        bx, by = rng.uniform(0, size, 2)
        br = rng.uniform(0.03, 0.12) * size
        blob = np.exp(-((xx - bx) ** 2 + (yy - by) ** 2) / (2 * br**2))
        img = img * (1 - 0.8 * blob[..., None]) + rng.uniform(0, 1, 3) * 0.8 * blob[..., None]
    return img


def render_image(spec: SynthSpec, split: str, index: int) -> tuple[np.ndarray, list[SynthObject]]:
    """Render image ``index`` of ``split``: (H, W, 3) uint8 and its objects, in drawing order."""
    rng = np.random.default_rng([spec.seed, _SPLIT_STREAM[split], index])
    size = spec.image_size
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    img = _background(rng, size, yy, xx)
    masks, drawn = [], []
    for _ in range(int(rng.integers(1, spec.max_objects + 1))):
        label = int(rng.integers(len(CLASSES)))
        sdf, box = _shape(rng, label, size)
        box = np.clip(box, 0, size)
        if min(box[2] - box[0], box[3] - box[1]) < 4:
            continue
        edge = float(rng.uniform(0.3, 3.0))  # soft edge: sigmoid width in pixels
        dist = sdf(xx, yy)
        mask = 1.0 / (1.0 + np.exp(np.clip(dist / edge, -50, 50)))
        # A shadow offset towards a random side darkens the background next to one or two edges.
        sx, sy = rng.uniform(-0.08, 0.08, 2) * size
        shadow = 1.0 / (1.0 + np.exp(np.clip(sdf(xx - sx, yy - sy) / (2 * edge + 1), -50, 50)))
        img = img * (1 - 0.45 * shadow[..., None])
        colour = rng.uniform(0, 1, 3)
        texture = 1 + 0.15 * rng.standard_normal((size, size, 1))
        img = img * (1 - mask[..., None]) + (colour * texture) * mask[..., None]
        masks.append(mask)
        drawn.append((label, box, edge))
    objects = []
    for i, (label, box, edge) in enumerate(drawn):
        covered = np.zeros_like(masks[i])
        for later in masks[i + 1:]:
            covered = np.maximum(covered, later)
        area = masks[i].sum()
        occlusion = float((masks[i] * covered).sum() / max(area, 1e-6))
        if occlusion <= spec.max_occlusion:
            objects.append(SynthObject(label, tuple(round(float(v), 2) for v in box), round(edge, 3),
                                       round(occlusion, 3)))
    img = img + 0.03 * rng.standard_normal(img.shape)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8), objects


def _voc_xml(file_name: str, size: int, objects: list[SynthObject]) -> bytes:
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = "JPEGImages"
    ET.SubElement(root, "filename").text = file_name
    sz = ET.SubElement(root, "size")
    for tag, val in (("width", size), ("height", size), ("depth", 3)):
        ET.SubElement(sz, tag).text = str(val)
    ET.SubElement(root, "segmented").text = "0"
    for obj in objects:
        o = ET.SubElement(root, "object")
        ET.SubElement(o, "name").text = CLASSES[obj.label]
        ET.SubElement(o, "pose").text = "Unspecified"
        ET.SubElement(o, "truncated").text = "0"
        ET.SubElement(o, "difficult").text = "0"
        ET.SubElement(o, "occlusion").text = f"{obj.occlusion:.3f}"
        ET.SubElement(o, "edge_width").text = f"{obj.edge_width:.3f}"
        bb = ET.SubElement(o, "bndbox")
        # VOC boxes are 1-based inclusive pixel indices.
        x1, y1, x2, y2 = obj.box
        for tag, val in (("xmin", x1 + 1), ("ymin", y1 + 1), ("xmax", x2), ("ymax", y2)):
            ET.SubElement(bb, tag).text = str(max(1, int(round(val))))
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def write_dataset(root: str | Path, spec: SynthSpec, show_progress: bool = True) -> dict:
    """Write the dataset under ``root`` in both layouts; returns a summary (also ``root/meta.json``)."""
    root = Path(root)
    categories = [{"id": i + 1, "name": n, "supercategory": "shape"} for i, n in enumerate(CLASSES)]
    summary = {"spec": asdict(spec), "classes": list(CLASSES), "splits": {}}
    for split in SPLITS:
        count = spec.num_train if split == "train" else spec.num_val
        images, annotations, ids = [], [], []
        for index in tqdm(range(count), desc=f"synth {split}", disable=not show_progress):
            pixels, objects = render_image(spec, split, index)
            stem = f"{split}_{index:06d}"
            buf = io.BytesIO()
            Image.fromarray(pixels).save(buf, format="JPEG", quality=spec.jpeg_quality)
            atomic_write_bytes(root / "JPEGImages" / f"{stem}.jpg", buf.getvalue())
            atomic_write_bytes(root / "Annotations" / f"{stem}.xml",
                               _voc_xml(f"{stem}.jpg", spec.image_size, objects))
            image_id = len(images) + 1
            images.append({"id": image_id, "file_name": f"{stem}.jpg",
                           "width": spec.image_size, "height": spec.image_size})
            ids.append(stem)
            for obj in objects:
                x1, y1, x2, y2 = obj.box
                w, h = round(x2 - x1, 2), round(y2 - y1, 2)
                annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                    "category_id": obj.label + 1, "bbox": [x1, y1, w, h],
                                    "area": round(w * h, 2), "iscrowd": 0,
                                    "occlusion": obj.occlusion, "edge_width": obj.edge_width})
        atomic_write_json(root / "annotations" / f"instances_{split}.json",
                          {"images": images, "annotations": annotations, "categories": categories})
        atomic_write_bytes(root / "ImageSets" / "Main" / f"{split}.txt",
                           ("\n".join(ids) + "\n").encode())
        summary["splits"][split] = {"images": len(images), "objects": len(annotations)}
    atomic_write_json(root / "meta.json", summary)
    return summary

"""The teacher soft-target cache ("offline LD").

A frozen teacher's outputs depend only on the image and its augmentation. Where the augmentation is
deterministic up to a flip (the paper's 1x recipe: a fixed resize and a random horizontal flip), they
can be computed once and reused every epoch. Only what the losses read is stored: the teacher's box
logits (and, with KD, class logits) at the locations of the main region and the VLR, which depend on
the ground truth and the anchors alone, as float16, keyed by image id, flip and padded input shape.

A cache belongs to one teacher checkpoint, one augmentation and one set of regions (its
*fingerprint*, kept in ``meta.json``); opening it with another is refused, as is an entry whose
locations differ from the ones a step needs (the ground truth or the anchors changed). It is never
silently used for something else.
"""
from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ld.errors import ConfigError, LDError
from ld.io import atomic_write_bytes, atomic_write_json

FORMAT = 1
# Transforms whose output is fixed given the image (and the flip, which is part of the key).
DETERMINISTIC_TRANSFORMS = frozenset({
    "LoadImageFromFile", "LoadAnnotations", "Resize", "RandomFlip", "PackDetInputs", "FilterAnnotations",
    "Pad", "Normalize"})


class StaleCacheError(LDError):
    """A teacher cache that does not match the teacher, the augmentation or the step's locations."""


def check_deterministic(pipeline: list[dict[str, Any]]) -> None:
    """Refuse a training pipeline with random augmentation other than the flip (multi-scale resize,
    crops, colour jitter...): its teacher outputs change every epoch, so online LD is the only right one."""
    for step in pipeline:
        kind = step.get("type")
        random_resize = kind == "Resize" and (isinstance(step.get("scale"), list) or step.get("ratio_range"))
        if kind not in DETERMINISTIC_TRANSFORMS or random_resize:
            raise ConfigError(f"the teacher cache needs a deterministic training pipeline (a fixed Resize and "
                              f"RandomFlip), but it has {step}: train with online LD (ld.teacher_cache: false)")


def fingerprint_digest(fingerprint: dict[str, Any]) -> str:
    """A short stable digest of a fingerprint (used to name automatic cache folders)."""
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True, default=str).encode()).hexdigest()[:12]


@dataclass
class CacheEntry:
    """One image's stored soft targets: ``index`` (N,) flat anchor indices, ``reg`` (N, 4 * (reg_max + 1))
    and ``cls`` (N, num_classes) or None, float16."""

    index: Tensor
    reg: Tensor
    cls: Tensor | None


class TeacherCache:
    """Soft targets on disk, one file per (image, flip, padded shape), written atomically.

    Args:
        root: the cache folder (created; its ``meta.json`` holds the fingerprint).
        fingerprint: what the targets depend on: teacher checkpoint digest, augmentation, regions, ...
    """

    def __init__(self, root: str | Path, fingerprint: dict[str, Any]) -> None:
        self.root = Path(root)
        self.fingerprint = json.loads(json.dumps({"format": FORMAT, **fingerprint}, sort_keys=True, default=str))
        meta = self.root / "meta.json"
        if meta.is_file():
            try:
                stored = json.loads(meta.read_text())
            except json.JSONDecodeError as err:
                raise StaleCacheError(f"{meta} is not JSON ({err}): delete {self.root} to rebuild the cache") from err
            if stored != self.fingerprint:
                changed = sorted(k for k in {*stored, *self.fingerprint} if stored.get(k) != self.fingerprint.get(k))
                raise StaleCacheError(
                    f"teacher cache {self.root} was written for another {', '.join(changed)} "
                    f"(stored {[stored.get(k) for k in changed]}, now {[self.fingerprint.get(k) for k in changed]}); "
                    f"refusing to use it: delete {self.root} or choose another cache folder")
        else:
            atomic_write_json(meta, self.fingerprint)
        self.hits = 0
        self.misses = 0
        self.bytes_written = 0

    @staticmethod
    def key(img_id: Any, flip: bool, flip_direction: str | None, input_shape: tuple[int, int]) -> str:
        """The entry name of an image as seen in one step."""
        flipped = flip_direction if flip else "noflip"
        return f"{img_id}_{flipped}_{input_shape[0]}x{input_shape[1]}"

    def _path(self, key: str) -> Path:
        return self.root / f"{key}.pt"

    def get(self, key: str, index: Tensor) -> CacheEntry | None:
        """The entry of ``key`` if stored (counted as a hit), else None (a miss). The stored locations must
        be exactly ``index`` (the step's needed flat anchor indices, ascending), else StaleCacheError."""
        path = self._path(key)
        if not path.is_file():
            self.misses += 1
            return None
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # a truncated or foreign file: name it
            raise StaleCacheError(f"teacher cache entry {path} cannot be read ({err}): delete it") from err
        entry = CacheEntry(data["index"].long(), data["reg"], data.get("cls"))
        if not torch.equal(entry.index, index.cpu()):
            raise StaleCacheError(
                f"teacher cache entry {path} holds {entry.index.numel()} locations, but this step needs "
                f"{index.numel()} others: the ground truth, the anchors or the augmentation changed since it "
                f"was written; delete {self.root} to rebuild the cache")
        self.hits += 1
        return entry

    def put(self, key: str, index: Tensor, reg: Tensor, cls: Tensor | None = None) -> CacheEntry:
        """Store an image's targets at ``index`` (float16) and return them as stored."""
        entry = CacheEntry(index.detach().cpu().int(), reg.detach().cpu().half(),
                           None if cls is None else cls.detach().cpu().half())
        buf = io.BytesIO()
        torch.save({"index": entry.index, "reg": entry.reg, "cls": entry.cls}, buf)
        atomic_write_bytes(self._path(key), buf.getvalue())
        self.bytes_written += buf.tell()
        entry.index = entry.index.long()
        return entry

    def stats(self) -> dict[str, float]:
        """Hits, misses and stored files/bytes."""
        files = list(self.root.glob("*.pt"))
        return {"hits": self.hits, "misses": self.misses, "files": len(files),
                "bytes": sum(f.stat().st_size for f in files)}

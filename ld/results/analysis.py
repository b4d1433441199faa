"""Box distributions of trained detectors: what the ambiguity notebook computes and draws.

For each detection of a model we keep the anchor it came from and its four edge distributions, so the
same location can be read in a teacher (teacher vs student KL per edge), and match it to a ground
truth to know the object's class, size and occlusion.
"""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ld.ops.ambiguity import (
    EDGES,
    edge_probabilities,
    entropy,
    expected_offset,
    kl_divergence,
    normalized_entropy,
    top_gap,
)
from ld.ops.box_ops import box_iou
from ld.ops.distillation import flatten_levels


def load_model(run_dir: str | Path) -> nn.Module:
    """The detector of an exported run (its student alone), in eval mode on the CPU, its config as ``model.cfg``
    (:func:`ld.models.distiller.build_student`)."""
    from ld.models.distiller import build_student

    run_dir = Path(run_dir)
    return build_student(run_dir / "config.py", run_dir / "model.pth")


def val_loader(model: nn.Module):
    """The model's test dataloader (its config's validation split), one image per batch."""
    from mmengine.runner import Runner

    loader_cfg = model.cfg.test_dataloader.copy()
    loader_cfg.batch_size = 1
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its loading time
        return Runner.build_dataloader(loader_cfg)


@torch.no_grad()
def head_outputs(model: nn.Module, data: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flattened head outputs of a preprocessed batch, in anchor order.

    Returns ``scores (B, A, C)`` (sigmoid of the joint score), ``logits (B, A, 4 * (reg_max + 1))``,
    ``centers (A, 2)`` and ``strides (A,)`` of the anchors.
    """
    head = model.bbox_head
    cls_scores, bbox_preds = head(model.extract_feat(data["inputs"]))

    sizes = [c.shape[-2:] for c in cls_scores]
    device = cls_scores[0].device
    centers = head.anchor_center(torch.cat(head.prior_generator.grid_priors(sizes, device=device)))
    strides = torch.cat([torch.full((int(h) * int(w),), float(st[0]), device=device)
                         for (h, w), st in zip(sizes, head.prior_generator.strides)])
    return flatten_levels(cls_scores).sigmoid(), flatten_levels(bbox_preds), centers, strides


@torch.no_grad()
def predict_with_distributions(model: nn.Module, data: dict, score_thr: float = 0.3, iou_threshold: float = 0.6,
                               max_per_img: int = 100) -> list[dict[str, Any]]:
    """Detections of a preprocessed batch with the anchor and edge logits each came from.

    Per image: ``bboxes (K, 4)`` xyxy in original image pixels, ``scores (K,)``, ``labels (K,)``,
    ``anchor (K,)`` indices into the flattened anchors, ``logits (K, 4 * (reg_max + 1))``, ``stride (K,)``,
    ``scale (2,)`` the (w, h) resize factor of the image.
    """
    from mmcv.ops import batched_nms

    scores, logits, centers, strides = head_outputs(model, data)
    reg_max = model.bbox_head.reg_max
    out = []
    for i, sample in enumerate(data["data_samples"]):
        best, labels = scores[i].max(dim=1)
        idx = torch.nonzero(best > score_thr).squeeze(1)
        idx = idx[best[idx].argsort(descending=True)[:1000]]
        offsets = expected_offset(edge_probabilities(logits[i, idx], reg_max)) * strides[idx, None]  # (N, 4)
        c = centers[idx]
        h, w = sample.metainfo["img_shape"]
        boxes = torch.stack([c[:, 0] - offsets[:, 0], c[:, 1] - offsets[:, 1],
                             c[:, 0] + offsets[:, 2], c[:, 1] + offsets[:, 3]], dim=1)
        boxes = torch.stack([boxes[:, 0].clamp(0, w), boxes[:, 1].clamp(0, h),
                             boxes[:, 2].clamp(0, w), boxes[:, 3].clamp(0, h)], dim=1)  # as GFL's decoder
        if len(idx):
            _, keep = batched_nms(boxes, best[idx], labels[idx], dict(type="nms", iou_threshold=iou_threshold))
            keep = keep[:max_per_img]
        else:
            keep = idx
        scale = torch.tensor(sample.metainfo["scale_factor"], dtype=boxes.dtype)
        kept = idx[keep]
        out.append({"img_id": sample.metainfo["img_id"], "img_path": sample.metainfo["img_path"],
                    "bboxes": boxes[keep] / scale.repeat(2), "scores": best[kept], "labels": labels[kept],
                    "anchor": kept, "logits": logits[i, kept], "stride": strides[kept], "scale": scale})
    return out


def _gt_by_image(ann_file: str | Path) -> dict[int, list[dict[str, Any]]]:
    coco = json.loads(Path(ann_file).read_text())
    by_image: dict[int, list[dict[str, Any]]] = {img["id"]: [] for img in coco["images"]}
    cat_index = {c["id"]: i for i, c in enumerate(sorted(coco["categories"], key=lambda c: c["id"]))}
    for a in coco["annotations"]:
        by_image[a["image_id"]].append({**a, "label": cat_index[a["category_id"]]})
    return by_image


def size_range(area: float) -> str:
    """COCO's size ranges: small < 32^2 <= medium < 96^2 <= large (pixels)."""
    return "small" if area < 32**2 else "medium" if area < 96**2 else "large"


def ambiguity_table(models: dict[str, nn.Module], teacher: str | None = None, num_images: int | None = None,
                    score_thr: float = 0.3, match_iou: float = 0.5) -> pd.DataFrame:
    """One row per (model, detection, edge) on the validation split of the first model.

    Columns: ``model, img_id, label, score, edge, entropy, norm_entropy, top_gap, kl_to_teacher`` and, for
    detections matched to a ground truth of the same class (IoU >= ``match_iou``), ``iou, size,
    occlusion, edge_width`` of that object (NaN otherwise). ``kl_to_teacher`` is KL(teacher || model)
    of the edge distributions at the detection's own anchor (models must share the anchor grid).
    """
    first = next(iter(models.values()))
    reg_max = first.bbox_head.reg_max
    gts = _gt_by_image(first.cfg.test_evaluator.ann_file)
    rows = []
    for n, batch in enumerate(val_loader(first)):
        if num_images is not None and n >= num_images:
            break
        data = first.data_preprocessor(batch, False)
        teacher_logits = head_outputs(models[teacher], data)[1][0] if teacher else None
        for name, model in models.items():
            det = predict_with_distributions(model, data, score_thr=score_thr)[0]
            probs = edge_probabilities(det["logits"], reg_max)  # (K, 4, bins)
            kl = (kl_divergence(edge_probabilities(teacher_logits[det["anchor"]], reg_max), probs)
                  if teacher_logits is not None else torch.full(probs.shape[:2], float("nan")))
            image_gts = gts.get(det["img_id"], [])
            gt_boxes = torch.tensor([[g["bbox"][0], g["bbox"][1], g["bbox"][0] + g["bbox"][2],
                                      g["bbox"][1] + g["bbox"][3]] for g in image_gts]).reshape(-1, 4)
            ious = box_iou(det["bboxes"], gt_boxes) if len(image_gts) else torch.zeros(len(det["bboxes"]), 0)
            ent, nent, gap = entropy(probs), normalized_entropy(probs), top_gap(probs)
            for k in range(len(det["bboxes"])):
                label = int(det["labels"][k])
                same = [j for j, g in enumerate(image_gts) if g["label"] == label and ious[k, j] >= match_iou]
                gt = max(same, key=lambda j: ious[k, j]) if same else None
                info = ({"iou": float(ious[k, gt]), "size": size_range(image_gts[gt]["area"]),
                         "occlusion": image_gts[gt].get("occlusion", np.nan),
                         "edge_width": image_gts[gt].get("edge_width", np.nan)} if gt is not None else
                        {"iou": np.nan, "size": None, "occlusion": np.nan, "edge_width": np.nan})
                for e, edge in enumerate(EDGES):
                    rows.append({"model": name, "img_id": det["img_id"], "label": label,
                                 "score": float(det["scores"][k]), "edge": edge, "entropy": float(ent[k, e]),
                                 "norm_entropy": float(nent[k, e]), "top_gap": float(gap[k, e]),
                                 "kl_to_teacher": float(kl[k, e]), **info})
    return pd.DataFrame(rows)


def draw_edge_distributions(image: np.ndarray, det: dict[str, Any], k: int, reg_max: int = 16,
                            gt_box: list[float] | None = None, title: str = ""):
    """The paper's figure for one detection: the image with the box, and each edge's probability over
    its position in pixels beside it (predicted edge: dashed; ground truth: green)."""
    import matplotlib.pyplot as plt

    probs = edge_probabilities(det["logits"][k:k + 1], reg_max)[0].numpy()  # (4, bins)
    box = det["bboxes"][k].numpy()
    stride = float(det["stride"][k])
    sx, sy = det["scale"].numpy()
    fig = plt.figure(figsize=(9, 3.6))
    grid = fig.add_gridspec(2, 3)
    ax = fig.add_subplot(grid[:, 0])
    ax.imshow(image)
    ax.add_patch(plt.Rectangle(box[:2], box[2] - box[0], box[3] - box[1], fill=False, color="red", lw=1.5))
    if gt_box is not None:
        ax.add_patch(plt.Rectangle(gt_box[:2], gt_box[2] - gt_box[0], gt_box[3] - gt_box[1], fill=False,
                                   color="lime", lw=1, ls="--"))
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    bins = np.arange(reg_max + 1)
    # left and top offsets grow away from the anchor centre towards smaller coordinates
    directions = (-1, -1, 1, 1)
    for e, edge in enumerate(EDGES):
        a = fig.add_subplot(grid[e // 2, 1 + e % 2])
        scale = sx if e in (0, 2) else sy
        expected = float((probs[e] * bins).sum())
        positions = box[e] + directions[e] * (bins - expected) * stride / scale  # pixels of the original image
        a.plot(positions, probs[e], color="C0")
        a.fill_between(positions, probs[e], alpha=0.3)
        a.axvline(box[e], color="red", ls="--", lw=1)
        if gt_box is not None:
            a.axvline(gt_box[e], color="green", lw=1)
        a.set_title(f"{edge} edge: entropy {float(entropy(torch.tensor(probs[e]))):.2f}", fontsize=8)
        a.set_xlabel("x (px)" if e in (0, 2) else "y (px)", fontsize=7)
        a.tick_params(labelsize=6)
    fig.tight_layout()
    return fig

"""The LD paper's Fig. 1: one object, each model's box for it and each edge's distribution, in pixels.

A GFocal head predicts each box edge as a distribution over the positions it can take. For one object the
figure shows, model beside model, a crop of the image around it with the reference box (the ground truth,
solid black) and the model's box (dashed, one colour per edge), and every edge's distribution drawn in the
image's own pixel coordinates, each in a strip of its own: the left and the right edge (positions along x)
in two strips above the crop that share its x axis, the top and the bottom edge (positions along y) in two
strips right of it that share its y axis. A peak therefore lies in line with the edge it predicts, and the
reference's edge, drawn across its strip, shows where the mass should be.

:func:`matched_objects` finds, for each ground-truth object, every model's detection matched to it
(:func:`match_detection`), or its box that best covers the object where it has no detection;
:func:`pick_examples` chooses which objects to draw; :func:`draw_object_distributions` draws one object.
:func:`role_labels`, :func:`role_colors` and :func:`by_role` name and colour the analysis' three models
(teacher, baseline, LD student) alike in every figure of the ambiguity notebook.
"""
from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ld.io import atomic_write_bytes
from ld.ops.ambiguity import normalized_entropy
from ld.ops.box_ops import box_iou
from ld.ops.distribution import EDGES, edge_probabilities
from ld.results.analysis import edge_bin_positions, ground_truth_by_image, predict_with_distributions, val_batches
from ld.results.tables import ROLE_COLORS, ROLES, wrap_title

if TYPE_CHECKING:
    from matplotlib.figure import Figure

EDGE_COLORS = {"left": "#0072B2", "top": "#CC79A7", "right": "#D55E00", "bottom": "#E69F00"}  # Okabe-Ito
REFERENCE_COLOR = "black"
_REFERENCE_WIDTH = 2.0  # the reference box: a black line with a thin white outline (it stays black on any image)
_EDGE_WIDTH = 1.6
_LEGEND_TITLE = "dashed: the model's edge; bars: its distribution over the edge's position, one strip per edge"

# The analysis' models by role (params.yaml: analysis), in this order in every plot, coloured as every
# figure colours runs by role (ld.results.tables.ROLE_COLORS: the teacher grey), named as the paper does.
ROLE_NAMES = {"teacher": "teacher", "baseline": "baseline", "student": "LD student"}

# Layout, in inches: the crop's longer side, each strip's depth and the margins around a panel.
_SIDE, _STRIP, _GAP = 2.6, 0.55, 0.06
_LEFT, _RIGHT, _BOTTOM, _TOP, _SUPTITLE = 0.6, 0.3, 0.5, 0.62, 0.32
_LEGEND_ENTRY_WIDTH, _LEGEND_ROW = 1.6, 0.24


@dataclass(frozen=True)
class BoxDistributions:
    """One detection in original image pixels: ``box (4,)`` xyxy, ``probs (4, reg_max + 1)`` its edge
    distributions (left, top, right, bottom), ``positions (4, reg_max + 1)`` where each bin puts its edge
    (x for left and right, y for top and bottom), ``score`` and ``label`` its class score and index."""

    box: np.ndarray
    probs: np.ndarray
    positions: np.ndarray
    score: float
    label: int

    def entropies(self) -> np.ndarray:
        """Normalised entropy ``(4,)`` of each edge: 0 a certain edge, 1 a uniform distribution."""
        return normalized_entropy(torch.as_tensor(self.probs)).numpy()


def box_distributions(det: dict[str, Any], k: int, reg_max: int = 16) -> BoxDistributions:
    """Detection ``k`` of one image's :func:`~ld.results.analysis.predict_with_distributions` output."""
    positions = edge_bin_positions(det["center"][k:k + 1], det["stride"][k:k + 1], det["scale"], reg_max)[0]
    return BoxDistributions(box=det["bboxes"][k].numpy(), probs=edge_probabilities(det["logits"][k], reg_max).numpy(),
                            positions=positions.numpy(), score=float(det["scores"][k]), label=int(det["labels"][k]))


def match_detection(det: dict[str, Any], gt_box: Sequence[float] | np.ndarray, label: int | None = None, *,
                    score_thr: float = 0.0, min_iou: float = 0.5) -> int | None:
    """Index of the detection of ``det`` (``bboxes (K, 4)``, ``scores (K,)`` sorted high to low, ``labels (K,)``)
    that matches ``gt_box`` (xyxy): the highest IoU among those of class ``label`` (any class if None)
    scoring at least ``score_thr``, the higher-scoring one on a tie; None if none reaches ``min_iou``.

    Example: boxes ``[[0, 0, 10, 10], [1, 0, 10, 10], [0, 0, 10, 10]]``, labels ``[1, 0, 0]``, gt
    ``[0, 0, 10, 10]`` of class 0: detection 2 (detection 0 overlaps exactly but is of class 1).
    """
    if not len(det["bboxes"]):
        return None
    gt = torch.as_tensor(np.asarray(gt_box, dtype=np.float32)).reshape(1, 4)
    ious = box_iou(det["bboxes"].float(), gt)[:, 0]
    candidate = det["scores"] >= score_thr
    if label is not None:
        candidate &= det["labels"] == label
    ious = torch.where(candidate, ious, torch.full_like(ious, -1.0))
    best = int(ious.argmax())  # the first of equal maxima: the higher score
    return best if ious[best] >= min_iou else None


@dataclass(frozen=True)
class MatchedObject:
    """A ground-truth object (``gt_box (4,)`` xyxy, ``label``) of image ``img_path`` and each model's box for
    it (None: none overlaps it); ``detected[model]``: that box is a detection of the object (its class,
    above the score threshold), not only the model's box that best covers it."""

    img_path: str
    gt_box: np.ndarray
    label: int
    matches: dict[str, BoxDistributions | None]
    detected: dict[str, bool]


def matched_objects(models: Mapping[str, nn.Module], num_images: int | None = None, score_thr: float = 0.1,
                    min_iou: float = 0.5, cover_iou: float = 0.1) -> list[MatchedObject]:
    """Every ground-truth object of the first ``num_images`` images of the first model's validation split,
    in dataset order, with each model's box for it: its detection (:func:`match_detection`: its class,
    score >= ``score_thr``, IoU >= ``min_iou``), else, where it has none, its box of any class and score
    that best covers the object (IoU >= ``cover_iou``; boxes after NMS). Crowd regions are skipped."""
    first = next(iter(models.values()))
    gts = ground_truth_by_image(first.cfg.test_evaluator.ann_file)
    objects = []
    for data in val_batches(first, num_images):
        dets = {name: predict_with_distributions(model, data, score_thr=0.0)[0] for name, model in models.items()}
        image = next(iter(dets.values()))
        for gt in gts.get(image["img_id"], []):
            if gt.get("iscrowd"):
                continue
            x, y, w, h = gt["bbox"]
            gt_box = np.array([x, y, x + w, y + h], dtype=np.float32)
            matches, detected = {}, {}
            for name, det in dets.items():
                k = match_detection(det, gt_box, gt["label"], score_thr=score_thr, min_iou=min_iou)
                detected[name] = k is not None
                k = k if k is not None else match_detection(det, gt_box, min_iou=cover_iou)
                matches[name] = None if k is None else box_distributions(det, k, models[name].bbox_head.reg_max)
            objects.append(MatchedObject(image["img_path"], gt_box, gt["label"], matches, detected))
    return objects


def pick_examples(objects: Sequence[MatchedObject], n: int, rank_by: str) -> list[MatchedObject]:
    """``n`` objects every model has a box for: those detected by the most models first, and among them
    those on which model ``rank_by``'s edges are the most ambiguous (highest mean normalised entropy of its
    four edge distributions); ties keep the dataset order."""
    covered = [o for o in objects if all(m is not None for m in o.matches.values())]
    return sorted(covered, key=lambda o: (-sum(o.detected.values()),
                                          -float(o.matches[rank_by].entropies().mean())))[:n]


def object_view(boxes: np.ndarray, margin: float = 0.35, min_margin: float = 4.0,
                max_aspect: float = 2.0) -> tuple[float, float, float, float]:
    """The neighbourhood of an object to draw, ``(x0, y0, x1, y1)`` in pixels: the union of ``boxes (N, 4)``
    xyxy widened on every side by ``margin`` times its longer side (at least ``min_margin`` pixels), then
    its shorter side widened about its centre to at most ``max_aspect`` : 1.

    Example: ``[[10, 20, 30, 30]]`` -> pad 7 -> ``(3, 13, 37, 37)`` (34 x 24, within 2 : 1).
    """
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    x0, y0 = boxes[:, :2].min(axis=0)
    x1, y1 = boxes[:, 2:].max(axis=0)
    pad = max(margin * max(x1 - x0, y1 - y0), min_margin)
    x0, y0, x1, y1 = x0 - pad, y0 - pad, x1 + pad, y1 + pad
    grow_x = max((y1 - y0) / max_aspect - (x1 - x0), 0.0) / 2
    grow_y = max((x1 - x0) / max_aspect - (y1 - y0), 0.0) / 2
    return float(x0 - grow_x), float(y0 - grow_y), float(x1 + grow_x), float(y1 + grow_y)


def role_labels(roles: Mapping[str, str]) -> dict[str, str]:
    """run -> how every figure names it, 'teacher (gfl_r50_2x)', 'baseline (gfl_r18_1x)', 'LD student
    (ld_r18_gfl_r50_1x)', in the order teacher, baseline, student; ``roles``: role -> run (params.yaml:
    analysis). A run in two roles is named by both: 'teacher = baseline (gfl_r18_1x)' (Self-LD)."""
    names: dict[str, list[str]] = {}
    for role in ROLES:
        names.setdefault(roles[role], []).append(ROLE_NAMES[role])
    return {run: f"{' = '.join(named)} ({run})" for run, named in names.items()}


def role_colors(roles: Mapping[str, str]) -> dict[str, str]:
    """run -> its colour in every figure, by its (first) role: :data:`ROLE_COLORS`."""
    colors: dict[str, str] = {}
    for role in ROLES:
        colors.setdefault(roles[role], ROLE_COLORS[role])
    return colors


def by_role(frame, roles: Mapping[str, str]):
    """``frame`` (a DataFrame with a column per run, e.g. a groupby's ``unstack()``) with its columns in the
    order teacher, baseline, student and named by :func:`role_labels`; the colours to plot them with,
    in that order. Runs of ``roles`` missing from ``frame`` are left out."""
    labels, colors = role_labels(roles), role_colors(roles)
    runs = [run for run in labels if run in frame.columns]
    return frame[runs].rename(columns=labels), [colors[run] for run in runs]


def _outlined(width: float, outline: str = "white", pad: float = 2.2) -> list:
    from matplotlib import patheffects

    return [patheffects.withStroke(linewidth=width + pad, foreground=outline)]


def _anchor_style() -> dict[str, Any]:
    return dict(color="white", ls="none", marker="+", ms=9, mew=1.8, path_effects=_outlined(1.8, "black"))


def _reference_style() -> dict[str, Any]:
    """The reference box in the crop and in the legend alike: black, a thin white outline, not a white line."""
    return dict(color=REFERENCE_COLOR, lw=_REFERENCE_WIDTH, path_effects=_outlined(_REFERENCE_WIDTH, pad=1.2))


def _edge_style(edge: str) -> dict[str, Any]:
    """A model's edge in the crop and in the legend alike."""
    return dict(color=EDGE_COLORS[edge], ls="--", lw=_EDGE_WIDTH, path_effects=_outlined(_EDGE_WIDTH, pad=1.6))


def _draw_panel(fig, rect_in: tuple[float, float, float, float], fig_size: tuple[float, float], image: np.ndarray,
                view: tuple[float, float, float, float], dist: BoxDistributions, reference: np.ndarray | None,
                p_max: float, title: str) -> None:
    """One model's crop and its four strips at ``rect_in`` (left, bottom, width, height of the crop, inches):
    above it the left edge's strip (outer) and the right edge's, right of it the top edge's (inner) and the
    bottom edge's."""
    from matplotlib.patches import Rectangle
    from matplotlib.ticker import MaxNLocator

    left, bottom, width, height = rect_in
    fw, fh = fig_size
    ax = fig.add_axes((left / fw, bottom / fh, width / fw, height / fh))
    strips = {  # edge -> its strip; the x strips share the crop's x axis, the y strips its y axis
        "right": fig.add_axes((left / fw, (bottom + height + _GAP) / fh, width / fw, _STRIP / fh), sharex=ax),
        "left": fig.add_axes((left / fw, (bottom + height + 2 * _GAP + _STRIP) / fh, width / fw, _STRIP / fh),
                             sharex=ax),
        "top": fig.add_axes(((left + width + _GAP) / fw, bottom / fh, _STRIP / fw, height / fh), sharey=ax),
        "bottom": fig.add_axes(((left + width + 2 * _GAP + _STRIP) / fw, bottom / fh, _STRIP / fw, height / fh),
                               sharey=ax),
    }
    h, w = image.shape[:2]
    ax.set_facecolor("0.85")  # outside the image
    ax.imshow(image, extent=(0, w, h, 0), interpolation="nearest")  # pixel i spans [i, i + 1], as boxes count
    ax.set_aspect("auto")  # the axes' box has the crop's proportions: square pixels by construction
    x0, y0, x1, y1 = view
    ax.set_xlim(x0, x1)
    ax.set_ylim(y1, y0)
    box = dist.box
    for e, edge in enumerate(EDGES):
        color, vertical, strip = EDGE_COLORS[edge], e in (0, 2), strips[edge]
        xs, ys = ([box[e], box[e]], [box[1], box[3]]) if vertical else ([box[0], box[2]], [box[e], box[e]])
        ax.plot(xs, ys, **_edge_style(edge))
        spacing = abs(float(dist.positions[e, 1] - dist.positions[e, 0]))
        line = strip.axvline if vertical else strip.axhline
        if vertical:
            strip.bar(dist.positions[e], dist.probs[e], width=0.8 * spacing, color=color, alpha=0.6)
            strip.set_ylim(0, p_max)
            strip.tick_params(labelbottom=False, labelsize=7)
            strip.yaxis.set_major_locator(MaxNLocator(2, prune="lower"))  # no 0 beside the crop's tick labels
            strip.set_ylabel(f"p({edge})", fontsize=7, color=color)
        else:
            strip.barh(dist.positions[e], dist.probs[e], height=0.8 * spacing, color=color, alpha=0.6)
            strip.set_xlim(0, p_max)
            strip.tick_params(labelleft=False, labelsize=7)
            strip.xaxis.set_major_locator(MaxNLocator(2, prune="lower"))
            strip.set_xlabel(f"p({edge})", fontsize=7, color=color)
        line(box[e], color=color, ls="--", lw=1.2)
        if reference is not None:
            line(reference[e], color=REFERENCE_COLOR, lw=1.0)
    ax.plot(dist.positions[0, 0], dist.positions[1, 0], **_anchor_style())  # bin 0 of every edge
    if reference is not None:
        ax.add_patch(Rectangle(reference[:2], reference[2] - reference[0], reference[3] - reference[1], fill=False,
                               **_reference_style()))
    ax.tick_params(labelsize=7)
    ax.set_xlabel("x (px)", fontsize=7)
    ax.set_ylabel("y (px)", fontsize=7)
    strips["left"].set_title(title, fontsize=8)


def _legend_handles(reference_label: str | None) -> tuple[list, list[str], Any]:
    from matplotlib.legend_handler import HandlerTuple
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Line2D([], [], **_reference_style())] if reference_label else []
    labels = [reference_label] if reference_label else []
    handles.append(Line2D([], [], **_anchor_style()))
    labels.append("anchor point (bin 0)")
    for edge in EDGES:
        color = EDGE_COLORS[edge]
        handles.append((Line2D([], [], **_edge_style(edge)), Patch(color=color, alpha=0.6)))
        labels.append(f"{edge} edge")
    return handles, labels, HandlerTuple(ndivide=None, pad=0.6)


def _crop_inches(view: tuple[float, float, float, float]) -> tuple[float, float]:
    """The crop's (width, height) on the page: its longer side ``_SIDE`` inches, square pixels."""
    w, h = view[2] - view[0], view[3] - view[1]
    return _SIDE * w / max(w, h), _SIDE * h / max(w, h)


def draw_object_distributions(image: np.ndarray, panels: Mapping[str, BoxDistributions],
                              reference: Sequence[float] | np.ndarray | None = None, *, class_name: str = "",
                              subtitle: str = "", reference_label: str = "ground truth") -> Figure:
    """The paper's figure for one object: a panel per entry of ``panels`` (its title -> that model's
    detection), side by side, on the RGB ``image (H, W, 3)``.

    With a ``reference`` box (xyxy, the ground truth) every panel shows the same neighbourhood of it
    (:func:`object_view` of the reference and every box) and its IoU with each box; without, each panel
    shows its own box's neighbourhood. The figure's title: ``class_name``, the reference's size,
    ``subtitle``; a panel's: its name, IoU, score and each edge's normalised entropy. The distributions
    share one probability scale; the legend lies below the panels, outside every axes.
    Returns a :class:`matplotlib.figure.Figure` on an Agg canvas (not registered with pyplot).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not panels:
        raise ValueError("draw_object_distributions needs at least one panel")
    ref = None if reference is None else np.asarray(reference, dtype=float)
    boxes = [d.box for d in panels.values()]
    views = ([object_view(np.stack([ref, *boxes]))] * len(boxes) if ref is not None else
             [object_view(box[None]) for box in boxes])
    sizes = [_crop_inches(view) for view in views]
    panel_widths = [_LEFT + w + 2 * (_GAP + _STRIP) + _RIGHT for w, _ in sizes]
    fig_w = sum(panel_widths)
    handles, labels, handler = _legend_handles(reference_label if ref is not None else None)
    ncol = max(1, min(len(labels), int(fig_w // _LEGEND_ENTRY_WIDTH)))
    legend_title = wrap_title(_LEGEND_TITLE, fig_w, 8)  # a one-panel figure (ld show) is narrower than the line
    legend_h = (math.ceil(len(labels) / ncol) + legend_title.count("\n") + 1) * _LEGEND_ROW + 0.1  # + its title
    fig_h = legend_h + _BOTTOM + max(h for _, h in sizes) + 2 * (_GAP + _STRIP) + _TOP + _SUPTITLE
    fig = Figure(figsize=(fig_w, fig_h))
    FigureCanvasAgg(fig)
    p_max = 1.08 * max(float(d.probs.max()) for d in panels.values())
    left = 0.0
    for (name, dist), view, (w, h), panel_w in zip(panels.items(), views, sizes, panel_widths):
        iou = f"IoU {_iou(dist.box, ref):.2f}, " if ref is not None else ""
        title = "\n".join([name, f"{iou}score {dist.score:.2f}",
                           "norm. entropy L T R B: " + " ".join(f"{v:.2f}" for v in dist.entropies())])
        _draw_panel(fig, (left + _LEFT, legend_h + _BOTTOM, w, h), (fig_w, fig_h), image, view, dist, ref, p_max,
                    title)
        left += panel_w
    heading = [class_name] if class_name else []
    if ref is not None:
        heading.append(f"{reference_label} {ref[2] - ref[0]:.0f} x {ref[3] - ref[1]:.0f} px")
    if subtitle:
        heading.append(subtitle)
    fig.suptitle(", ".join(heading), fontsize=10, y=1 - 0.08 / fig_h, va="top")
    fig.legend(handles, labels, handler_map={tuple: handler}, loc="lower center", bbox_to_anchor=(0.5, 0.04 / fig_h),
               ncol=ncol, fontsize=8, frameon=False, handlelength=3.0, title=legend_title, title_fontsize=8)
    return fig


def _iou(box: np.ndarray, reference: np.ndarray) -> float:
    return float(box_iou(torch.as_tensor(box, dtype=torch.float32)[None],
                         torch.as_tensor(reference, dtype=torch.float32)[None])[0, 0])


def save_figure(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Write ``fig`` as a PNG at ``path`` atomically (temporary file and rename: never a half-written file)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return atomic_write_bytes(path, buffer.getvalue())

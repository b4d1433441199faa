"""The valuable localization region (VLR): anchors near an object that are not positives yet
still carry useful localization knowledge, selected with the ATSS threshold of each ground truth.

Pure torch. Follows the upstream LD assigner (``ATSSAssigner.get_vlr_region``): candidates on every
level, no centre-in-box condition, positives not excluded; an anchor claimed by several ground truths
goes to the one it has the largest IoU with, and that IoU is its weight.

Upstream computes it on an image's *inside* anchors only (HikariTJU/LD ``mmdet/models/dense_heads/
ld_head.py`` ``_get_target_single``: ``anchors = flat_anchors[inside_flags]`` with ``inside_flags =
anchor_inside_flags(flat_anchors, valid_flags, img_meta['img_shape'], allowed_border)``, then
``get_vlr_region(anchors, num_level_anchors_inside, ...)`` and ``unmap``; the same in ``ld_atss.py``,
``ld_gflv2.py`` and ``ld_retina.py``): the anchors of the batch padding beyond the image's own
``pad_shape`` (``AnchorGenerator.valid_flags``) are no candidates of the top-k by distance, do not enter
the ATSS mean + std and get weight 0. ``inside`` (``(N,)`` or ``(B, N)`` bool) says which anchors are
inside; ``None``: all of them (a batch without padding).

:func:`vlr_region_batched` does a whole batch at once, the ground truth padded to the batch's largest
count (:func:`pad_gt`); :func:`vlr_region` is its one-image case. Both give bitwise the results of the
former image-by-image code: the IoU / DIoU matrices, the band and the arg-max are elementwise or per
anchor, so padding cannot change them, while the ATSS thresholds (:func:`atss_thresholds`) stay one call
per image on that image's real ground truths. Their ``cdist`` (a BLAS matmul) and their mean over the
candidates round differently with the number of columns, so a padded, batched version of them would
not be bitwise the same.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ld.ops.box_ops import box_centers, box_iou, iou_and_diou

_OVERLAPS = ("diou", "upstream")


def atss_thresholds(anchors: Tensor, num_level_anchors: list[int], gt_bboxes: Tensor, topk: int = 9) -> Tensor:
    """ATSS IoU thresholds ``(G,)``: mean + std of the IoUs between each ground truth and its ``topk``
    centre-closest anchors on every level (Zhang et al., CVPR 2020).

    Args:
        anchors: ``(N, 4)`` xyxy anchors of one image, levels concatenated in order.
        num_level_anchors: anchors per level, summing to ``N``.
        gt_bboxes: ``(G, 4)`` xyxy ground truths.
        topk: candidates per level (9 in ATSS and LD).
    """
    _check_levels(num_level_anchors, anchors.shape[0])
    return _atss_thresholds(anchors, num_level_anchors, gt_bboxes, topk, box_iou(anchors, gt_bboxes))


def _check_levels(num_level_anchors: list[int], n: int) -> None:
    if sum(num_level_anchors) != n:
        raise ValueError(f"num_level_anchors sums to {sum(num_level_anchors)}, anchors has {n}")


def _atss_thresholds(anchors: Tensor, num_level_anchors: list[int], gt_bboxes: Tensor, topk: int,
                     ious: Tensor) -> Tensor:
    """:func:`atss_thresholds` given ``ious`` ``(N, G)`` = ``box_iou(anchors, gt_bboxes)`` (any strides)."""
    distances = torch.cdist(box_centers(anchors).float(), box_centers(gt_bboxes).float())  # (N, G)
    candidates = []
    start = 0
    for count in num_level_anchors:
        k = min(topk, count)
        idx = distances[start:start + count].topk(k, dim=0, largest=False).indices + start  # (k, G)
        candidates.append(idx)
        start += count
    candidate_ious = ious.gather(0, torch.cat(candidates, dim=0))  # (k * levels, G)
    return candidate_ious.mean(0) + candidate_ious.std(0)


def _check_band(alpha: float, overlap: str) -> None:
    if overlap not in _OVERLAPS:
        raise ValueError(f"overlap must be 'diou' or 'upstream', got {overlap!r}")
    if not 0 <= alpha < 1:
        raise ValueError(f"alpha must lie in [0, 1), got {alpha}")


def _iou_and_overlap(anchors: Tensor, gt_bboxes: Tensor, overlap: str) -> tuple[Tensor, Tensor]:
    """``box_iou`` and ``diou_matrix`` (:mod:`ld.ops.box_ops`), image by image, for ``(B, N, 4)`` anchors
    and ``(B, M, 4)`` ground truths: both ``(B, N, M)``, from one pass over the pairs
    (:func:`ld.ops.box_ops.iou_and_diou`); ``overlap='upstream'`` divides by the anchor's area instead."""
    return iou_and_diou(anchors, gt_bboxes, denominator="union" if overlap == "diou" else "first")


def _batch_thresholds(anchors: Tensor, num_level_anchors: list[int], gt_bboxes: Tensor,
                      real: list[slice | Tensor | None], topk: int, ious: Tensor,
                      inside: list[tuple[Tensor, list[int]] | None] | None = None) -> Tensor:
    """ATSS thresholds ``(B, M)`` of ``(B, M, 4)`` ground truths, NaN where not real (see :func:`_vlr`).

    Image by image on its real ground truths only, with the operations of :func:`atss_thresholds`:
    ``torch.cdist`` (a BLAS matmul) and the mean over the candidates round differently with the number
    of columns (and the mean with a column's position), so padded columns would change the real ones.
    ``inside[i]`` (``None``: all anchors) is ``(rows, per_level)``: image ``i``'s inside anchors ``(N_i,)``
    (indices, ascending) and their count per level; the thresholds are those of these anchors alone, as
    upstream computes them on ``flat_anchors[inside_flags]`` (NaN where an image has none).
    """
    thresholds = ious.new_full(gt_bboxes.shape[:2], float("nan"))  # (B, M)
    for i, cols in enumerate(real):
        if cols is None:
            continue
        rows, per_level = (slice(None), num_level_anchors) if inside is None or inside[i] is None else inside[i]
        if isinstance(rows, Tensor) and not rows.numel():
            continue
        thresholds[i, cols] = _atss_thresholds(anchors[i, rows], per_level, gt_bboxes[i, cols], topk,
                                               ious[i, rows][:, cols])
    return thresholds


def _inside_rows(inside: Tensor, num_level_anchors: list[int],
                 device: torch.device) -> list[tuple[Tensor, list[int]] | None]:
    """Per image of ``inside`` ``(B, N)`` bool: ``None`` where all anchors are inside, else its inside
    anchors' indices ``(N_i,)`` (ascending, on ``device``) and their count per level. Reads ``inside`` on
    the host once."""
    host = inside.detach().cpu()
    per_level = torch.stack([part.sum(1) for part in host.split(num_level_anchors, dim=1)], 1)  # (B, L)
    out: list[tuple[Tensor, list[int]] | None] = []
    for row, counts in zip(host, per_level.tolist()):
        out.append(None if bool(row.all()) else (row.nonzero().flatten().to(device), counts))
    return out


def _vlr(anchors: Tensor, num_level_anchors: list[int], gt_bboxes: Tensor, gt_valid: Tensor | None,
         real: list[slice | Tensor | None], alpha: float, topk: int, overlap: str,
         inside: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """The VLR of ``(B, N, 4)`` anchors and ``(B, M, 4)`` ground truths; ``real[i]`` picks image ``i``'s
    real ground truths from its ``M`` (a slice or an index tensor; ``None``: none), in their order;
    ``gt_valid`` ``(B, M)`` (or ``None``: all) is the same as a mask; ``inside`` ``(B, N)`` bool (or
    ``None``: all) the anchors each image's VLR considers."""
    b, n = anchors.shape[:2]
    weights = anchors.new_zeros(b, n)
    gt_index = torch.full((b, n), -1, dtype=torch.long, device=anchors.device)
    if n == 0 or gt_bboxes.shape[1] == 0 or all(r is None for r in real):
        return weights, gt_index
    kept = None if inside is None else _inside_rows(inside, num_level_anchors, anchors.device)
    if kept is not None and all(k is None for k in kept):
        kept = inside = None  # no padding: the unrestricted code, bitwise
    ious, diou = _iou_and_overlap(anchors, gt_bboxes, overlap)  # (B, N, M) each
    thresholds = _batch_thresholds(anchors, num_level_anchors, gt_bboxes, real, topk, ious,
                                   kept)[:, None, :]  # (B, 1, M)
    in_band = (diou >= alpha * thresholds) & (diou < thresholds)  # (B, N, M)
    if gt_valid is not None:
        in_band &= gt_valid[:, None, :]
    if inside is not None:
        in_band &= inside.to(anchors.device)[:, :, None]
    best_iou, best_gt = ious.masked_fill(~in_band, -1.0).max(dim=2)  # (B, N): ties go to the first gt
    selected = best_iou > 0  # in the band of at least one ground truth (and overlapping it)
    weights = torch.where(selected, best_iou.to(weights.dtype), weights)
    gt_index = torch.where(selected, best_gt, gt_index)
    return weights, gt_index


def vlr_region(
    anchors: Tensor,
    num_level_anchors: list[int],
    gt_bboxes: Tensor,
    alpha: float = 0.25,
    topk: int = 9,
    overlap: str = "diou",
    inside: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """The VLR of one image: anchors whose DIoU with a ground truth ``g`` lies in ``[alpha * t_g, t_g)``.

    ``t_g`` is the ATSS threshold of ``g`` (:func:`atss_thresholds`) over the inside anchors. For a batch,
    use :func:`vlr_region_batched` (the same results, image by image).

    Args:
        anchors: ``(N, 4)`` xyxy anchors, levels concatenated.
        num_level_anchors: anchors per level.
        gt_bboxes: ``(G, 4)`` xyxy ground truths (``G`` may be 0).
        alpha: lower bound of the band, as a fraction of ``t_g`` (0.25 in the paper).
        topk: ATSS candidates per level.
        overlap: ``'diou'`` (IoU minus the normalised centre distance, the paper's definition) or
            ``'upstream'`` (the upstream code's variant: intersection over the anchor's area minus the
            normalised centre distance).
        inside: ``(N,)`` bool, the anchors inside the image (mmdet's ``anchor_inside_flags``); the others
            are no candidates, do not enter ``t_g`` and get weight 0, as upstream. ``None``: all.

    Returns:
        ``weights`` ``(N,)`` float: the IoU of each VLR anchor with its ground truth, 0 elsewhere;
        ``gt_index`` ``(N,)`` long: that ground truth's index, -1 outside the VLR.
    """
    _check_band(alpha, overlap)
    n = anchors.shape[0]
    _check_inside(inside, (n,))
    if gt_bboxes.numel() == 0 or n == 0:
        return anchors.new_zeros(n), torch.full((n,), -1, dtype=torch.long, device=anchors.device)
    _check_levels(num_level_anchors, n)
    weights, gt_index = _vlr(anchors[None], num_level_anchors, gt_bboxes[None], None, [slice(None)],
                             alpha, topk, overlap, None if inside is None else inside[None])
    return weights[0], gt_index[0]


def _check_inside(inside: Tensor | None, shape: tuple[int, ...]) -> None:
    if inside is not None and (inside.dtype != torch.bool or tuple(inside.shape) != shape):
        raise ValueError(f"inside must be a bool {shape} tensor, got {inside.dtype} {tuple(inside.shape)}")


def vlr_region_batched(
    anchors: Tensor,
    num_level_anchors: list[int],
    gt_bboxes: Tensor,
    gt_valid: Tensor,
    alpha: float = 0.25,
    topk: int = 9,
    overlap: str = "diou",
    inside: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """:func:`vlr_region` of a batch at once, bitwise the same as stacking it image by image.

    ``torch.stack([vlr_region(anchors[i], num_level_anchors, gts[i], ..., inside=inside[i])[k] for i ...])``
    equals ``vlr_region_batched(anchors, num_level_anchors, *pad_gt(gts), ..., inside=inside)[k]`` for
    ``k`` = 0 and 1.

    Args:
        anchors: ``(B, N, 4)`` xyxy anchors of each image, levels concatenated.
        num_level_anchors: anchors per level, summing to ``N``.
        gt_bboxes: ``(B, M, 4)`` xyxy ground truths, padded to the batch's largest count ``M``
            (:func:`pad_gt`; ``M`` may be 0).
        gt_valid: ``(B, M)`` bool, True for the real ground truths; the others are ignored, whatever
            their boxes.
        alpha, topk, overlap: as in :func:`vlr_region`.
        inside: ``(B, N)`` bool, each image's anchors inside its own image (mmdet's ``valid_flags`` from
            its ``pad_shape`` and ``anchor_inside_flags``): the others, e.g. those of the batch padding
            beyond a smaller image, are no candidates, do not enter the ATSS thresholds and get weight 0
            (upstream's ``flat_anchors[inside_flags]``). ``None``: all anchors of every image.

    Returns:
        ``weights`` ``(B, N)`` (the dtype of ``anchors``): the IoU of each VLR anchor with its ground truth, 0
        elsewhere; ``gt_index`` ``(B, N)`` long: that ground truth's index along ``M``, -1 outside the VLR
        (with :func:`pad_gt`, the index in the image's own list).

    Reads ``gt_valid`` and ``inside`` on the host once (a device sync each); the IoU / DIoU matrices are
    ``(B, N, M)``.
    """
    _check_band(alpha, overlap)
    if anchors.ndim != 3 or anchors.shape[-1] != 4:
        raise ValueError(f"anchors must be (B, N, 4), got {tuple(anchors.shape)}")
    b, n = anchors.shape[:2]
    if gt_bboxes.ndim != 3 or gt_bboxes.shape[0] != b or gt_bboxes.shape[-1] != 4:
        raise ValueError(f"gt_bboxes must be (B={b}, M, 4), got {tuple(gt_bboxes.shape)}")
    if gt_valid.dtype != torch.bool or tuple(gt_valid.shape) != tuple(gt_bboxes.shape[:2]):
        raise ValueError(f"gt_valid must be a bool (B, M) = {tuple(gt_bboxes.shape[:2])} tensor, "
                         f"got {gt_valid.dtype} {tuple(gt_valid.shape)}")
    _check_inside(inside, (b, n))
    _check_levels(num_level_anchors, n)
    real: list[slice | Tensor | None] = []
    for row in gt_valid.detach().cpu():
        cols = row.nonzero().flatten()
        count = cols.numel()
        if count == 0:
            real.append(None)
        elif bool(row[:count].all()):
            real.append(slice(0, count))  # the padding is at the end, as pad_gt makes it
        else:
            real.append(cols.to(gt_bboxes.device))
    return _vlr(anchors, num_level_anchors, gt_bboxes, gt_valid.to(anchors.device), real, alpha, topk, overlap,
                inside)


def pad_gt(gt_bboxes: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Pads per-image ground truths ``[(G_i, 4)]`` to ``(B, max G_i, 4)`` (zeros after the real boxes,
    on the first tensor's device and dtype), with ``valid`` ``(B, max G_i)`` bool, True for the real ones."""
    if not gt_bboxes:
        raise ValueError("pad_gt needs at least one image")
    boxes = [g.reshape(-1, 4) for g in gt_bboxes]
    counts = [g.shape[0] for g in boxes]
    first = boxes[0]
    padded = first.new_zeros(len(boxes), max(counts), 4)  # (B, M, 4)
    for i, g in enumerate(boxes):
        padded[i, :counts[i]] = g
    valid = torch.arange(max(counts)) < torch.tensor(counts)[:, None]  # (B, M)
    return padded, valid.to(first.device)

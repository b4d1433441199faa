"""Score-voting Cluster-DIoU-NMS in pure torch (the post-processing used by the LD paper).

Nothing here depends on mmcv or mmdet, so the module works on any device and dtype that torch supports.

* :func:`voting_cluster_diou_nms_reference` -- the method as the paper states it: class-aware Cluster-NMS on
  one ``(N, N)`` DIoU matrix (the same result as greedy DIoU-NMS), then score voting of the kept boxes'
  coordinates. Read it first.
* :func:`voting_cluster_diou_nms` -- the same floats, computed class block by class block in ``sum_c M_c^2``
  memory (``_PowLikeDense`` reproduces the matrix's SIMD rounding of ``x ** beta`` pair by pair).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ld.ops.box_ops import Columns, box_columns, diou_matrix, pair_iou, pair_penalty

__all__ = ["voting_cluster_diou_nms", "voting_cluster_diou_nms_reference"]

# Most pairs in one float intermediate of the pairwise step (a (C, R, M) chunk of a class block): 2**19,
# 2 MiB in float32. A block of more than 8 * _SMALL_BLOCK_ELEMS pairs runs a few rows at a time.
_BLOCK_ELEMS = 1 << 19
# Classes this small share a padded block whatever their sizes (padding is cheap there).
_SMALL_BLOCK_ELEMS = 1 << 16
# Most elements of the voting weights (K, N) built at once (8 MiB in float32): up to there, the very matrix of
# the all-class formulation (the pipeline's max_num=100 stays below it up to N = 20971); beyond, row chunks.
_VOTE_ELEMS = 1 << 21
# ATen's elementwise CPU kernels run a tensor of more than this many elements in parallel chunks
# (at::internal::GRAIN_SIZE).
_GRAIN_SIZE = 32768


def voting_cluster_diou_nms_reference(
    boxes: Tensor,
    scores: Tensor,
    labels: Tensor,
    iou_threshold: float = 0.6,
    max_num: int = -1,
    beta: float = 0.8,
    vote_threshold: float = 0.7,
    vote_sigma: float = 0.025,
) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`voting_cluster_diou_nms` as the paper states it, in a few lines: one ``(N, N)`` DIoU matrix of
    the score-ranked boxes (``box_ops.diou_matrix``), class-aware by masking, Cluster-NMS iterated to its
    fixed point, and every kept box replaced by the score-weighted vote of its class's lower-ranked boxes.
    ``N^2`` memory: the reference that the blocked function equals bit for bit (tests/ops), and the one to
    read first."""
    device = boxes.device
    out_dtype = boxes.dtype if boxes.is_floating_point() else torch.float32
    n = boxes.shape[0]
    if n == 0:
        return boxes.new_zeros((0, 5), dtype=out_dtype), labels.new_zeros((0,)), torch.zeros(0, dtype=torch.long)
    work = out_dtype if out_dtype in (torch.float32, torch.float64) else torch.float32
    order = torch.sort(scores, descending=True, stable=True).indices
    sorted_boxes, sorted_scores, sorted_labels = boxes[order].to(work), scores[order].to(work), labels[order]
    diou = diou_matrix(sorted_boxes, sorted_boxes, beta=beta)
    rank = torch.arange(n, device=device)
    upper_same = (rank[:, None] < rank[None, :]) & (sorted_labels[:, None] == sorted_labels[None, :])
    suppresses = upper_same & (diou > iou_threshold)
    keep_mask = torch.ones(n, dtype=torch.bool, device=device)
    for _ in range(n):
        new_keep = ~(suppresses & keep_mask[:, None]).any(dim=0)
        if torch.equal(new_keep, keep_mask):
            break
        keep_mask = new_keep
    kept = torch.nonzero(keep_mask, as_tuple=False).squeeze(1)
    if max_num > 0:
        kept = kept[:max_num]
    d = diou[kept]
    voters = upper_same[kept] & (d > vote_threshold)
    weights = torch.where(voters, sorted_scores[None, :] * torch.exp(-((1 - d) ** 2) / vote_sigma),
                          torch.zeros((), dtype=work, device=device))
    own = torch.arange(kept.numel(), device=device)
    weights[own, kept] = sorted_scores[kept]
    total = weights.sum(dim=1, keepdim=True)
    voted = (weights @ sorted_boxes) / torch.where(total != 0, total, torch.ones_like(total))
    voted = torch.where(total != 0, voted, sorted_boxes[kept])
    dets = torch.cat([voted, sorted_scores[kept, None]], dim=1).to(out_dtype)
    return dets, sorted_labels[kept], order[kept]


def _work_dtype(dtype: torch.dtype) -> torch.dtype:
    """Dtype the computation runs in: float32/float64 as given, half types and integers in float32."""
    return dtype if dtype in (torch.float32, torch.float64) else torch.float32


# ----------------------------------------------------------------------------------------------------------------
# Bitwise agreement with the all-class N x N formulation
# ----------------------------------------------------------------------------------------------------------------
# The values are computed pair by pair with exactly the elementwise operations of box_ops.diou_matrix, so
# every DIoU is the same float as in an N x N matrix -- except for one operation: on the CPU, ATen's
# ``x ** beta`` runs a SIMD (Sleef) pow on all but the last ``len % width`` elements of each contiguous
# chunk it processes, which get the scalar std::pow; the two differ in the last bit for some inputs. An
# N x N matrix has its scalar elements at known flat positions (the end of the tensor, and the end of
# each thread's chunk, e.g. row N/2 - 1 with two threads), so the penalty of exactly those pairs is
# recomputed here through the scalar path, and every other penalty through the SIMD path. The result
# equals the N x N computation's bit for bit, at any thread count. Other devices (CUDA) compute each
# element the same way wherever it lies; nothing to emulate there.


_SIMD_WIDTHS: dict[torch.dtype, int] = {}  # measured once per dtype


def _cpu_simd_width(dtype: torch.dtype) -> int:
    """Elements per step of ATen's vectorised CPU loop for ``dtype`` (2 x the SIMD lanes): the loop gives
    the scalar pow to the last ``len % width`` elements. 0 when the scalar and SIMD pow agree (nothing to
    emulate). Measured once per dtype."""
    if dtype not in _SIMD_WIDTHS:
        _SIMD_WIDTHS[dtype] = _measure_simd_width(dtype)
    return _SIMD_WIDTHS[dtype]


def _measure_simd_width(dtype: torch.dtype) -> int:
    x = torch.linspace(0.001, 0.999, 4096, dtype=dtype)
    pad = x.new_full((1024,), 0.5)
    simd = (torch.cat([x, pad]) ** 0.8)[: x.numel()]  # < GRAIN_SIZE elements: one serial loop, all SIMD
    scalar = torch.stack([x, x], 1)[:, 0] ** 0.8  # a strided input: ATen's scalar loop for every element
    differ = torch.nonzero(simd != scalar).flatten()
    if differ.numel() == 0:
        return 0
    k = int(differ[0])
    for length in range(2, 1025):
        if (torch.full((length,), float(x[k]), dtype=dtype) ** 0.8)[0] == simd[k]:  # element 0 got SIMD
            return length
    return 0


def _dense_scalar_positions(numel: int, width: int) -> list[int]:
    """Flat indices that an elementwise ATen CPU kernel over a contiguous tensor of ``numel`` elements
    computes in its scalar tail (at the current thread count)."""
    threads = torch.get_num_threads()
    if numel <= _GRAIN_SIZE or threads == 1:
        chunks = [(0, numel)]
    else:
        if _openmp_backend():
            tasks = min(threads, -(-numel // _GRAIN_SIZE))
            size = -(-numel // tasks)
        else:  # ATen's native thread pool
            size = max(_GRAIN_SIZE, -(-numel // threads))
        chunks = [(b, min(numel, b + size)) for b in range(0, numel, size)]
    return [p for b, e in chunks for p in range(e - (e - b) % width, e)]


def _openmp_backend() -> bool:
    """Whether ATen's intra-op parallel backend is OpenMP (else its native thread pool)."""
    return "parallel backend: OpenMP" in torch.__config__.parallel_info()


class _PowLikeDense:
    """``x ** beta`` for pairs ``(i, j)`` of ``n`` score-ranked boxes, each bitwise equal to the element
    ``(i, j)`` of the same power taken over a contiguous ``(n, n)`` matrix (see above)."""

    def __init__(self, n: int, dtype: torch.dtype, device: torch.device, beta: float):
        self.n, self.beta = n, beta
        self.width = _cpu_simd_width(dtype) if device.type == "cpu" else 0
        self.tail = None  # flat positions i * n + j (i < j) of the pairs the matrix gives the scalar pow
        if self.width:
            upper = [p for p in _dense_scalar_positions(n * n, self.width) if p // n < p % n]
            self.tail = torch.tensor(upper, dtype=torch.long, device=device) if upper else None

    def __call__(self, x: Tensor, i: Tensor, j: Tensor) -> Tensor:
        """``x ** beta`` of the pairs of ranks ``(i, j)`` (broadcastable to ``x``)."""
        if not self.width:
            return x**self.beta
        # SIMD path for all: pieces small enough for one serial loop, padded past the scalar tail.
        w, xs = self.width, x.reshape(-1)
        piece = max(1, xs.numel() if torch.get_num_threads() == 1 else _GRAIN_SIZE - w)
        pad = x.new_full((w,), 0.5)
        parts = [(torch.cat([xs[s : s + piece], pad]) ** self.beta)[: min(piece, xs.numel() - s)]
                 for s in range(0, xs.numel(), piece)]
        out = torch.cat(parts) if parts else xs**self.beta
        if self.tail is not None:
            flat = (i * self.n + j).expand(x.shape).reshape(-1)  # positions in the (n, n) matrix
            hit = torch.nonzero(torch.isin(flat, self.tail)).squeeze(1)
            for s in range(0, hit.numel(), w - 1):  # fewer elements than a SIMD step: all scalar
                idx = hit[s : s + w - 1]
                out[idx] = xs[idx] ** self.beta
        return out.view(x.shape)


def _pair_diou(cols: Columns, i: Tensor, j: Tensor, pow_: _PowLikeDense) -> Tensor:
    """DIoU of the pairs ``(i, j)`` of score-ranked boxes with columns ``cols`` (``(N,)`` each)."""
    bi, bj = tuple(c[i] for c in cols), tuple(c[j] for c in cols)
    return pair_iou(bi, bj).sub_(pow_(pair_penalty(bi, bj), i, j))


def _class_blocks(counts: list[int]) -> list[list[int]]:
    """Classes grouped into padded blocks: largest first; a block takes classes at least half its largest
    (or all when tiny), at most ``_BLOCK_ELEMS`` padded pairs (one class alone may exceed it)."""
    by_size = sorted(range(len(counts)), key=lambda c: -counts[c])
    blocks, k = [], 0
    while k < len(by_size):
        m = counts[by_size[k]]
        block = [by_size[k]]
        k += 1
        while k < len(by_size) and (len(block) + 1) * m * m <= _BLOCK_ELEMS and (
                2 * counts[by_size[k]] >= m or (len(block) + 1) * m * m <= _SMALL_BLOCK_ELEMS):
            block.append(by_size[k])
            k += 1
        blocks.append(block)
    return blocks


class _BlockPairs:
    """A set of pairs ``(c, a, b)`` of a ``(C, M, M)`` class block, by flat index ``(c * M + a) * M + b``:
    the indices while they are few (at most one in 16 pairs), else a dense bool matrix; at most about
    ``C * M * M`` bytes either way."""

    def __init__(self, c: int, m: int, device: torch.device):
        self.shape, self.device = (c, m, m), device
        self.flat: list[Tensor] | None = []
        self.dense: Tensor | None = None
        self.count = 0

    def _densify(self) -> None:
        if self.flat is not None:
            self.dense = torch.zeros(self.shape, dtype=torch.bool, device=self.device)
            if self.flat:
                self.dense.view(-1)[torch.cat(self.flat)] = True
            self.flat = None

    def add(self, flat: Tensor) -> None:
        """Add the pairs of flat indices ``flat``."""
        if flat.numel() == 0:
            return
        self.count += flat.numel()
        if 16 * self.count > self.dense_numel:
            self._densify()
        if self.flat is None:
            self.dense.view(-1)[flat] = True
        else:
            self.flat.append(flat)

    def add_chunk(self, mask: Tensor, r0: int, r1: int) -> None:
        """Add the pairs where ``mask`` ``(C, r1 - r0, M - r0 - 1)`` (rows ``r0:r1``, columns ``r0 + 1:``) holds."""
        count = int(mask.sum())
        if count:
            self.count += count
            self._densify()
            self.dense[:, r0:r1, r0 + 1 :] |= mask

    @property
    def dense_numel(self) -> int:
        return self.shape[0] * self.shape[1] * self.shape[2]

    def indices(self) -> Tensor:
        """The pairs' flat indices (ascending when dense)."""
        if self.flat is None:
            return torch.nonzero(self.dense.view(-1)).squeeze(1)
        return torch.cat(self.flat) if self.flat else torch.zeros(0, dtype=torch.long, device=self.device)

    def of_rows(self, rows: Tensor) -> tuple[Tensor, Tensor]:
        """The pairs whose row ``c * M + a`` is in ``rows`` (distinct), as ``(c * M + a, c * M + b)``."""
        m = self.shape[1]
        if self.flat is None:  # only the rows asked for: no index per pair of the whole block
            r, b = torch.nonzero(self.dense.view(-1, m)[rows], as_tuple=True)
            return rows[r], rows[r] - rows[r] % m + b
        a_flat, b_flat = _rows_cols(self.indices(), m)
        wanted = torch.zeros(self.shape[0] * m, dtype=torch.bool, device=self.device)
        wanted[rows] = True
        hit = wanted[a_flat]
        return a_flat[hit], b_flat[hit]


def _block_pairs(chunk_flat: Tensor, m: int, r0: int, r1: int) -> tuple[Tensor, Tensor]:
    """Flat indices into a ``(C, r1 - r0, M - r0 - 1)`` chunk of rows ``a = r0 + row`` and columns
    ``b = r0 + 1 + column`` of a ``(C, M, M)`` block, as ``c * M + a`` and ``(c * M + a) * M + b``."""
    width = m - r0 - 1
    rc, b = chunk_flat // width, chunk_flat % width + (r0 + 1)  # rc = c * (r1 - r0) + row
    a_flat = rc + (rc // (r1 - r0)) * (m - r1 + r0) + r0
    return a_flat, a_flat * m + b


def _rows_cols(flat: Tensor, m: int) -> tuple[Tensor, Tensor]:
    """Flat pair indices ``(c * M + a) * M + b`` as the boxes' ``(C * M)`` indices ``c * M + a``, ``c * M + b``."""
    rows = flat // m
    return rows, rows - rows % m + flat % m


def _cluster_nms(suppresses: _BlockPairs, c: int, m: int, device: torch.device) -> Tensor:
    """Cluster-NMS on a block's suppression matrix ``S`` ``(C, M, M)`` (``S[c, a, b]``: box ``a`` of class
    ``c`` would suppress box ``b`` if ``a`` is kept): ``keep <- no kept box suppresses it`` until it stops
    changing. Box ``b``'s status depends only on boxes ranked above it, so after ``t`` iterations the top
    ``t`` statuses are final; the fixed point is the greedy-NMS answer. Returns ``keep`` ``(C, M)``."""
    keep = torch.ones((c, m), dtype=torch.bool, device=device)
    if suppresses.count == 0:
        return keep
    if suppresses.flat is not None:  # few pairs: the same iteration on S stored as its non-zero entries
        rows, cols = _rows_cols(suppresses.indices(), m)
        keep = keep.view(-1)
        for _ in range(m):
            new_keep = torch.ones_like(keep)
            new_keep[cols[keep[rows]]] = False
            if torch.equal(new_keep, keep):
                break
            keep = new_keep
        return keep.view(c, m)
    for _ in range(m):
        new_keep = ~(suppresses.dense & keep[:, :, None]).any(dim=1)
        if torch.equal(new_keep, keep):
            break
        keep = new_keep
    return keep


def voting_cluster_diou_nms(
    boxes: Tensor,
    scores: Tensor,
    labels: Tensor,
    iou_threshold: float = 0.6,
    max_num: int = -1,
    beta: float = 0.8,
    vote_threshold: float = 0.7,
    vote_sigma: float = 0.025,
) -> tuple[Tensor, Tensor, Tensor]:
    """Class-aware Cluster-DIoU-NMS with score voting.

    1. Detections are sorted by descending score (stable: ties keep input order).
    2. Cluster-NMS on the DIoU matrix, restricted to pairs of the same class: box ``j`` is suppressed if a
       *kept* higher-ranked box ``i`` has ``DIoU(i, j) > iou_threshold``. The kept set is re-evaluated from
       the previous one until it stops changing (at most ``N`` iterations); the fixed point is exactly the
       result of greedy DIoU-NMS.
    3. Score voting: every kept box ``i`` is replaced by the weighted average of itself (weight
       ``score_i``) and every lower-ranked box ``j`` of its class, kept or suppressed, with
       ``DIoU(i, j) > vote_threshold``, weighted by ``score_j * exp(-(1 - DIoU(i, j))^2 / vote_sigma)``.
       Scores are unchanged.

    Per-class blocking: boxes of different classes never interact, so no all-class ``(N, N)`` matrix is
    built. The score-ranked boxes are grouped by class (rank order kept within a class), and the classes
    into blocks of similar sizes (largest first; a class at least half the block's largest, or any class
    when the block is tiny), each padded to its largest class ``M`` with NaN boxes: a block of ``C``
    classes is one batched ``(C, M, M)`` computation, of at most 2**19 pairs at a time (a large class
    alone, a few rows at a time). Per block:

    * the IoU of its pairs ``a < b`` (upper triangle); the DIoU, whose power is the costly part, only of
      the pairs above ``min(iou_threshold, vote_threshold)`` in IoU (``DIoU <= IoU``: no other pair
      suppresses or votes), or of all of a chunk's pairs when most of them are;
    * Cluster-NMS on the block's ``(C, M, M)`` suppression matrix (kept as its non-zero entries while
      they are few, else dense), all ``C`` classes iterated together;
    * the voting pairs of the boxes it kept.

    Voting then fills the kept rows' ``(K, N)`` weights (row chunks when ``K * N`` is large) so that the
    sums run over the same elements in the same order as in an all-class formulation. Every DIoU is the
    same float as in the ``(N, N)`` matrix (see ``_PowLikeDense``), so the output is bitwise that of the
    all-class computation, for a cost and memory of ``sum_c M_c^2`` instead of ``N^2``.

    Args:
        boxes: ``(N, 4)`` boxes ``(x1, y1, x2, y2)``.
        scores: ``(N,)`` detection scores (non-negative).
        labels: ``(N,)`` integer class labels; boxes of different classes never interact.
        iou_threshold: DIoU above which a lower-ranked box is suppressed.
        max_num: keep at most this many detections (the highest-scoring); ``<= 0`` keeps all.
        beta: exponent of the DIoU centre-distance penalty.
        vote_threshold: DIoU above which a lower-ranked box votes for a kept box.
        vote_sigma: width of the voting weight ``exp(-(1 - DIoU)^2 / vote_sigma)``.

    Returns:
        ``dets`` ``(K, 5)``: voted boxes and their (unchanged) scores, in the dtype of ``boxes``
        (float32 for non-float boxes); ``labels`` ``(K,)``: their labels; ``keep`` ``(K,)`` long: their
        indices into the input. All sorted by descending score, ties in input order.
    """
    if boxes.ndim != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"boxes must be (N, 4), got {tuple(boxes.shape)}")
    n = boxes.shape[0]
    if scores.shape != (n,) or labels.shape != (n,):
        raise ValueError(f"scores and labels must be ({n},), got {tuple(scores.shape)} and {tuple(labels.shape)}")
    device = boxes.device
    out_dtype = boxes.dtype if boxes.is_floating_point() else torch.float32
    if n == 0:
        return (
            boxes.new_zeros((0, 5), dtype=out_dtype),
            labels.new_zeros((0,)),
            torch.zeros((0,), dtype=torch.long, device=device),
        )

    work = _work_dtype(out_dtype)
    scores = scores.to(device)
    labels = labels.to(device)
    order = torch.sort(scores, descending=True, stable=True).indices  # (N,)
    sorted_boxes = boxes[order].to(work).contiguous()  # (N, 4)
    sorted_scores = scores[order].to(work)  # (N,)
    sorted_labels = labels[order]  # (N,)
    cols = box_columns(sorted_boxes)  # x1, y1, x2, y2, area: (N,) each
    pow_ = _PowLikeDense(n, work, device, beta)
    gate = min(iou_threshold, vote_threshold)

    # Score ranks grouped by class, rank order within a class: by_class[starts[c] + a] is class c's a-th box.
    by_class = torch.sort(sorted_labels, stable=True).indices  # (N,)
    counts = torch.unique_consecutive(sorted_labels[by_class], return_counts=True)[1].tolist()
    starts = [0]
    for count in counts[:-1]:
        starts.append(starts[-1] + count)

    keep_mask = torch.ones(n, dtype=torch.bool, device=device)
    vi, vj = [], []  # voting pairs (i, j) of NMS-kept boxes i, as score ranks
    for classes in _class_blocks(counts):
        c_num, m = len(classes), counts[classes[0]]
        pos = torch.arange(m, device=device)
        valid = pos[None, :] < torch.tensor([counts[c] for c in classes], device=device)[:, None]  # (C, M)
        first = torch.tensor([starts[c] for c in classes], device=device)
        idx = by_class[torch.where(valid, first[:, None] + pos[None, :], 0)]  # (C, M) ranks
        # Padding boxes are NaN: their IoU is NaN, never above a threshold.
        block_cols = tuple(torch.where(valid, col[idx], float("nan")) for col in cols)  # (C, M) each
        idx_flat = idx.view(-1)
        suppresses, votes = _BlockPairs(c_num, m, device), _BlockPairs(c_num, m, device)
        # Rows in chunks: at most _BLOCK_ELEMS pairs, and few below the diagonal in a large block.
        rows = m if c_num * m * m <= 8 * _SMALL_BLOCK_ELEMS else max(64, -(-m // 8))
        rows = max(1, min(rows, _BLOCK_ELEMS // (c_num * m)))
        for r0 in range(0, m - 1, rows):  # rows r0:r1 against the columns r0 + 1: (pairs a < b only)
            r1 = min(m - 1, r0 + rows)
            bi = tuple(col[:, r0:r1, None] for col in block_cols)  # (C, R, 1) each
            bj = tuple(col[:, None, r0 + 1 :] for col in block_cols)  # (C, 1, W) each
            iou = pair_iou(bi, bj)  # (C, R, W): the pairs (a, b) = (r0 + row, r0 + 1 + column)
            cand = (iou > gate).triu_()  # a < b
            count = int(cand.sum())
            if 4 * count > cand.numel():  # dense: the DIoU of the whole chunk
                d = iou.sub_(pow_(pair_penalty(bi, bj), idx[:, r0:r1, None], idx[:, None, r0 + 1 :]))
                suppresses.add_chunk((d > iou_threshold).triu_(), r0, r1)
                votes.add_chunk((d > vote_threshold).triu_(), r0, r1)
            elif count:  # sparse: the DIoU of the candidates alone
                a_flat, flat = _block_pairs(torch.nonzero(cand.view(-1)).squeeze(1), m, r0, r1)
                d = _pair_diou(cols, idx_flat[a_flat], idx_flat[a_flat - a_flat % m + flat % m], pow_)
                suppresses.add(flat[d > iou_threshold])
                votes.add(flat[d > vote_threshold])
            del iou, cand
        keep = _cluster_nms(suppresses, c_num, m, device)
        del suppresses
        keep_mask[idx[valid]] = keep[valid]
        if votes.count:
            a_flat, b_flat = votes.of_rows(torch.nonzero((keep & valid).view(-1)).squeeze(1))
            vi.append(idx_flat[a_flat])
            vj.append(idx_flat[b_flat])

    kept = torch.nonzero(keep_mask, as_tuple=False).squeeze(1)  # (K,) positions in score order
    if max_num > 0:
        kept = kept[:max_num]
    k = kept.numel()

    # Score voting for the kept rows only: the voters (i, j) of each kept i, then the (K, N) weights.
    selected = torch.zeros(n, dtype=torch.bool, device=device)
    selected[kept] = True
    vi = torch.cat(vi) if vi else torch.zeros(0, dtype=torch.long, device=device)
    vj = torch.cat(vj) if vj else torch.zeros(0, dtype=torch.long, device=device)
    vi, vj = vi[selected[vi]], vj[selected[vi]]
    d = _pair_diou(cols, vi, vj, pow_)
    vote_w = sorted_scores[vj] * torch.exp(-((1 - d) ** 2) / vote_sigma)
    row_of = torch.zeros(n, dtype=torch.long, device=device)
    row_of[kept] = torch.arange(k, device=device)
    vrow = row_of[vi]
    own_w = sorted_scores[kept]

    if k * n <= _VOTE_ELEMS:
        weights = torch.zeros((k, n), dtype=work, device=device)
        weights[vrow, vj] = vote_w
        weights[torch.arange(k, device=device), kept] = own_w  # the box itself: DIoU 1, weight = its score
        total = weights.sum(dim=1, keepdim=True)  # (K, 1)
        num = weights @ sorted_boxes  # (K, 4)
    else:
        # Row chunks of the same (K, N) weights: a row's sum and product do not depend on the other rows
        # (so for torch's CPU sum and MKL's gemm, checked). A row with no voter has one non-zero weight, its
        # own score s: its sum is s and its product s * box, exactly (zeros add nothing).
        total = own_w[:, None].clone()
        num = own_w[:, None] * sorted_boxes[kept]
        voted_rows = torch.unique(vrow)
        chunk = max(1, _VOTE_ELEMS // n)
        for s in range(0, voted_rows.numel(), chunk):
            rows = voted_rows[s : s + chunk]
            local = torch.full((k,), -1, dtype=torch.long, device=device)
            local[rows] = torch.arange(rows.numel(), device=device)
            weights = torch.zeros((rows.numel(), n), dtype=work, device=device)
            mine = local[vrow] >= 0
            weights[local[vrow[mine]], vj[mine]] = vote_w[mine]
            weights[torch.arange(rows.numel(), device=device), kept[rows]] = own_w[rows]
            total[rows] = weights.sum(dim=1, keepdim=True)
            num[rows] = weights @ sorted_boxes
    voted = num / torch.where(total != 0, total, torch.ones_like(total))
    voted = torch.where(total != 0, voted, sorted_boxes[kept])  # all-zero weights: keep the box as is

    dets = torch.cat([voted, sorted_scores[kept, None]], dim=1).to(out_dtype)
    return dets, sorted_labels[kept], order[kept]

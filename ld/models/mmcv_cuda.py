"""mmcv's CUDA ops on a GPU, and what the project does where mmcv was built without them.

mmcv dispatches its ops by device: built for the CPU only (the default here), a GPU tensor has no
implementation to go to and mmcv stops deep inside its extension. ``import ld.models`` calls :func:`install`:

- **NMS** (mmdet's heads and :mod:`ld.results.analysis` go through ``mmcv.ops.batched_nms`` -> ``mmcv.ops.nms``):
  on a GPU tensor without CUDA ops, the pure-torch :func:`ld.ops.nms.nms` runs instead, keeping the same
  boxes, with one warning line; with CUDA ops, or on the CPU, mmcv's own kernel runs, untouched.
- **Focal loss** (ATSS, FCOS and RetinaNet: mmdet's ``FocalLoss`` calls ``mmcv.ops.sigmoid_focal_loss`` for a
  GPU tensor): without CUDA ops, :func:`sigmoid_focal_loss` computes mmdet's pure-torch focal loss
  (``py_sigmoid_focal_loss``, the one mmdet runs on the CPU) on the one-hot labels instead, with one warning
  line. mmcv's kernel clamps ``log(p)`` at ``log(FLT_MIN)``, so the two agree within float rounding for
  logits inside about ±80 (beyond, mmcv's loss is the clamped one).
- **Deformable convolutions** (the ``-DCN`` rows: mmcv's ``DCN`` / ``DCNv2``) have no pure-torch
  stand-in: on a GPU tensor without CUDA ops they stop with :class:`MissingCudaOpsError`, saying what
  to install, instead of mmcv's own error.
"""
from __future__ import annotations

import functools
import sys

import torch

from ld.errors import LDError
from ld.ops.nms import nms as torch_nms

_warned: set[str] = set()  # the ops whose fallback has said so (one line each per process)


class MissingCudaOpsError(LDError, RuntimeError):
    """A GPU run needs an mmcv op that was not compiled for CUDA."""


@functools.cache
def cuda_ops_compiled() -> bool:
    """Whether this mmcv was built with its CUDA ops (``get_compiling_cuda_version`` says so)."""
    from mmcv.ops import get_compiling_cuda_version

    return get_compiling_cuda_version() != "not available"


def lacks_cuda_op(tensor: torch.Tensor) -> bool:
    """A GPU tensor, and an mmcv without CUDA ops to run on it."""
    return tensor.is_cuda and not cuda_ops_compiled()


def _warn_once(op: str, same: str) -> None:
    if op not in _warned:
        _warned.add(op)
        print(f"ld: mmcv has no CUDA ops here: {op} runs in pure PyTorch on the GPU ({same}; build mmcv with CUDA "
              "ops for speed, README: GPU install)", file=sys.stderr, flush=True)


def nms(boxes, scores, iou_threshold, offset=0, score_threshold=0, max_num=-1):
    """``mmcv.ops.nms`` with the pure-torch kernel where mmcv has no CUDA ops for ``boxes`` (same
    arguments and result: ``(dets (K, 5) = boxes and scores, indices)``, by descending score)."""
    if not (isinstance(boxes, torch.Tensor) and lacks_cuda_op(boxes)):
        return _mmcv_nms(boxes, scores, iou_threshold, offset, score_threshold, max_num)
    _warn_once("NMS", "the same kept boxes")
    valid = None
    if score_threshold > 0:  # as mmcv's NMSop: filter by score, NMS, cap, map back
        valid = torch.nonzero(scores > score_threshold, as_tuple=False).squeeze(1)
        boxes_in, scores_in = boxes[valid], scores[valid]
    else:
        boxes_in, scores_in = boxes, scores
    inds = torch_nms(boxes_in, scores_in, float(iou_threshold), int(offset))
    if max_num > 0:
        inds = inds[:max_num]
    if valid is not None:
        inds = valid[inds]
    return torch.cat((boxes[inds], scores[inds].reshape(-1, 1)), dim=1), inds


def sigmoid_focal_loss(pred, target, gamma=2.0, alpha=0.25, weight=None, reduction="mean"):
    """``mmcv.ops.sigmoid_focal_loss`` with mmdet's pure-torch focal loss where mmcv has no CUDA ops for ``pred``
    (same arguments and result): ``pred`` (N, C) logits, ``target`` (N,) labels in ``[0, C]`` (``C``: the
    background), ``weight`` (C,) per class or None; reduction 'none' gives (N, C), 'mean' the sum over N,
    'sum' the sum."""
    if not (isinstance(pred, torch.Tensor) and lacks_cuda_op(pred)):
        return _mmcv_focal(pred, target, gamma, alpha, weight, reduction)
    from mmdet.models.losses.focal_loss import py_sigmoid_focal_loss

    _warn_once("focal loss", "mmdet's own pure-PyTorch focal loss")
    num_classes = pred.size(1)
    one_hot = torch.nn.functional.one_hot(target.long(), num_classes + 1)[:, :num_classes].type_as(pred)
    loss = py_sigmoid_focal_loss(pred, one_hot, gamma=gamma, alpha=alpha, reduction="none")
    if weight is not None:  # mmcv's kernel scales every class of a sample by its label's weight
        if bool((target >= num_classes).any()):
            raise ValueError("sigmoid_focal_loss: a per-class weight needs every label below the class count "
                             "(mmcv's kernel reads weight[label])")
        loss = loss * weight[target.long()].view(-1, 1)
    if reduction == "mean":
        return loss.sum() / pred.size(0)
    return loss.sum() if reduction == "sum" else loss


def _refuse_without_cuda_ops(forward):
    @functools.wraps(forward)
    def checked(self, x, *args, **kwargs):
        if lacks_cuda_op(x):
            raise MissingCudaOpsError(
                f"this row needs mmcv built with CUDA ops: its backbone uses deformable convolutions (mmcv's "
                f"{type(self).__name__}), which have no pure-PyTorch version, and this mmcv was built for the "
                "CPU only. Reinstall mmcv with its CUDA ops (README: GPU install; `make install` does it where "
                "torch sees CUDA and nvcc is found), or run a row without DCN")
        return forward(self, x, *args, **kwargs)

    checked.__ld_checked__ = True
    return checked


_mmcv_nms = None
_mmcv_focal = None


def install() -> None:
    """Put the NMS and focal-loss fallbacks and the DCN check in place (idempotent)."""
    global _mmcv_nms, _mmcv_focal
    import mmcv.ops
    from mmcv.ops.deform_conv import DeformConv2d, DeformConv2dPack
    from mmcv.ops.modulated_deform_conv import ModulatedDeformConv2d, ModulatedDeformConv2dPack
    from mmdet.models.losses import focal_loss

    mmcv_nms_module = sys.modules["mmcv.ops.nms"]  # the package's attribute `nms` is the function
    if _mmcv_nms is None:
        _mmcv_nms = mmcv_nms_module.nms
        mmcv_nms_module.nms = nms  # batched_nms looks its NMS type up in this module
        mmcv.ops.nms = nms
    if _mmcv_focal is None:
        _mmcv_focal = focal_loss._sigmoid_focal_loss  # mmdet's FocalLoss calls it by this name for a GPU tensor
        focal_loss._sigmoid_focal_loss = sigmoid_focal_loss
    for cls in (DeformConv2d, DeformConv2dPack, ModulatedDeformConv2d, ModulatedDeformConv2dPack):
        if "forward" in vars(cls) and not getattr(cls.forward, "__ld_checked__", False):
            cls.forward = _refuse_without_cuda_ops(cls.forward)

"""mmcv's CUDA ops on a GPU, and what the project does where mmcv was built without them.

mmcv dispatches its ops by device: built for the CPU only (the default here), a GPU tensor has no
implementation to go to and mmcv stops deep inside its extension. ``import ld.models`` calls :func:`install`:

- **NMS** (mmdet's heads and :mod:`ld.results.analysis` go through ``mmcv.ops.batched_nms`` -> ``mmcv.ops.nms``):
  on a GPU tensor without CUDA ops, torchvision's compiled ``nms`` where torchvision is installed (its CUDA
  wheels ship the kernel: the IoU test of mmcv's, ``> iou_threshold``, no offset), else the pure-torch
  :func:`ld.ops.nms.nms` (mmcv's kept boxes, tested against its kernel), with one line saying which; with CUDA
  ops, or on the CPU, mmcv's own kernel runs, untouched. torchvision's kernel keeps mmcv's boxes up to the
  order of exactly tied scores (each sorts by score with its own sort) and IoUs within float rounding of the
  threshold; the legacy ``offset=1`` always takes the pure-torch kernel (torchvision has no offset).
- **Focal loss** (ATSS, FCOS and RetinaNet: mmdet's ``FocalLoss`` calls ``mmcv.ops.sigmoid_focal_loss`` for a
  GPU tensor): without CUDA ops, :func:`sigmoid_focal_loss` computes mmdet's pure-torch focal loss
  (``py_sigmoid_focal_loss``, the one mmdet runs on the CPU) on the one-hot labels instead, with one warning
  line. mmcv's kernel clamps ``log(p)`` at ``log(FLT_MIN)``, so the two agree within float rounding for
  logits inside about ±80 (beyond, mmcv's loss is the clamped one).
- **Deformable convolutions** (the ``-DCN`` rows: mmcv's ``DeformConv2d`` / ``ModulatedDeformConv2d``, through
  ``mmcv.ops.deform_conv2d`` / ``modulated_deform_conv2d``): without CUDA ops, torchvision's compiled
  ``deform_conv2d`` where torchvision is installed (its CUDA wheels ship the kernel; mmcv itself maps its DCN
  onto it for MLU devices with these arguments, ``mmcv/ops/deform_conv.py``), else the pure-torch
  :func:`ld.ops.deform_conv.deform_conv2d` (more memory), with one line saying which.
"""
from __future__ import annotations

import functools
import sys

import torch

from ld.ops.deform_conv import deform_conv2d as torch_deform_conv2d
from ld.ops.nms import nms as torch_nms

_warned: set[str] = set()  # the ops whose fallback has said so (one line each per process)


@functools.cache
def cuda_ops_compiled() -> bool:
    """Whether this mmcv was built with its CUDA ops (``get_compiling_cuda_version`` says so)."""
    from mmcv.ops import get_compiling_cuda_version

    return get_compiling_cuda_version() != "not available"


def lacks_cuda_op(tensor: torch.Tensor) -> bool:
    """A GPU tensor, and an mmcv without CUDA ops to run on it."""
    return tensor.is_cuda and not cuda_ops_compiled()


def _warn_once(op: str, how: str) -> None:
    if op not in _warned:
        _warned.add(op)
        print(f"ld: mmcv has no CUDA ops here: {op} runs {how} (build mmcv with CUDA ops for speed, README: GPU "
              "install)", file=sys.stderr, flush=True)


def nms(boxes, scores, iou_threshold, offset=0, score_threshold=0, max_num=-1):
    """``mmcv.ops.nms`` with :func:`_nms_kernel` where mmcv has no CUDA ops for ``boxes`` (same arguments and
    result: ``(dets (K, 5) = boxes and scores, indices)``, by descending score)."""
    if not (isinstance(boxes, torch.Tensor) and lacks_cuda_op(boxes)):
        return _mmcv_nms(boxes, scores, iou_threshold, offset, score_threshold, max_num)
    kernel = _nms_kernel(int(offset))
    valid = None
    if score_threshold > 0:  # as mmcv's NMSop: filter by score, NMS, cap, map back
        valid = torch.nonzero(scores > score_threshold, as_tuple=False).squeeze(1)
        boxes_in, scores_in = boxes[valid], scores[valid]
    else:
        boxes_in, scores_in = boxes, scores
    inds = kernel(boxes_in, scores_in, float(iou_threshold))
    if max_num > 0:
        inds = inds[:max_num]
    if valid is not None:
        inds = valid[inds]
    return torch.cat((boxes[inds], scores[inds].reshape(-1, 1)), dim=1), inds


_PURE_NMS = "in pure PyTorch on the GPU (ld.ops.nms: mmcv's kept boxes; or install torchvision)"


@functools.cache
def chosen_nms_kernel():
    """torchvision's compiled ``nms(boxes, scores, iou_threshold)`` where it imports, else None (the pure-torch
    :func:`ld.ops.nms.nms`), and how to say which; looked up once per process."""
    try:
        from torchvision.ops import nms as kernel
        return kernel, "on torchvision's compiled nms"
    except (ImportError, OSError, RuntimeError):  # not installed, or its kernels do not load beside this torch
        return None, _PURE_NMS


def _nms_kernel(offset: int):
    """The NMS ``(boxes, scores, iou_threshold) -> kept indices`` that runs where mmcv has no CUDA ops
    (:func:`chosen_nms_kernel`; the pure-torch one for ``offset=1``, which torchvision lacks), said once."""
    kernel, how = chosen_nms_kernel()
    if kernel is None or offset:
        if kernel is not None:
            how = "in pure PyTorch on the GPU (ld.ops.nms: offset=1, which torchvision's nms lacks)"
        kernel = functools.partial(torch_nms, offset=offset)
    _warn_once("NMS", how)
    return kernel


def sigmoid_focal_loss(pred, target, gamma=2.0, alpha=0.25, weight=None, reduction="mean"):
    """``mmcv.ops.sigmoid_focal_loss`` with mmdet's pure-torch focal loss where mmcv has no CUDA ops for ``pred``
    (same arguments and result): ``pred`` (N, C) logits, ``target`` (N,) labels in ``[0, C]`` (``C``: the
    background), ``weight`` (C,) per class or None; reduction 'none' gives (N, C), 'mean' the sum over N,
    'sum' the sum."""
    if not (isinstance(pred, torch.Tensor) and lacks_cuda_op(pred)):
        return _mmcv_focal(pred, target, gamma, alpha, weight, reduction)
    from mmdet.models.losses.focal_loss import py_sigmoid_focal_loss

    _warn_once("focal loss", "in pure PyTorch on the GPU: mmdet's own")
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


@functools.cache
def chosen_deform_kernel():
    """torchvision's compiled ``deform_conv2d`` where it imports, else :func:`ld.ops.deform_conv.deform_conv2d`
    (both take torchvision's arguments), and how to say which; looked up once per process."""
    try:
        from torchvision.ops import deform_conv2d as kernel
        return kernel, "on torchvision's compiled deform_conv2d"
    except (ImportError, OSError, RuntimeError):  # not installed, or its kernels do not load beside this torch
        return torch_deform_conv2d, ("in pure PyTorch on the GPU (ld.ops.deform_conv: more memory; or install "
                                     "torchvision)")


def _deform_kernel():
    """The deformable convolution that runs where mmcv has no CUDA ops (:func:`chosen_deform_kernel`), said once."""
    kernel, how = chosen_deform_kernel()
    _warn_once("DCN", how)
    return kernel


def deform_conv2d(input, offset, weight, stride=1, padding=0, dilation=1, groups=1, deform_groups=1, bias=False,
                  im2col_step=32):
    """``mmcv.ops.deform_conv2d`` (DCN v1; same arguments and result) with :func:`_deform_kernel` where mmcv
    has no CUDA ops for ``input``: the groups follow from the weight's and the offset's shapes."""
    if not lacks_cuda_op(input):
        return _mmcv_deform(input, offset, weight, stride, padding, dilation, groups, deform_groups, bias,
                            im2col_step)
    return _deform_kernel()(input, offset, weight.type_as(input), None, _pair(stride), _pair(padding),
                            _pair(dilation))


def modulated_deform_conv2d(input, offset, mask, weight, bias, stride=1, padding=0, dilation=1, groups=1,
                            deform_groups=1):
    """``mmcv.ops.modulated_deform_conv2d`` (DCN v2; same arguments and result) with :func:`_deform_kernel`
    where mmcv has no CUDA ops for ``input``."""
    if not lacks_cuda_op(input):
        return _mmcv_modulated(input, offset, mask, weight, bias, stride, padding, dilation, groups, deform_groups)
    return _deform_kernel()(input, offset, weight.type_as(input), bias if isinstance(bias, torch.Tensor) else None,
                            _pair(stride), _pair(padding), _pair(dilation), mask=mask.type_as(input))


def _pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


_mmcv_nms = _mmcv_focal = _mmcv_deform = _mmcv_modulated = None


def install() -> None:
    """Put the NMS, focal-loss and deformable-convolution fallbacks in place (idempotent)."""
    global _mmcv_nms, _mmcv_focal, _mmcv_deform, _mmcv_modulated
    import mmcv.ops
    from mmcv.ops import deform_conv, modulated_deform_conv
    from mmdet.models.losses import focal_loss

    mmcv_nms_module = sys.modules["mmcv.ops.nms"]  # the package's attribute `nms` is the function
    if _mmcv_nms is None:
        _mmcv_nms = mmcv_nms_module.nms
        mmcv_nms_module.nms = nms  # batched_nms looks its NMS type up in this module
        mmcv.ops.nms = nms
    if _mmcv_focal is None:
        _mmcv_focal = focal_loss._sigmoid_focal_loss  # mmdet's FocalLoss calls it by this name for a GPU tensor
        focal_loss._sigmoid_focal_loss = sigmoid_focal_loss
    if _mmcv_deform is None:  # the modules' forward methods call these by their module names
        _mmcv_deform, deform_conv.deform_conv2d = deform_conv.deform_conv2d, deform_conv2d
        _mmcv_modulated = modulated_deform_conv.modulated_deform_conv2d
        modulated_deform_conv.modulated_deform_conv2d = modulated_deform_conv2d
        mmcv.ops.deform_conv2d, mmcv.ops.modulated_deform_conv2d = deform_conv2d, modulated_deform_conv2d

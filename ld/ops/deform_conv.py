"""Deformable convolution (DCN v1, and v2 with a modulation mask) in pure torch, on any device.

The ``-DCN`` rows' backbones use mmcv's ``DeformConv2d`` / ``ModulatedDeformConv2d``, whose kernels mmcv
compiles per device. Where mmcv has no CUDA ops, :mod:`ld.models.mmcv_cuda` runs torchvision's compiled
``deform_conv2d`` on a GPU tensor if torchvision is installed, else :func:`deform_conv2d`: the same
arguments as torchvision's, the same sampling as mmcv's CPU kernel (``mmcv/ops/csrc/pytorch/cpu/
deform_conv.cpp``, ``modulated_deform_conv.cpp``): each kernel point of each output location samples the
input at its regular position plus its learnt offset, bilinearly, with zeros outside the image (nothing
at all where the point lies a pixel or more outside); DCN v2 scales the sample by its mask; a grouped
matrix product with the weights follows. It materialises the sampled columns, ``(N, C, kh*kw, H_out,
W_out)``: memory, not speed, is its price.
"""
from __future__ import annotations

import torch
from torch import Tensor


def deform_conv2d(input: Tensor, offset: Tensor, weight: Tensor, bias: Tensor | None = None,
                  stride: tuple[int, int] = (1, 1), padding: tuple[int, int] = (0, 0),
                  dilation: tuple[int, int] = (1, 1), mask: Tensor | None = None) -> Tensor:
    """Deformable 2D convolution, as ``torchvision.ops.deform_conv2d``.

    Args:
        input: (N, C, H, W).
        offset: (N, 2 * G_d * kh * kw, H_out, W_out): per deformable group ``G_d`` and kernel point (row
            major), the (dy, dx) of the sampling position.
        weight: (C_out, C / G, kh, kw), ``G`` the convolution's groups.
        bias: (C_out,) or None.
        stride, padding, dilation: (height, width) each.
        mask: (N, G_d * kh * kw, H_out, W_out), DCN v2's modulation, or None (DCN v1).

    Returns:
        (N, C_out, H_out, W_out).
    """
    n, channels, height, width = input.shape
    out_channels, group_channels, kh, kw = weight.shape
    groups, points = channels // group_channels, kh * kw
    out_h, out_w = offset.shape[-2:]
    deform_groups = offset.shape[1] // (2 * points)
    shift = offset.reshape(n, deform_groups, points, 2, out_h, out_w)
    ky, kx = torch.meshgrid(torch.arange(kh, device=input.device), torch.arange(kw, device=input.device),
                            indexing="ij")
    rows = torch.arange(out_h, device=input.device) * stride[0] - padding[0]
    cols = torch.arange(out_w, device=input.device) * stride[1] - padding[1]
    # sampling positions (N, G_d, kh*kw, H_out, W_out)
    y = (rows[None, :, None] + ky.reshape(-1, 1, 1) * dilation[0]).to(input.dtype) + shift[:, :, :, 0]
    x = (cols[None, None, :] + kx.reshape(-1, 1, 1) * dilation[1]).to(input.dtype) + shift[:, :, :, 1]
    image = input.reshape(n, deform_groups, channels // deform_groups, height * width)
    inside = (y > -1) & (y < height) & (x > -1) & (x < width)
    y0, x0 = torch.floor(y), torch.floor(x)
    sampled = input.new_zeros(n, deform_groups, channels // deform_groups, points * out_h * out_w)
    for corner_y in (y0, y0 + 1):
        for corner_x in (x0, x0 + 1):
            weight_yx = (1 - (y - corner_y).abs()) * (1 - (x - corner_x).abs())
            valid = inside & (corner_y >= 0) & (corner_y <= height - 1) & (corner_x >= 0) & (corner_x <= width - 1)
            index = (corner_y.clamp(0, height - 1) * width + corner_x.clamp(0, width - 1)).long()
            values = torch.gather(image, 3, index.reshape(n, deform_groups, 1, -1).expand(
                -1, -1, channels // deform_groups, -1))
            sampled = sampled + values * (weight_yx * valid).reshape(n, deform_groups, 1, -1)
    sampled = sampled.reshape(n, deform_groups, channels // deform_groups, points, out_h, out_w)
    if mask is not None:
        sampled = sampled * mask.reshape(n, deform_groups, 1, points, out_h, out_w)
    columns = sampled.reshape(n, groups, group_channels * points, out_h * out_w)
    out = torch.einsum("gok,ngkp->ngop", weight.reshape(groups, out_channels // groups, -1), columns)
    out = out.reshape(n, out_channels, out_h, out_w)
    return out if bias is None else out + bias.reshape(1, -1, 1, 1)

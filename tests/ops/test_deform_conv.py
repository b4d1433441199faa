"""The pure-torch deformable convolution (DCN v1 and v2) against mmcv's compiled CPU kernels: the same outputs
and gradients within float32 rounding on random cases over groups, deformable groups, kernel shapes, stride,
padding, dilation, masks and bias (measured: a relative difference of at most 2e-7 of the largest output)."""
from __future__ import annotations

import pytest
import torch

from ld.ops.deform_conv import deform_conv2d

mmcv_ops = pytest.importorskip("mmcv.ops")
REL = 1e-5  # of the largest absolute value compared


def _case(case: int, gen: torch.Generator):
    groups, deform_groups = (1, 2)[case % 2], (1, 2)[case // 2 % 2]
    kh, kw = ((3, 3), (1, 3), (3, 1), (2, 2))[case % 4]
    stride, padding, dilation = (1, 2)[case // 4 % 2], (0, 1, 2)[case % 3], (1, 2)[case // 3 % 2]
    channels, out_channels, height, width = 4 * groups * deform_groups, 6 * groups, 9, 11
    out_h = (height + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    out_w = (width + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    x = torch.randn(2, channels, height, width, generator=gen)
    offset = torch.randn(2, 2 * deform_groups * kh * kw, out_h, out_w, generator=gen) * 3  # many points outside
    weight = torch.randn(out_channels, channels // groups, kh, kw, generator=gen)
    mask = torch.rand(2, deform_groups * kh * kw, out_h, out_w, generator=gen)
    bias = torch.randn(out_channels, generator=gen)
    return x, offset, weight, mask, bias, (stride, padding, dilation, groups, deform_groups)


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and bool((a - b).abs().max() <= REL * b.abs().max())


@pytest.mark.parametrize("modulated", [False, True], ids=["dcn_v1", "dcn_v2"])
def test_the_pure_deform_conv_is_mmcvs_cpu_kernel_on_random_cases(modulated):
    gen = torch.Generator().manual_seed(int(modulated))
    for case in range(24):
        x, offset, weight, mask, bias, (s, p, d, groups, deform_groups) = _case(case, gen)
        if modulated:
            expected = mmcv_ops.modulated_deform_conv2d(x, offset, mask, weight, bias, s, p, d, groups, deform_groups)
            got = deform_conv2d(x, offset, weight, bias, (s, s), (p, p), (d, d), mask=mask)
        else:
            expected = mmcv_ops.deform_conv2d(x, offset, weight, s, p, d, groups, deform_groups)
            got = deform_conv2d(x, offset, weight, None, (s, s), (p, p), (d, d))
        assert _close(got, expected), case


def test_gradients_are_mmcvs():
    gen = torch.Generator().manual_seed(2)
    for case in range(8):
        x, offset, weight, mask, bias, (s, p, d, groups, deform_groups) = _case(case, gen)
        grads = []
        for ours in (False, True):
            inputs = [t.clone().requires_grad_() for t in (x, offset, mask, weight, bias)]
            xi, oi, mi, wi, bi = inputs
            out = (deform_conv2d(xi, oi, wi, bi, (s, s), (p, p), (d, d), mask=mi) if ours else
                   mmcv_ops.modulated_deform_conv2d(xi, oi, mi, wi, bi, s, p, d, groups, deform_groups))
            out.square().sum().backward()
            grads.append([t.grad for t in inputs])
        for name, ours, theirs in zip(("input", "offset", "mask", "weight", "bias"), *grads):
            assert _close(ours, theirs), (case, name)


def test_a_worked_example():
    """One channel, a 1x1 kernel of weight 1: each output is the input sampled at its position plus the
    offset, bilinearly; a point a pixel or more outside the image samples nothing."""
    x = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
    weight = torch.ones(1, 1, 1, 1)
    offset = torch.zeros(1, 2, 2, 2)
    offset[0, :, 0, 0] = torch.tensor([0.5, 0.5])  # (0.5, 0.5): the mean of the four pixels
    offset[0, :, 0, 1] = torch.tensor([0.0, -0.25])  # (0, 0.75): 0.25 * 0 + 0.75 * 1
    offset[0, :, 1, 1] = torch.tensor([1.0, 0.0])  # (2, 1): a whole pixel below the image
    out = deform_conv2d(x, offset, weight)
    assert out.flatten().tolist() == [1.5, 0.75, 2.0, 0.0]

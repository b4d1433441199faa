"""Without mmcv's CUDA ops: NMS runs on torchvision's kernel or the pure-torch one, which keeps exactly mmcv's
boxes; the focal loss is mmdet's pure-torch one; DCN runs on torchvision's kernel or the pure-torch one with
mmcv's results.

No GPU here: a missing CUDA op is simulated by making :func:`ld.models.mmcv_cuda.lacks_cuda_op` say so for CPU
tensors, so the fallback runs where mmcv's own kernel can be run beside it."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import ld.models  # noqa: F401  (registers the modules)
import ld.models.mmcv_cuda
from ld.ops.nms import nms as torch_nms

ld.models.mmcv_cuda.install()  # as `import ld` does


@pytest.fixture
def without_cuda_ops(monkeypatch):
    monkeypatch.setattr(ld.models.mmcv_cuda, "lacks_cuda_op", lambda tensor: True)
    monkeypatch.setattr(ld.models.mmcv_cuda, "_warned", set())
    for chosen in (ld.models.mmcv_cuda.chosen_deform_kernel, ld.models.mmcv_cuda.chosen_nms_kernel):
        chosen.cache_clear()  # the kernels are looked up again (torchvision stand-ins)
    yield
    for chosen in (ld.models.mmcv_cuda.chosen_deform_kernel, ld.models.mmcv_cuda.chosen_nms_kernel):
        chosen.cache_clear()


def _torchvision_stand_in(monkeypatch, **ops):
    """A module named ``torchvision.ops`` with ``ops``: what ``from torchvision.ops import ...`` then finds."""
    import sys
    import types

    stub = types.ModuleType("torchvision.ops")
    stub.__dict__.update(ops)
    monkeypatch.setitem(sys.modules, "torchvision", types.ModuleType("torchvision"))
    monkeypatch.setitem(sys.modules, "torchvision.ops", stub)


def _random_boxes(rng, n, clustered):
    centers = rng.uniform(0, 200, (max(1, n // 6) if clustered else n, 2))
    c = centers[rng.integers(0, len(centers), n)] + rng.normal(0, 6 if clustered else 0, (n, 2))
    wh = rng.uniform(4, 60, (n, 2))
    boxes = np.concatenate([c - wh / 2, c + wh / 2], axis=1).astype(np.float32)
    return torch.from_numpy(boxes), torch.from_numpy(rng.uniform(0, 1, n).astype(np.float32))


def test_the_pure_nms_keeps_mmcvs_boxes_on_random_cases():
    rng = np.random.default_rng(0)
    for case in range(60):
        n = int(rng.choice([0, 1, 2, 7, 50, 300]))
        boxes, scores = _random_boxes(rng, n, clustered=case % 2 == 0)
        thr, offset = float(rng.choice([0.3, 0.5, 0.6, 0.7])), int(case % 3 == 0)
        _, expected = ld.models.mmcv_cuda._mmcv_nms(boxes, scores, thr, offset)  # mmcv's compiled CPU kernel
        assert torch.equal(torch_nms(boxes, scores, thr, offset), expected), (case, n, thr, offset)


def test_a_known_case():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9.0]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95])
    # IoU(3, 0) = 90/100 > 0.5: box 0 goes; box 1 overlaps box 3 by 72/(90+100-72) = 0.61 > 0.5: it goes too
    assert torch_nms(boxes, scores, 0.5).tolist() == [3, 2]
    assert torch_nms(boxes, scores, 0.95).tolist() == [3, 0, 1, 2]


def test_batched_nms_falls_back_with_one_warning_and_keeps_the_same_detections(without_cuda_ops, capsys):
    from mmcv.ops import batched_nms

    rng = np.random.default_rng(1)
    for case in range(20):
        boxes, scores = _random_boxes(rng, 200, clustered=True)
        labels = torch.from_numpy(rng.integers(0, 3, 200))
        cfg = {"type": "nms", "iou_threshold": 0.6, **({"score_threshold": 0.3, "max_num": 40} if case % 2 else {})}
        dets, keep = batched_nms(boxes, scores, labels, dict(cfg))
        ld.models.mmcv_cuda.lacks_cuda_op = lambda tensor: False  # mmcv's kernel, the reference
        ref_dets, ref_keep = batched_nms(boxes, scores, labels, dict(cfg))
        ld.models.mmcv_cuda.lacks_cuda_op = lambda tensor: True
        assert torch.equal(keep, ref_keep) and torch.equal(dets, ref_dets), case
    assert capsys.readouterr().err.count("mmcv has no CUDA ops here") == 1


def test_torchvisions_nms_is_chosen_where_it_imports(without_cuda_ops, monkeypatch, capsys):
    """torchvision's compiled nms (its CUDA wheels ship it) comes first: simulated by a module of that name
    whose nms records its arguments (torchvision's signature: boxes, scores, iou_threshold) and runs the pure
    kernel; mmcv's score filter and cap are applied around it as mmcv's NMSop does. The legacy offset=1, which
    torchvision's nms lacks, takes the pure kernel."""
    from mmcv.ops import batched_nms, nms

    calls = []
    _torchvision_stand_in(monkeypatch, nms=lambda *args: calls.append(args[2:]) or torch_nms(*args))
    rng = np.random.default_rng(2)
    boxes, scores = _random_boxes(rng, 200, clustered=True)
    labels = torch.from_numpy(rng.integers(0, 3, 200))
    cfg = {"type": "nms", "iou_threshold": 0.6, "score_threshold": 0.3, "max_num": 40}
    dets, keep = batched_nms(boxes, scores, labels, dict(cfg))
    assert calls == [(0.6,)]
    assert "NMS runs on torchvision's compiled nms" in capsys.readouterr().err
    ld.models.mmcv_cuda.lacks_cuda_op = lambda tensor: False  # mmcv's kernel, the reference
    ref_dets, ref_keep = batched_nms(boxes, scores, labels, dict(cfg))
    assert torch.equal(keep, ref_keep) and torch.equal(dets, ref_dets)
    ld.models.mmcv_cuda.lacks_cuda_op = lambda tensor: True
    monkeypatch.setattr(ld.models.mmcv_cuda, "_warned", set())
    _, legacy = nms(boxes, scores, 0.5, offset=1)
    assert len(calls) == 1 and torch.equal(legacy, torch_nms(boxes, scores, 0.5, offset=1))
    assert "NMS runs in pure PyTorch on the GPU (ld.ops.nms: offset=1" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="compares with mmcv's CPU kernel: evaluation runs on the CPU")
def test_ld_eval_through_the_fallback_gives_the_same_metrics(tiny_run, tmp_path, monkeypatch, capsys):
    from ld.cli import main

    monkeypatch.chdir(tiny_run)  # the fixture's config reads its data relative to here
    def ld_eval(name):
        assert main(["eval", str(tiny_run / "model" / "config.py"), str(tiny_run / "model" / "model.pth"), "--out",
                     str(tmp_path / f"{name}.json"), "--results-out", str(tmp_path / f"{name}.bbox.json")]) == 0
        return [json.loads((tmp_path / f"{name}{ext}").read_text()) for ext in (".json", ".bbox.json")]

    metrics, dets = ld_eval("mmcv")
    monkeypatch.setattr(ld.models.mmcv_cuda, "lacks_cuda_op", lambda tensor: True)
    monkeypatch.setattr(ld.models.mmcv_cuda, "_warned", set())
    assert ld_eval("fallback") == [metrics, dets] and dets  # the same detections, boxes and scores
    assert capsys.readouterr().err.count("mmcv has no CUDA ops here") == 1


def test_mmdets_focal_loss_goes_through_the_fallback_where_it_calls_mmcvs_op():
    from mmdet.models.losses import focal_loss

    assert focal_loss._sigmoid_focal_loss is ld.models.mmcv_cuda.sigmoid_focal_loss  # FocalLoss's GPU branch


def test_the_focal_loss_fallback_is_mmdets_cpu_focal_loss_on_random_cases(without_cuda_ops, capsys):
    """mmdet's GPU branch (``sigmoid_focal_loss``: labels, mmcv's op, then weights and reduction) through the
    fallback equals its CPU branch (``FocalLoss`` on a CPU tensor: one-hot labels, ``py_sigmoid_focal_loss``)
    bit for bit, for every reduction, with and without sample weights and avg_factor."""
    from mmdet.models.losses import FocalLoss
    from mmdet.models.losses.focal_loss import sigmoid_focal_loss as gpu_branch

    gen = torch.Generator().manual_seed(0)
    for case in range(40):
        n, c = int(torch.randint(1, 300, (1,), generator=gen)), int(torch.randint(1, 81, (1,), generator=gen))
        pred = torch.randn(n, c, generator=gen) * 4
        target = torch.randint(0, c + 1, (n,), generator=gen)  # c: background
        weight = torch.rand(n, generator=gen) if case % 2 else None
        avg_factor = float(n) / 3 if case % 3 == 0 else None
        reduction = ("mean", "sum", "none")[case % 3] if avg_factor is None else "mean"
        gamma, alpha = (2.0, 0.25) if case % 4 else (1.5, 0.5)
        loss = FocalLoss(gamma=gamma, alpha=alpha, loss_weight=1.0)
        cpu = loss(pred, target, weight, avg_factor=avg_factor, reduction_override=reduction)
        gpu = gpu_branch(pred, target, weight, gamma=gamma, alpha=alpha, reduction=reduction, avg_factor=avg_factor)
        assert torch.equal(gpu, cpu), case
    assert capsys.readouterr().err.count("focal loss runs in pure PyTorch") == 1


def test_the_focal_loss_fallback_on_a_worked_example(without_cuda_ops):
    """Logit 0 (p = 1/2), alpha 1/4, gamma 2: the labelled class costs alpha (1-p)^2 ln 2 = ln2/16, every
    other class (1-alpha) p^2 ln 2 = 3 ln2/16; a background label (= the class count) has no labelled class."""
    pred, target = torch.zeros(2, 3, dtype=torch.float64), torch.tensor([1, 3])
    loss = ld.models.mmcv_cuda.sigmoid_focal_loss(pred, target, 2.0, 0.25, None, "none")
    ln2 = torch.log(torch.tensor(2.0, dtype=torch.float64))
    expected = torch.tensor([[3, 1, 3], [3, 3, 3]], dtype=torch.float64) * ln2 / 16
    assert torch.allclose(loss, expected, rtol=1e-15, atol=0)
    assert ld.models.mmcv_cuda.sigmoid_focal_loss(pred, target, 2.0, 0.25, None, "mean") == loss.sum() / 2
    weighted = ld.models.mmcv_cuda.sigmoid_focal_loss(pred[:1], target[:1], 2.0, 0.25, torch.tensor([1.0, 2.0, 3.0],
                                                      dtype=torch.float64), "none")
    assert torch.equal(weighted, 2 * loss[:1])  # the sample's label's weight, on every class
    with pytest.raises(ValueError, match="weight needs every label below the class count"):
        ld.models.mmcv_cuda.sigmoid_focal_loss(pred, target, 2.0, 0.25, torch.ones(3, dtype=torch.float64), "sum")


@pytest.mark.parametrize("pack", ["DeformConv2dPack", "ModulatedDeformConv2dPack"])
def test_mmcvs_dcn_modules_run_the_pure_kernel_without_cuda_ops_with_mmcvs_results(pack, without_cuda_ops, capsys):
    """No torchvision here: the pure-torch kernel (ld.ops.deform_conv), through mmcv's own modules, gives their
    CPU kernel's output and gradients within float32 rounding (tests/ops/test_deform_conv.py: 1e-5 relative)."""
    import mmcv.ops

    torch.manual_seed(0)
    conv = getattr(mmcv.ops, pack)(8, 6, 3, padding=1, stride=2, deform_groups=2)
    torch.nn.init.normal_(conv.conv_offset.weight, std=0.3)  # real offsets (mmcv starts them at zero)
    x = torch.rand(2, 8, 13, 10)
    results = {}
    for name, lacks in (("fallback", True), ("mmcv", False)):
        ld.models.mmcv_cuda.lacks_cuda_op = lambda tensor, lacks=lacks: lacks
        inputs = x.clone().requires_grad_()
        conv.zero_grad()
        out = conv(inputs)
        out.square().sum().backward()
        results[name] = [out, inputs.grad, conv.weight.grad, conv.conv_offset.weight.grad]
    for ours, theirs in zip(results["fallback"], results["mmcv"]):
        assert (ours - theirs).abs().max() <= 1e-5 * theirs.abs().max()
    assert capsys.readouterr().err.count("DCN runs in pure PyTorch") == 1


def test_torchvisions_kernel_is_chosen_where_it_imports(without_cuda_ops, monkeypatch, capsys):
    """torchvision (its CUDA wheels' compiled deform_conv2d) comes first: simulated by a module of that name
    whose deform_conv2d records its arguments (those of torchvision's signature) and runs the pure kernel."""
    import mmcv.ops

    from ld.ops.deform_conv import deform_conv2d as pure

    calls = []
    _torchvision_stand_in(monkeypatch, deform_conv2d=lambda *args, **kwargs: calls.append((args[3:], kwargs))
                          or pure(*args, **kwargs))
    conv = mmcv.ops.ModulatedDeformConv2dPack(4, 4, 3, padding=2, dilation=2)
    conv(torch.rand(1, 4, 7, 7))
    [(args, kwargs)] = calls
    assert args == (conv.bias, (1, 1), (2, 2), (2, 2)) and set(kwargs) == {"mask"}
    assert "DCN runs on torchvision's compiled deform_conv2d" in capsys.readouterr().err


@pytest.mark.parametrize("row", ["gfl_r101_dcn_2x", "gflv2_r101_dcn_2x"])
def test_a_dcn_row_runs_without_cuda_ops_with_mmcvs_features(row, without_cuda_ops, repo_root):
    from mmdet.registry import MODELS

    from ld.models.distiller import student_only
    from ld.profiles import load_params, resolve_config

    cfg = student_only(resolve_config(f"pipelines/configs/{row}.py", load_params(), "smoke"))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    x = torch.rand(1, 3, 96, 96)  # mmcv's DCN refuses a feature map smaller than its kernel (c5: 3x3)
    with torch.no_grad():
        fallback = model.extract_feat(x)
        ld.models.mmcv_cuda.lacks_cuda_op = lambda tensor: False  # mmcv's CPU kernels, the reference
        reference = model.extract_feat(x)
    for ours, theirs in zip(fallback, reference):
        assert (ours - theirs).abs().max() <= 1e-4 * theirs.abs().max()  # float32 through 101 layers


def test_with_cuda_ops_or_on_the_cpu_mmcvs_own_ops_run():
    from mmcv.ops import DeformConv2dPack

    assert not ld.models.mmcv_cuda.lacks_cuda_op(torch.zeros(1))  # a CPU tensor: mmcv's CPU kernels
    conv = DeformConv2dPack(4, 4, 3, padding=1)
    assert conv(torch.rand(1, 4, 8, 8)).shape == (1, 4, 8, 8)


def _build_env(monkeypatch, capsys, cuda, nvcc_dir=None, arch=None):
    import importlib.util

    from tests.conftest import REPO

    spec = importlib.util.spec_from_file_location("mmcv_build_env", REPO / "requirements/mmcv_build_env.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(torch.version, "cuda", cuda)
    monkeypatch.setenv("PATH", str(nvcc_dir) if nvcc_dir else "/nonexistent")
    for var in ("CUDA_HOME", "CUDA_PATH", "TORCH_CUDA_ARCH_LIST"):
        monkeypatch.delenv(var, raising=False)
    if arch:
        monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", arch)
    monkeypatch.setattr(module, "DEFAULT_CUDA_HOME", "/nonexistent")
    code = module.main()
    out = capsys.readouterr()
    return code, out.out.strip(), out.err


def test_make_install_builds_cpu_ops_for_a_cpu_torch(monkeypatch, capsys):
    assert _build_env(monkeypatch, capsys, cuda=None) == (0, "MMCV_WITH_OPS=1 FORCE_CUDA=0", "")


def test_make_install_refuses_a_cuda_torch_without_nvcc_saying_what_to_install(monkeypatch, capsys):
    code, out, err = _build_env(monkeypatch, capsys, cuda="12.6")
    assert code == 2 and out == "" and "no nvcc was found" in err and "CUDA 12.x toolkit" in err


def test_make_install_builds_cuda_ops_with_nvcc_for_the_given_archs(monkeypatch, capsys, tmp_path):
    (tmp_path / "cuda" / "bin").mkdir(parents=True)
    nvcc = tmp_path / "cuda" / "bin" / "nvcc"
    nvcc.write_text("#!/bin/sh\n")
    nvcc.chmod(0o755)
    code, out, _ = _build_env(monkeypatch, capsys, cuda="12.6", nvcc_dir=nvcc.parent, arch="8.0 9.0")
    assert code == 0 and out == (f"MMCV_WITH_OPS=1 FORCE_CUDA=1 CUDA_HOME={tmp_path / 'cuda'} "
                                 "TORCH_CUDA_ARCH_LIST=8.0;9.0 PIP_NO_CACHE_DIR=1")

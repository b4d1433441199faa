"""The distillation terms (ld.ops.distillation) on hand-made tensors: the region each reads, its weights
and upstream's divisors, against values worked out by hand; and the run's guards (non-finite losses,
term settings)."""
import math
from types import SimpleNamespace

import pytest
import torch

from ld.ops.distillation import MAIN_LD_DIVISOR, VLR_LD_DIVISOR, class_kd, main_region_ld, vlr_ld
from ld.ops.distribution import flatten_levels

# One edge over 2 bins (reg_max = 1), T = 1: the student uniform, the teacher softmax([ln 3, 0]) = [3/4, 1/4].
# KL(teacher || student) averaged over the 2 bins:
EDGE_KL = (0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)) / 2
T_EDGE = [math.log(3.0), 0.0]


def _reg(edges_per_location: list[list[float]]) -> torch.Tensor:
    """``(1, A, 4 * 2)`` edge logits: each location's four edges the same 2-bin logits."""
    return torch.tensor([[row * 4 for row in edges_per_location]])


def test_flatten_levels_orders_locations_level_by_level_row_major():
    level0 = torch.arange(8.0).reshape(1, 2, 2, 2)  # (B=1, C=2, H=2, W=2)
    level1 = torch.tensor([[[[10.0]], [[11.0]]]])  # (1, 2, 1, 1)
    flat = flatten_levels([level0, level1])
    assert flat.shape == (1, 5, 2)
    assert flat[0].tolist() == [[0, 4], [1, 5], [2, 6], [3, 7], [10, 11]]


def test_main_region_ld_weights_each_positive_by_its_max_class_score_and_divides_by_four():
    s_reg = _reg([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    t_reg = _reg([T_EDGE, T_EDGE, [9.0, -9.0]])  # the third location disagrees most, but is not positive
    s_cls = torch.tensor([[[0.0, math.log(3.0)], [math.log(1 / 3), -5.0], [4.0, 4.0]]])  # max sigmoid 3/4, 1/4
    pos = torch.tensor([[True, True, False]])
    expected = (4 * EDGE_KL * 0.75 + 4 * EDGE_KL * 0.25) / MAIN_LD_DIVISOR
    assert MAIN_LD_DIVISOR == 4
    torch.testing.assert_close(main_region_ld(s_reg, t_reg, s_cls, pos, T=1.0), torch.tensor(expected))
    # per_positive: divided by the region's size as well
    torch.testing.assert_close(main_region_ld(s_reg, t_reg, s_cls, pos, T=1.0, normalizer=2.0),
                               torch.tensor(expected / 2))


def test_main_region_ld_is_zero_where_student_and_teacher_agree_and_sends_no_gradient_to_the_weights():
    torch.manual_seed(0)  # float32 rounding leaves ~1e-6 of KL(p || p) * T^2; a real difference is ~0.1
    s_reg = torch.randn(2, 5, 4 * 17, requires_grad=True)
    s_cls = torch.randn(2, 5, 3, requires_grad=True)
    pos = torch.rand(2, 5) > 0.3
    loss = main_region_ld(s_reg, s_reg.detach().clone(), s_cls, pos, T=10.0)
    assert abs(loss.item()) < 1e-5
    main_region_ld(s_reg, torch.randn(2, 5, 4 * 17), s_cls, pos, T=10.0).backward()
    assert s_cls.grad is None and s_reg.grad is not None
    assert s_reg.grad[~pos].abs().sum() == 0  # locations outside the region get nothing


def test_an_image_without_positives_gives_exactly_zero():
    s_reg = torch.randn(1, 4, 8, requires_grad=True)
    none = torch.zeros(1, 4, dtype=torch.bool)
    assert main_region_ld(s_reg, torch.randn(1, 4, 8), torch.randn(1, 4, 3), none, T=10.0).item() == 0
    assert vlr_ld(s_reg, torch.randn(1, 4, 8), torch.zeros(1, 4), T=10.0).item() == 0
    assert class_kd(torch.randn(1, 4, 3), torch.randn(1, 4, 3), none, torch.zeros(4, dtype=torch.long),
                    T=2.0).item() == 0


def test_vlr_ld_weights_by_the_vlr_weight_and_divides_by_sixteen():
    s_reg = _reg([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    t_reg = _reg([T_EDGE, T_EDGE, T_EDGE])
    weight = torch.tensor([[0.5, 0.0, 0.25]])  # the middle location is outside the VLR
    expected = 4 * EDGE_KL * (0.5 + 0.25) / VLR_LD_DIVISOR
    assert VLR_LD_DIVISOR == 16
    torch.testing.assert_close(vlr_ld(s_reg, t_reg, weight, T=1.0), torch.tensor(expected))
    # per_positive: divided by 4 edges times the region's size (2 locations)
    torch.testing.assert_close(vlr_ld(s_reg, t_reg, weight, T=1.0, normalizer=2.0),
                               torch.tensor(4 * EDGE_KL * 0.75 / (4 * 2)))


def test_class_kd_upstream_is_the_mean_over_each_levels_positives_summed_over_levels():
    # three classes; KL per location known from its own teacher row (student uniform)
    def kl(t_row):
        p = torch.softmax(torch.tensor(t_row), 0)
        return float((p * (p * 3).log()).mean())

    rows = [[1.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [5.0, 5.0, -5.0]]
    s_cls, t_cls = torch.zeros(1, 4, 3), torch.tensor([rows])
    pos = torch.tensor([[True, True, True, False]])
    level = torch.tensor([0, 0, 1, 1])  # two positives on level 0, one on level 1
    k = [kl(r) for r in rows]
    torch.testing.assert_close(class_kd(s_cls, t_cls, pos, level, T=1.0),
                               torch.tensor((k[0] + k[1]) / 2 + k[2]))
    torch.testing.assert_close(class_kd(s_cls, t_cls, pos, level, T=1.0, normalizer=3.0),
                               torch.tensor((k[0] + k[1] + k[2]) / 3))


def test_the_temperature_scales_by_t_squared_for_equal_softened_distributions():
    # KD at T=2 of logits 2x those at T=1 gives 4x the loss: the T^2 factor
    s_cls, pos, level = torch.zeros(1, 1, 3), torch.tensor([[True]]), torch.tensor([0])
    t1 = class_kd(s_cls, torch.tensor([[[1.0, 0.0, 0.0]]]), pos, level, T=1.0)
    t2 = class_kd(s_cls, torch.tensor([[[2.0, 0.0, 0.0]]]), pos, level, T=2.0)
    torch.testing.assert_close(t2, 4 * t1)


# --- guards ---------------------------------------------------------------------------------------------------

def test_a_non_finite_loss_stops_the_run_naming_iteration_and_losses():
    from ld.engine.nonfinite import NonFiniteLossError, NonFiniteLossHook

    hook = NonFiniteLossHook()
    runner = SimpleNamespace(iter=41, epoch=2, work_dir="work/smoke/run/abc")
    hook.after_train_iter(runner, 0, outputs={"loss": torch.tensor(1.5), "loss_ld": torch.tensor(0.25)})
    with pytest.raises(NonFiniteLossError) as err:
        hook.after_train_iter(runner, 0, outputs={"loss": torch.tensor(float("nan")), "loss_cls": torch.tensor(0.5),
                                                  "loss_ld": [torch.tensor(1.0), torch.tensor(float("inf"))]})
    message = str(err.value)
    assert "iteration 42 (epoch 3)" in message
    assert "loss, loss_ld (" in message and "loss_cls=0.5" in message and "loss_ld=inf" in message
    assert "work/smoke/run/abc" in message


def test_distillation_term_settings_are_checked_by_name():
    from ld.errors import ConfigError
    from ld.models.ld_head import DistillTerm

    with pytest.raises(ConfigError, match=r"bbox_head\.ld_vlr\.alhpa is not a setting"):
        DistillTerm.from_config("ld_vlr", dict(enabled=True, loss_weight=0.25, T=10, alhpa=0.3))
    with pytest.raises(ConfigError, match=r"bbox_head\.kd_main\.T is missing"):
        DistillTerm.from_config("kd_main", dict(enabled=True, loss_weight=10))
    with pytest.raises(ConfigError, match=r"bbox_head\.ld_main must say explicitly"):
        DistillTerm.from_config("ld_main", dict(loss_weight=1, T=1))


def test_a_checkpoint_digest_is_computed_once_per_file_version(tmp_path, monkeypatch):
    import hashlib
    import os

    from ld import checkpoint

    path = tmp_path / "model.pth"
    path.write_bytes(b"a" * 100)
    calls = []
    real = hashlib.sha256
    monkeypatch.setattr(checkpoint.hashlib, "sha256", lambda *a: calls.append(1) or real(*a))
    first = checkpoint.file_digest(path)
    assert checkpoint.file_digest(path) == first and len(calls) == 1
    path.write_bytes(b"b" * 100)  # same size, new bytes: a new version
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1000))
    assert checkpoint.file_digest(path) == hashlib.sha256(b"b" * 100).hexdigest() != first

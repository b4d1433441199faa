import math

import pytest
import torch

from ld.ops.ambiguity import entropy, kl_divergence, normalized_entropy, top_gap
from ld.ops.distribution import edge_probabilities, expected_offset


def test_entropy_of_one_hot_is_zero_and_of_uniform_is_log_bins():
    one_hot = torch.zeros(17)
    one_hot[3] = 1
    assert entropy(one_hot).item() == pytest.approx(0.0, abs=1e-6)
    assert entropy(torch.full((17,), 1 / 17)).item() == pytest.approx(math.log(17))
    assert normalized_entropy(torch.full((5, 17), 1 / 17)).tolist() == pytest.approx([1.0] * 5)


def test_two_peaks_are_more_ambiguous_than_one():
    one = torch.tensor([0.0, 0.9, 0.1, 0.0])
    two = torch.tensor([0.0, 0.5, 0.0, 0.5])
    assert entropy(two) > entropy(one)
    assert top_gap(one).item() == pytest.approx(0.8) and top_gap(two).item() == pytest.approx(0.0)


def test_kl_is_zero_for_equal_distributions_and_positive_otherwise():
    p = torch.tensor([0.2, 0.5, 0.3])
    assert kl_divergence(p, p).item() == pytest.approx(0.0, abs=1e-7)
    q = torch.tensor([0.6, 0.2, 0.2])
    expected = sum(a * math.log(a / b) for a, b in zip(p.tolist(), q.tolist()))
    assert kl_divergence(p, q).item() == pytest.approx(expected)


def test_edge_probabilities_split_the_four_edges_and_give_the_integral():
    logits = torch.full((2, 68), -30.0)
    for edge, bin_ in enumerate((1, 2, 3, 4)):
        logits[:, edge * 17 + bin_] = 30.0
    probs = edge_probabilities(logits)
    assert probs.shape == (2, 4, 17)
    torch.testing.assert_close(probs.sum(-1), torch.ones(2, 4))
    torch.testing.assert_close(expected_offset(probs), torch.tensor([[1.0, 2.0, 3.0, 4.0]] * 2))
    # the bins on another dim (a head's (B, 4, bins, H, W) map): the same integral, summed where they lie
    # (moving them last would change the order of the sum, and a trained model's last bits)
    torch.manual_seed(0)
    maps = torch.randn(3, 4, 17, 5, 6).softmax(dim=2)
    torch.testing.assert_close(expected_offset(maps, dim=2), expected_offset(maps.movedim(2, -1)))
    assert torch.equal(expected_offset(maps, dim=2), (maps * torch.arange(17.0)[:, None, None]).sum(dim=2))
    half = torch.tensor([0.5, 0.5, 0.0])  # bins 0 and 1 equally likely: 0.5
    assert expected_offset(torch.stack([half, half.flip(0)], dim=1), dim=0).tolist() == [0.5, 1.5]

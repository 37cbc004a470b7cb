"""Losses against hand-computed values and BABEL's written-out class-balanced focal formula."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from trainer.losses import ClassBalancedFocalLoss, CrossEntropyLoss, build_loss, class_balanced_weights

LN2 = math.log(2)


def test_class_balanced_weights_by_hand():
    # β = 0.5: raw weights 0.5 / (1 - 0.5) = 1 and 0.5 / (1 - 0.125) = 4/7; rescaled to sum K = 2
    np.testing.assert_allclose(class_balanced_weights([1, 3], 0.5), [14 / 11, 8 / 11], rtol=1e-12)
    np.testing.assert_allclose(class_balanced_weights([5, 1, 100], 0.0), [1, 1, 1])  # β = 0: all equal
    np.testing.assert_allclose(class_balanced_weights([0, 1], 0.5), [1, 1])  # an absent class counts as one
    w = class_balanced_weights([10, 100, 1000], 0.9999)  # BABEL's β: close to inverse frequency
    assert w.sum() == pytest.approx(3) and w[0] > w[1] > w[2]


@pytest.mark.parametrize("counts, beta, match", [([1, 2], 1.0, "beta"), ([1, -1], 0.9, "non-negative"),
                                                 ([], 0.9, "non-empty")])
def test_class_balanced_weights_refuses(counts, beta, match):
    with pytest.raises(ValueError, match=match):
        class_balanced_weights(counts, beta)


def test_focal_by_hand():
    # counts [1, 3] with β = 0.5 weight class 0 by 14/11 and class 1 by 8/11. Sample 1 (label 0), logits
    # (0, ln 3): class 0 is right with p = 1/2, BCE ln 2, modulator 1 - p = 1/2; class 1 is wrong with p = 3/4,
    # BCE ln 4, modulator p = 3/4; 1/2·ln 2 + 3/4·2 ln 2 = 2 ln 2. Sample 2 (label 1), logits (0, 0): 2·(1/2·ln 2).
    loss = ClassBalancedFocalLoss([1, 3], beta=0.5, gamma=1.0)
    logits = torch.tensor([[0.0, math.log(3)], [0.0, 0.0]])
    assert loss(logits[:1], torch.tensor([0])).item() == pytest.approx(14 / 11 * 2 * LN2, rel=1e-6)
    assert loss(logits, torch.tensor([0, 1])).item() == pytest.approx((14 / 11 * 2 + 8 / 11) * LN2 / 2, rel=1e-6)
    # γ = 2 squares the modulators: (1/4·ln 2 + 9/16·2 ln 2)
    loss2 = ClassBalancedFocalLoss([1, 3], beta=0.5, gamma=2.0)
    assert loss2(logits[:1], torch.tensor([0])).item() == pytest.approx(14 / 11 * (1 / 4 + 9 / 8) * LN2, rel=1e-6)


def reference_formula(logits, labels, weights, gamma):
    """BABEL's CB focal loss written out as in the spec: modulator exp(-γ·y·z - γ·log(1 + e^{-z}))."""
    y = F.one_hot(labels, logits.shape[1]).double()
    z = logits.double()
    bce = -(y * torch.log(torch.sigmoid(z)) + (1 - y) * torch.log(1 - torch.sigmoid(z)))
    modulator = torch.exp(-gamma * y * z - gamma * torch.log(1 + torch.exp(-z)))
    alpha = (torch.as_tensor(weights)[None, :] * y).sum(1, keepdim=True)
    return (alpha * modulator * bce).sum() / y.sum()


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0])
def test_focal_matches_the_reference_formula(gamma):
    g = torch.Generator().manual_seed(int(10 * gamma))
    logits = 3 * torch.randn(16, 7, generator=g)
    labels = torch.randint(0, 7, (16,), generator=g)
    counts = [500, 3, 40, 1, 80, 7, 2000]
    expected = reference_formula(logits, labels, class_balanced_weights(counts, 0.9999), gamma)
    got = ClassBalancedFocalLoss(counts, beta=0.9999, gamma=gamma)(logits, labels)
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)


def test_focal_without_focus_or_balance_is_binary_cross_entropy():
    g = torch.Generator().manual_seed(1)
    logits, labels = torch.randn(8, 5, generator=g), torch.randint(0, 5, (8,), generator=g)
    plain = F.binary_cross_entropy_with_logits(logits, F.one_hot(labels, 5).float(), reduction="sum") / 8
    got = ClassBalancedFocalLoss([3, 9, 1, 4, 4], beta=0.0, gamma=0.0)(logits, labels)
    assert got.item() == pytest.approx(plain.item(), rel=1e-6)


def test_focal_gradients_finite_at_extreme_logits():
    logits = torch.tensor([[100.0, -100.0, 0.0], [-100.0, 100.0, 30.0]], requires_grad=True)
    loss = build_loss("focal", class_counts=[10, 1, 5])(logits, torch.tensor([1, 0]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    assert logits.grad.abs().sum() > 0


def test_cross_entropy_with_label_smoothing_by_hand():
    logits, eps = np.array([2.0, 0.0, -1.0]), 0.3
    logp = logits - np.log(np.exp(logits).sum())
    target = np.full(3, eps / 3) + np.array([1 - eps, 0, 0])  # (1 - ε)·onehot + ε / K
    got = CrossEntropyLoss(label_smoothing=eps)(torch.tensor(logits[None]), torch.tensor([0]))
    assert got.item() == pytest.approx(-(target * logp).sum(), rel=1e-6)
    assert CrossEntropyLoss()(torch.tensor(logits[None]), torch.tensor([0])).item() == pytest.approx(-logp[0], rel=1e-6)


def test_losses_compute_in_float32():
    logits = torch.randn(4, 3).to(torch.bfloat16).requires_grad_()
    for loss in (build_loss("ce"), build_loss("focal", class_counts=[1, 2, 3])):
        out = loss(logits, torch.tensor([0, 1, 2, 0]))
        assert out.dtype == torch.float32
        out.backward()
        assert torch.isfinite(logits.grad).all()


def test_build_loss():
    assert isinstance(build_loss("ce", label_smoothing=0.1), CrossEntropyLoss)
    focal = build_loss("focal", class_counts=[1, 3], beta=0.5, gamma=2.0)
    assert focal.gamma == 2.0 and focal.weights.tolist() == pytest.approx([14 / 11, 8 / 11])
    with pytest.raises(ValueError, match="needs class_counts"):
        build_loss("focal")
    with pytest.raises(ValueError, match="unknown loss 'cb_focal'; choose from ce, focal"):
        build_loss("cb_focal")
    with pytest.raises(ValueError, match=r"logits must be \(N, 2\)"):
        focal(torch.zeros(1, 3), torch.tensor([0]))

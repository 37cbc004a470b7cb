"""Classification losses on logits ``(N, K)`` and integer labels ``(N,)``: cross-entropy and the class-balanced
focal loss BABEL trains with on its long tail.

Both are ``nn.Module``s whose ``forward(logits, labels)`` returns a scalar; they compute in float32 whatever the
autocast dtype of the logits.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CrossEntropyLoss", "ClassBalancedFocalLoss", "class_balanced_weights", "build_loss", "LOSSES"]


def class_balanced_weights(class_counts: Sequence[int] | np.ndarray, beta: float) -> np.ndarray:
    """Effective-number class weights ``(K,)`` float64 (Cui et al., CVPR 2019, as BABEL uses them).

    ``w_c = (1 - β) / (1 - β^{n_c})``, then rescaled so that ``sum(w) = K``. β = 0 gives equal weights; β → 1
    approaches inverse class frequency. A class with no training sample is counted as one (the reference divides
    by zero there), so its weight is finite; it is never a target, so it only shares in the rescaling.
    """
    counts = np.asarray(class_counts, dtype=np.float64)
    if counts.ndim != 1 or counts.size == 0:
        raise ValueError(f"class_counts must be a non-empty 1-D sequence, got shape {counts.shape}")
    if (counts < 0).any():
        raise ValueError(f"class_counts must be non-negative, got {counts.min():g} for class {counts.argmin()}")
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"beta must be in [0, 1), got {beta}")
    weights = (1.0 - beta) / (1.0 - np.power(beta, np.maximum(counts, 1.0)))
    return weights / weights.sum() * counts.size


class CrossEntropyLoss(nn.Module):
    """Softmax cross-entropy, mean over the batch, with optional label smoothing ε (target ``(1 - ε)·onehot +
    ε / K``)."""

    def __init__(self, label_smoothing: float = 0.0):
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), labels, label_smoothing=self.label_smoothing)

    def extra_repr(self) -> str:
        return f"label_smoothing={self.label_smoothing}"


class ClassBalancedFocalLoss(nn.Module):
    """Class-balanced focal loss, BABEL's definition (its ``class_balanced_loss.CB_loss`` with ``loss_type =
    'focal'``, defaults β = 0.9999, γ = 1.0).

    The focal term is one-vs-all **sigmoid** binary cross-entropy, not softmax. With ``y`` the one-hot labels
    ``(N, K)``, ``z`` the logits and ``α_i = w_{label_i}`` (``class_balanced_weights``) applied to every class of
    sample ``i``::

        loss = Σ_{i,k} α_i · exp(-γ·y_ik·z_ik - γ·log(1 + e^{-z_ik})) · BCE(z_ik, y_ik) / Σ y    (Σ y = N)

    The modulator equals ``(1 - p_t)^γ`` with ``p_t`` the sigmoid probability of the right binary answer; it is
    computed with ``softplus`` so large negative logits do not overflow. γ = 0 and β = 0 reduce it to the plain
    sigmoid BCE summed over classes and averaged over samples.
    """

    weights: torch.Tensor

    def __init__(self, class_counts: Sequence[int] | np.ndarray, beta: float = 0.9999, gamma: float = 1.0):
        super().__init__()
        if gamma < 0:
            raise ValueError(f"gamma must be non-negative, got {gamma}")
        self.beta, self.gamma = beta, gamma
        weights = class_balanced_weights(class_counts, beta)
        self.register_buffer("weights", torch.as_tensor(weights, dtype=torch.float32), persistent=False)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        z = logits.float()
        if z.ndim != 2 or z.shape[1] != self.weights.numel():
            raise ValueError(f"logits must be (N, {self.weights.numel()}), got {tuple(z.shape)}")
        y = F.one_hot(labels.long(), z.shape[1]).to(z.dtype)
        bce = F.binary_cross_entropy_with_logits(z, y, reduction="none")
        modulator = torch.exp(-self.gamma * (y * z + F.softplus(-z)))
        alpha = self.weights[labels.long()].unsqueeze(1)  # (N, 1): the weight of each sample's own class
        return (alpha * modulator * bce).sum() / y.sum()

    def extra_repr(self) -> str:
        return f"num_classes={self.weights.numel()}, beta={self.beta}, gamma={self.gamma}"


LOSSES = ("ce", "focal")


def build_loss(name: str, class_counts: Sequence[int] | np.ndarray | None = None, **kw) -> nn.Module:
    """A loss by name, as recipes spell it: ``"ce"`` (keyword ``label_smoothing``) or ``"focal"``, the
    class-balanced focal loss (needs the per-class training counts ``(K,)``; keywords ``beta``, ``gamma``)."""
    if name == "ce":
        return CrossEntropyLoss(**kw)
    if name == "focal":
        if class_counts is None:
            raise ValueError("the 'focal' loss needs class_counts: the number of training samples per class")
        return ClassBalancedFocalLoss(class_counts, **kw)
    raise ValueError(f"unknown loss {name!r}; choose from {', '.join(LOSSES)}")

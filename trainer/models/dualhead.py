"""DualHead-Net (Chen et al. 2021): a shared MS-G3D stage, then a fine head (full frame rate, two STGC stages)
and a coarse head (every second frame, two lighter STGC stages: window 3 only, MS-TCN dilations 1 and 2) that
exchange cross-head attention after each stage.

Attention gates are residual, ``x <- x·σ(s) + x``. Temporal attention (fine -> coarse) starts from a zero conv,
i.e. a uniform ×1.5 scaling; spatial attention (coarse -> fine) starts xavier-normal.
"""
from __future__ import annotations

from functools import partial

import torch
from torch import Tensor, nn

from schemas.layouts import Layout

from . import graph
from .layers import DataBN, pool
from .msg3d import STGC


def _gate(x: Tensor, score: Tensor) -> Tensor:
    return x * torch.sigmoid(score) + x


class DualHead(nn.Module):
    """Returns the fused logits ``mu·fine + (1 - mu)·coarse`` (the reference averages, ``mu = 0.5``);
    :meth:`forward_heads` returns both heads' logits for the two-loss training (mean of the two CEs)."""

    def __init__(self, layout: Layout, *, num_classes: int, in_channels: int = 3, num_persons: int = 2,
                 num_gcn_scales: int = 9, num_g3d_scales: int = 6, mu: float = 0.5):
        super().__init__()
        v = layout.num_joints
        a = graph.binary_adjacency(layout.edges, v)
        stgc = partial(STGC, a, gcn_scales=num_gcn_scales, g3d_scales=num_g3d_scales)
        coarse = partial(stgc, windows=(3,), dilations=(1, 2))
        self.mu = mu
        self.data_bn = DataBN(v, in_channels, num_persons)
        self.stem = stgc(in_channels, 96, lift=True)
        self.embed_fine = nn.Conv2d(96, 48, 1)
        self.fine = nn.ModuleList([stgc(48, 96, 2), stgc(96, 192, 2)])
        self.coarse = nn.ModuleList([coarse(96, 192, 2), coarse(192, 384, 2)])
        # Temporal attention from each fine stage onto the coarse input of the matching stage.
        self.ta = nn.ModuleList(nn.Conv1d(c, 1, 9, padding=4) for c in (96, 192))
        # Spatial attention from each coarse stage back onto the fine stage's output; kernel V, or V - 1 if V is even.
        k = v if v % 2 else v - 1
        self.sa = nn.ModuleList(nn.Conv1d(c, 1, k, padding=(k - 1) // 2) for c in (192, 384))
        self.fc_fine = nn.Linear(192, num_classes)
        self.fc_coarse = nn.Linear(384, num_classes)
        for conv in self.ta:
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)
        for conv in self.sa:
            nn.init.xavier_normal_(conv.weight)
            nn.init.zeros_(conv.bias)

    def forward_heads(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(N, M, T, V, C)`` -> ``(fine, coarse)`` logits, each ``(N, num_classes)``."""
        m = x.shape[1]
        x = self.stem(self.data_bn(x))  # N·M, 96, T, V
        fine = self.embed_fine(x)  # N·M, 48, T, V
        coarse = x[:, :, ::2]  # N·M, 96, ⌈T/2⌉, V
        for fine_stage, coarse_stage, ta, sa in zip(self.fine, self.coarse, self.ta, self.sa, strict=True):
            fine = fine_stage(fine)  # N·M, C, T_i, V
            coarse = _gate(coarse, ta(fine.mean(3)).unsqueeze(3))  # (N·M, 1, T_i, 1) gate
            coarse = coarse_stage(coarse)  # N·M, 2C, T_{i+1}, V
            fine = _gate(fine, sa(coarse.mean(2)).unsqueeze(2))  # (N·M, 1, 1, V) gate
        return self.fc_fine(pool(fine, m)), self.fc_coarse(pool(coarse, m))

    def forward(self, x: Tensor) -> Tensor:
        """``(N, M, T, V, C)`` -> fused logits ``(N, num_classes)``."""
        fine, coarse = self.forward_heads(x)
        return self.mu * fine + (1 - self.mu) * coarse

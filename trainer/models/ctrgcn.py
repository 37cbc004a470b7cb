"""CTR-GCN (Chen et al. 2021): channel-wise topology refinement graph convolution and a four-branch multi-scale
temporal convolution in the ten-block 64/128/256 backbone, with per-person-slot ('MVC') data BN.

``CTRGCN`` follows Uason-Chen/CTR-GCN ``model/ctrgcn.py``; ``PysklCTRGCN`` follows pyskl's port. Both have the
same parameters (1,446,672 for NTU60) but compute different functions, so each imports its own checkpoints:

- graph: the layout's canonical edges (NTU: hand tip -> thumb -> hand) vs pyskl's edge variant;
- aggregation: the original reads the refined graph ``G[u, v]`` with the target ``u`` as row, pyskl as column;
- pyskl's temporal module ends in a ReLU, the original's does not;
- relation width for ``C_in`` up to 16: 8 (pyskl) vs 8 for 3 or 9 channels and ``C_in // 8`` otherwise (the
  original; it has no relation channels, and crashes, below 8 inputs: those get 8 here).

Initialisation follows each reference: kaiming (fan-out) convs with zero bias, BN weight 1 and the GCN's last BN
1e-6, learnable graph = the subsets, ``alpha`` = 0; the original draws its temporal BN weights from N(1, 0.02) and
its classifier weights from N(0, √(2 / classes)); pyskl leaves the residual at PyTorch's default and its classifier at
N(0, 0.01) with zero bias.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from schemas.layouts import Layout

from . import graph
from .layers import PYSKL_STAGES, Block, DataBN, StackedGCN, conv_bn, residual, temporal_branches


class CTRGC(nn.Module):
    """One subset's channel-wise topology refinement: with ``x̄1, x̄2`` (R channels) 1×1 convs of the time-averaged
    input, returns the features ``conv3(x)`` ``(N, C_out, T, V)`` and the refinement
    ``conv4(tanh(x̄1[u] - x̄2[v]))`` ``(N, C_out, V, V)``, one ``[u, v]`` graph offset per output channel."""

    def __init__(self, c_in: int, c_out: int, rel: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, rel, 1)
        self.conv2 = nn.Conv2d(c_in, rel, 1)
        self.conv3 = nn.Conv2d(c_in, c_out, 1)
        self.conv4 = nn.Conv2d(rel, c_out, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        z = x.mean(2, keepdim=True)  # N, C_in, 1, V: a 1×1 conv commutes with the mean over time
        rel = torch.tanh(self.conv1(z).transpose(2, 3) - self.conv2(z))  # N, R, V, V: [u, v] = x̄1[u] - x̄2[v]
        return self.conv3(x), self.conv4(rel)


class CTRGCNUnit(nn.Module):
    """``ReLU(BN(Σ_k y_k) + down(x))`` over the subsets ``k`` of the learnable graph ``A (K, V, V)``: with CTR-GC
    ``k``'s features ``h`` and refinement ``r`` and one scalar ``α``, ``G = α·r + A_k`` per channel and
    ``y[c, t, u] = Σ_v G[c, u, v]·h[c, t, v]`` (the target is the row), or with ``source_rows``
    ``y[c, t, v] = Σ_u G[c, u, v]·h[c, t, u]``. ``down`` is the identity or a 1×1 conv + BN."""

    def __init__(self, c_in: int, c_out: int, a: Tensor, rel: int, source_rows: bool):
        super().__init__()
        self.source_rows = source_rows
        self.convs = nn.ModuleList(CTRGC(c_in, c_out, rel) for _ in a)
        self.A = nn.Parameter(a.clone())
        self.alpha = nn.Parameter(torch.zeros(1))
        self.bn = nn.BatchNorm2d(c_out)
        self.down = nn.Identity() if c_in == c_out else conv_bn(c_in, c_out)

    def forward(self, x: Tensor) -> Tensor:
        y = 0
        for k, conv in enumerate(self.convs):
            h, r = conv(x)
            g = r * self.alpha + self.A[k]  # N, C_out, V, V
            y = y + h @ (g if self.source_rows else g.transpose(2, 3))  # N, C_out, T, V
        return torch.relu(self.bn(y) + self.down(x))


class MultiScaleTCN(nn.Module):
    """Four branches concatenated: per dilation 1 and 2 a 1×1 conv, BN, ReLU and a kernel-5 dilated conv + BN; a
    1×1 conv, BN, ReLU, 3-frame max-pool and BN; a strided 1×1 conv + BN (the last takes the remainder channels).
    No residual; a final ReLU when ``act``."""

    def __init__(self, channels: int, stride: int, act: bool):
        super().__init__()
        width = channels // 4
        self.branches = temporal_branches(channels, [width] * 3 + [channels - 3 * width], stride, (1, 2), bn=True,
                                          kernel_size=5)
        self.act = act

    def forward(self, x: Tensor) -> Tensor:
        y = torch.cat([branch(x) for branch in self.branches], 1)  # N, C, T', V
        return torch.relu(y) if self.act else y


def original_relation_width(c_in: int) -> int:
    """Uason-Chen: 8 for 3 or 9 input channels, else ``C_in // 8`` (8 below 8 channels, where the reference has
    none and crashes)."""
    return 8 if c_in in (3, 9) or c_in < 8 else c_in // 8


def pyskl_relation_width(c_in: int) -> int:
    """pyskl: 8 up to 16 input channels, else ``C_in // 8``."""
    return 8 if c_in <= 16 else c_in // 8


class _CTRGCNBase(StackedGCN):
    """Data BN over ``M·V·C``, ten CTR-GCN blocks (block 1 without residual), mean over (T, V, M), classifier.
    The keywords after ``num_persons`` choose the reference variant (see the module docstring)."""

    def __init__(self, layout: Layout, *, num_classes: int, in_channels: int, num_persons: int,
                 edge_variant: str | None, source_rows: bool, tcn_act: bool, relation_width: Callable[[int], int]):
        a = graph.spatial_subsets(layout.graph_edges(edge_variant), layout.num_joints)
        blocks, c_in = [], in_channels
        for i, (c_out, stride) in enumerate(PYSKL_STAGES):
            gcn = CTRGCNUnit(c_in, c_out, a, relation_width(c_in), source_rows)
            res = None if i == 0 else residual(c_in, c_out, stride)
            blocks.append(Block(gcn, MultiScaleTCN(c_out, stride, tcn_act), res))
            c_in = c_out
        super().__init__(DataBN(layout.num_joints, in_channels, num_persons), blocks, c_in, num_classes)
        for block in self.blocks:
            for m in (*block.gcn.modules(), *block.tcn.modules()):
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out")
                    nn.init.zeros_(m.bias)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)
            nn.init.constant_(block.gcn.bn.weight, 1e-6)


class CTRGCN(_CTRGCNBase):
    """CTR-GCN as in Uason-Chen/CTR-GCN (``Model`` with the NTU configs' arguments)."""

    def __init__(self, layout: Layout, *, num_classes: int, in_channels: int = 3, num_persons: int = 2):
        super().__init__(layout, num_classes=num_classes, in_channels=in_channels, num_persons=num_persons,
                         edge_variant=None, source_rows=False, tcn_act=False, relation_width=original_relation_width)
        for block in self.blocks:
            for m in block.tcn.modules():
                if isinstance(m, nn.BatchNorm2d):
                    nn.init.normal_(m.weight, 1.0, 0.02)
            for m in block.residual.modules() if block.residual is not None else ():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out")
                    nn.init.zeros_(m.bias)
        nn.init.normal_(self.fc.weight, 0, math.sqrt(2 / num_classes))


class PysklCTRGCN(_CTRGCNBase):
    """CTR-GCN as ported by pyskl (``CTRGCN`` backbone + ``GCNHead``); the graph every block starts from is kept as
    the buffer ``A`` (pyskl's ``backbone.A``)."""

    def __init__(self, layout: Layout, *, num_classes: int, in_channels: int = 3, num_persons: int = 2):
        super().__init__(layout, num_classes=num_classes, in_channels=in_channels, num_persons=num_persons,
                         edge_variant="pyskl", source_rows=True, tcn_act=True, relation_width=pyskl_relation_width)
        self.register_buffer("A", self.blocks[0].gcn.A.detach().clone())
        nn.init.normal_(self.fc.weight, 0, 0.01)
        nn.init.zeros_(self.fc.bias)

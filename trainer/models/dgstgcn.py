"""DG-STGCN (Duan et al. 2022): dynamic-group graph convolution and multi-branch temporal convolution with
dynamic joint-skeleton fusion, in pyskl's ten-block backbone.

Initialisation is PyTorch's default for every conv and BN layer, as in the reference (whose per-unit init methods
are never called). The zero-initialised gates (``alpha``, ``beta``, ``add_coeff``) make every block start as a
plain static-graph GCN.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from schemas.layouts import Layout

from . import graph
from .layers import PysklGCN, conv_bn, temporal_branches


class DGGCN(nn.Module):
    """Dynamic-group GCN: ``K`` groups of ``C_out/K`` channels, each aggregated over its own graph
    ``A = PA + α·tanh(x1[v] - x2[w]) + β·softmax_v(Σ_c x1[c, v]·x2[c, w])``.

    ``PA`` (``A`` here) is learnable, one ``(V, V)`` matrix per group. ``x1``, ``x2`` are 1×1 convs of the
    time-averaged input; the tanh term is per channel (CA), the softmax term per group (DA), normalised over the
    source joint and unscaled. ``alpha`` and ``beta`` hold ``K`` entries of which only the first is used, as in the
    reference (the rest stay in the state dict and the parameter count).
    """

    def __init__(self, c_in: int, c_out: int, a: Tensor):
        super().__init__()
        k = len(a)
        if c_out % k:
            raise ValueError(f"DG-GCN: {c_out} channels do not split into {k} groups")
        self.A = nn.Parameter(a.clone())
        self.alpha = nn.Parameter(torch.zeros(k))
        self.beta = nn.Parameter(torch.zeros(k))
        self.pre = nn.Sequential(*conv_bn(c_in, c_out), nn.ReLU())
        self.post = nn.Conv2d(c_out, c_out, 1)
        self.conv1 = nn.Conv2d(c_in, c_out, 1)
        self.conv2 = nn.Conv2d(c_in, c_out, 1)
        self.bn = nn.BatchNorm2d(c_out)
        self.down = conv_bn(c_in, c_out) if c_in != c_out else None

    def forward(self, x: Tensor) -> Tensor:
        k, v = len(self.A), x.shape[-1]
        res = x if self.down is None else self.down(x)
        p = self.pre(x).unflatten(1, (k, -1))  # N, K, m, T, V
        z = x.mean(2, keepdim=True)  # N, C_in, 1, V
        x1 = self.conv1(z).reshape(x.shape[0], k, -1, v)  # N, K, m, V
        x2 = self.conv2(z).reshape(x.shape[0], k, -1, v)
        ca = torch.tanh(x1.unsqueeze(-1) - x2.unsqueeze(-2))  # N, K, m, V, V
        da = torch.einsum("nkcv,nkcw->nkvw", x1, x2).softmax(-2)  # N, K, V, V
        a = self.A.unsqueeze(1) + self.alpha[0] * ca + self.beta[0] * da.unsqueeze(2)  # N, K, m, V, V
        y = torch.einsum("nkctv,nkcvw->nkctw", p, a).flatten(1, 2)  # N, C_out, T, V
        return torch.relu(self.bn(self.post(y)) + res)


class DGTCN(nn.Module):
    """Multi-branch temporal conv: one branch per dilation (1×1 conv, BN, ReLU, kernel-3 dilated conv without BN),
    a max-pool branch and a strided 1×1 branch; the first branch takes the remainder channels. Then
    ``BN, ReLU, 1×1 conv, BN``.

    ``joint_fusion`` adds D-JSF: the branches also see a virtual node, the mean over joints, whose output is added
    back to every joint ``v`` scaled by ``add_coeff[v]`` (zero at init, so the fusion starts as a no-op).
    Without it this is ST-GCN++'s temporal module.
    """

    def __init__(self, channels: int, stride: int = 1, dilations: tuple[int, ...] = (1, 2, 3, 4), *,
                 joint_fusion: bool = False, num_joints: int = 25):
        super().__init__()
        width = channels // (len(dilations) + 2)
        widths = [channels - width * (len(dilations) + 1)] + [width] * (len(dilations) + 1)
        self.branches = temporal_branches(channels, widths, stride, dilations, bn=False)
        # The reference keeps 25 coefficients and slices them for smaller layouts.
        self.add_coeff = nn.Parameter(torch.zeros(max(25, num_joints))) if joint_fusion else None
        self.transform = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(), nn.Conv2d(channels, channels, 1))
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x: Tensor) -> Tensor:
        v = x.shape[-1]
        if self.add_coeff is not None:
            x = torch.cat([x, x.mean(-1, keepdim=True)], -1)  # N, C, T, V+1
        y = torch.cat([branch(x) for branch in self.branches], 1)  # N, C, T', V(+1)
        if self.add_coeff is not None:
            y = y[..., :v] + y[..., v:] * self.add_coeff[:v]  # N, C, T', V
        return self.bn(self.transform(y))


class DGSTGCN(PysklGCN):
    """DG-STGCN: ten DG-GCN + DG-TCN blocks. One random graph ``randn·0.02 + 0.04`` with ``num_groups`` groups is
    drawn (from torch's global generator) and every block starts from its own copy; the skeleton's edges are unused.
    """

    def __init__(self, layout: Layout, *, num_classes: int, in_channels: int = 3, num_groups: int = 8):
        v = layout.num_joints
        a = graph.random_graph(num_groups, v)

        def make(c_in: int, c_out: int, stride: int):
            return DGGCN(c_in, c_out, a), DGTCN(c_out, stride, joint_fusion=True, num_joints=v)

        super().__init__(make, num_classes=num_classes, num_joints=v, in_channels=in_channels)

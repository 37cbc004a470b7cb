"""ST-GCN and ST-GCN++ as ported by pyskl (Yan et al. 2018; Duan et al. 2022).

Both use pyskl's NTU graph, in which the hand tips and thumbs hang straight from the hands.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from schemas.layouts import Layout

from . import graph
from .dgstgcn import DGTCN
from .layers import PysklGCN, TemporalConv, conv_bn


class GraphConv(nn.Module):
    """Subset graph convolution: a 1×1 conv to ``K·C_out`` channels (subset-major), then
    ``y[w] = Σ_k Σ_v x_k[v] · A_k[v, w]``, BN, optional residual, ReLU.

    ``learn_graph=False`` keeps ``A`` fixed and learns an elementwise importance mask ``PA`` (initialised to 1);
    ``learn_graph=True`` learns ``A`` itself.
    """

    def __init__(self, c_in: int, c_out: int, a: Tensor, *, learn_graph: bool = False, res: bool = False):
        super().__init__()
        if learn_graph:
            self.A = nn.Parameter(a.clone())
            self.register_parameter("PA", None)
        else:
            self.register_buffer("A", a.clone())
            self.PA = nn.Parameter(torch.ones_like(a))
        self.conv = nn.Conv2d(c_in, c_out * len(a), 1)
        self.bn = nn.BatchNorm2d(c_out)
        self.down = (nn.Identity() if c_in == c_out else conv_bn(c_in, c_out)) if res else None

    def forward(self, x: Tensor) -> Tensor:
        a = self.A if self.PA is None else self.A * self.PA
        y = self.conv(x).unflatten(1, (len(a), -1))  # N, K, C, T, V
        y = self.bn(torch.einsum("nkctv,kvw->nctw", y, a))  # N, C, T, V
        return torch.relu(y if self.down is None else y + self.down(x))


class STGCN(PysklGCN):
    """ST-GCN: importance-weighted 3-partition graph convolution and a kernel-9 temporal conv per block."""

    def __init__(self, layout: Layout, *, num_classes: int, in_channels: int = 3, temporal_kernel: int = 9):
        a = graph.stgcn_partitions(layout.graph_edges("pyskl"), layout.num_joints, layout.center)

        def make(c_in: int, c_out: int, stride: int):
            return GraphConv(c_in, c_out, a), TemporalConv(c_out, c_out, temporal_kernel, stride)

        super().__init__(make, num_classes=num_classes, num_joints=layout.num_joints, in_channels=in_channels)


class STGCNPlusPlus(PysklGCN):
    """ST-GCN++: learnable {I, In, Out} graph with a residual GCN, and the multi-branch temporal conv of DG-STGCN
    without its joint-skeleton fusion."""

    def __init__(self, layout: Layout, *, num_classes: int, in_channels: int = 3):
        a = graph.spatial_subsets(layout.graph_edges("pyskl"), layout.num_joints)

        def make(c_in: int, c_out: int, stride: int):
            return GraphConv(c_in, c_out, a, learn_graph=True, res=True), DGTCN(c_out, stride)

        super().__init__(make, num_classes=num_classes, num_joints=layout.num_joints, in_channels=in_channels)

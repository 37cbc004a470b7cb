"""Layers shared by the architectures: input normalisation, temporal convolution, the residual ST block, pooling,
and the ten-block backbone that pyskl's ST-GCN and DG-STGCN share."""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn


class DataBN(nn.BatchNorm1d):
    """BatchNorm over the raw coordinates of an ``(N, M, T, V, C)`` batch; returns ``(N·M, C, T, V)``.

    ``num_persons=None`` normalises ``V·C`` features whose statistics both person slots share (pyskl 'VC');
    otherwise ``M·V·C`` features, one set per person slot (MS-G3D 'MVC'). Feature index: ``(m·V + v)·C + c``.
    """

    def __init__(self, num_joints: int, channels: int, num_persons: int | None = None):
        super().__init__((num_persons or 1) * num_joints * channels)
        self.per_person = num_persons is not None

    def forward(self, x: Tensor) -> Tensor:
        n, m, t, v, c = x.shape
        if (m if self.per_person else 1) * v * c != self.num_features:
            expected = "M·V·C" if self.per_person else "V·C"
            raise ValueError(f"input (N, M, T, V, C) = {tuple(x.shape)}: this model expects {expected} = "
                             f"{self.num_features}")
        x = x.permute(0, 1, 3, 4, 2)  # N, M, V, C, T
        x = x.reshape(n, m * v * c, t) if self.per_person else x.reshape(n * m, v * c, t)
        x = super().forward(x)
        return x.reshape(n, m, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v)  # N·M, C, T, V


class TemporalConv(nn.Sequential):
    """Convolution over time with a ``(k, 1)`` kernel, 'same' padding for stride 1, then BatchNorm if ``bn``."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int = 1, dilation: int = 1,
                 bn: bool = True):
        pad = (kernel_size - 1) * dilation // 2
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, (kernel_size, 1), (stride, 1), (pad, 0), (dilation, 1))
        if bn:
            self.bn = nn.BatchNorm2d(c_out)


def conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    """1×1 conv (with bias) + BatchNorm."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1), nn.BatchNorm2d(c_out))


def residual(c_in: int, c_out: int, stride: int) -> nn.Module:
    """Identity when the shape is kept, otherwise a strided 1×1 temporal conv + BN."""
    if c_in == c_out and stride == 1:
        return nn.Identity()
    return TemporalConv(c_in, c_out, 1, stride)


def temporal_branches(c_in: int, widths: list[int], stride: int, dilations: tuple[int, ...], *,
                      bn: bool, kernel_size: int = 3) -> nn.ModuleList:
    """The branches of a multi-scale temporal conv, ``len(dilations) + 2`` of them with the given widths: per
    dilation ``d`` a 1×1 conv, BN, ReLU and a ``kernel_size`` conv dilated by ``d``; a 1×1 conv, BN, ReLU and a
    3-frame max-pool; a strided 1×1 conv. With ``bn`` each branch ends in a BatchNorm (MS-G3D), without it none
    (pyskl).
    """
    *dilated, pooled, point = widths
    branches = [nn.Sequential(*conv_bn(c_in, w), nn.ReLU(), TemporalConv(w, w, kernel_size, stride, d, bn=bn))
                for w, d in zip(dilated, dilations, strict=True)]
    tail = [nn.BatchNorm2d(pooled)] if bn else []
    branches.append(nn.Sequential(*conv_bn(c_in, pooled), nn.ReLU(), nn.MaxPool2d((3, 1), (stride, 1), (1, 0)),
                                  *tail))
    conv = nn.Conv2d(c_in, point, 1, (stride, 1))
    branches.append(nn.Sequential(conv, nn.BatchNorm2d(point)) if bn else conv)
    return nn.ModuleList(branches)


def pool(x: Tensor, num_persons: int) -> Tensor:
    """Mean over time, joints and persons: ``(N·M, C, T, V)`` -> ``(N, C)``."""
    return x.mean((2, 3)).unflatten(0, (-1, num_persons)).mean(1)


class Block(nn.Module):
    """``ReLU(tcn(gcn(x)) + residual(x))``; no residual when ``res`` is None."""

    def __init__(self, gcn: nn.Module, tcn: nn.Module, res: nn.Module | None):
        super().__init__()
        self.gcn, self.tcn, self.residual = gcn, tcn, res

    def forward(self, x: Tensor) -> Tensor:
        y = self.tcn(self.gcn(x))
        return torch.relu(y if self.residual is None else y + self.residual(x))


class StackedGCN(nn.Module):
    """``data_bn -> blocks -> mean over (T, V, M) -> fc``: ``(N, M, T, V, C)`` -> logits ``(N, num_classes)``."""

    def __init__(self, data_bn: DataBN, blocks: list[nn.Module], num_features: int, num_classes: int):
        super().__init__()
        self.data_bn = data_bn
        self.blocks = nn.ModuleList(blocks)
        self.fc = nn.Linear(num_features, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        m = x.shape[1]
        x = self.data_bn(x)  # N·M, C, T, V
        for block in self.blocks:
            x = block(x)
        return self.fc(pool(x, m))


# (c_out, temporal stride) of the ten pyskl blocks: 64 ×4, 128 ×3, 256 ×3, stride 2 entering blocks 5 and 8.
PYSKL_STAGES = ((64, 1), (64, 1), (64, 1), (64, 1), (128, 2), (128, 1), (128, 1), (256, 2), (256, 1), (256, 1))

MakeBlock = Callable[[int, int, int], tuple[nn.Module, nn.Module]]


class PysklGCN(StackedGCN):
    """pyskl's backbone and head: 'VC' data BN shared by the person slots, ten blocks, a classifier initialised
    N(0, 0.01). ``make(c_in, c_out, stride)`` returns a block's (gcn, tcn) pair; the first block has no residual.
    """

    def __init__(self, make: MakeBlock, *, num_classes: int, num_joints: int, in_channels: int):
        blocks, c_in = [], in_channels
        for i, (c_out, stride) in enumerate(PYSKL_STAGES):
            blocks.append(Block(*make(c_in, c_out, stride), None if i == 0 else residual(c_in, c_out, stride)))
            c_in = c_out
        super().__init__(DataBN(num_joints, in_channels), blocks, c_in, num_classes)
        nn.init.normal_(self.fc.weight, 0, 0.01)
        nn.init.zeros_(self.fc.bias)

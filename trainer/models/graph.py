"""Skeleton graphs as adjacency tensors.

Conventions: ``edges`` are undirected ``(child, parent)`` pairs, 0-based (as in ``schemas.layouts``). Every
function computes in float64 and returns float32. Matrices indexed ``A[v, w]`` map a source joint ``v`` to a
target joint ``w`` unless the docstring says the row is the target.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

Edges = Sequence[tuple[int, int]]


def binary_adjacency(edges: Edges, num_joints: int) -> Tensor:
    """Symmetric 0/1 adjacency ``(V, V)`` of ``edges``, without self-loops."""
    a = torch.zeros(num_joints, num_joints, dtype=torch.float64)
    for child, parent in edges:
        a[child, parent] = a[parent, child] = 1.0
    return a.float()


def k_hop(a: Tensor, k: int) -> Tensor:
    """Joints exactly ``k`` hops apart, plus self-loops; ``k = 0`` gives the identity."""
    eye = torch.eye(len(a), dtype=torch.float64)
    if k == 0:
        return eye.float()
    reach = a.double() + eye
    within = [torch.linalg.matrix_power(reach, n).clamp(max=1.0) for n in (k, k - 1)]
    return (within[0] - within[1] + eye).float()


def normalize_symmetric(a: Tensor) -> Tensor:
    """``D^-1/2 A D^-1/2`` with ``D`` the row sums (MS-G3D)."""
    d = a.double().sum(1).pow(-0.5)
    return (d[:, None] * a.double() * d[None, :]).float()


def normalize_columns(a: Tensor) -> Tensor:
    """``A D^-1`` with ``D`` the column sums, empty columns left at 0 (pyskl): a mean over each target's sources."""
    d = a.double().sum(0)
    return (a.double() / torch.where(d > 0, d, torch.ones_like(d))).float()


def multiscale_adjacency(a: Tensor, num_scales: int) -> Tensor:
    """Normalised k-hop adjacencies for k = 0..S-1, stacked to ``(S·V, V)``; rows are targets (MS-G3D)."""
    return torch.cat([normalize_symmetric(k_hop(a, k)) for k in range(num_scales)])


def space_time_adjacency(a: Tensor, window: int) -> Tensor:
    """G3D graph over a window of ``τ`` frames: ``A + I`` tiled ``τ × τ``, nodes ordered ``(offset, joint)``."""
    return (a + torch.eye(len(a))).repeat(window, window)


def hop_distance(edges: Edges, num_joints: int, max_hop: int = 1) -> Tensor:
    """Hop distance between joints, ``inf`` beyond ``max_hop`` (pyskl caps it, which shapes its partitions)."""
    reach = binary_adjacency(edges, num_joints).double() + torch.eye(num_joints, dtype=torch.float64)
    dist = torch.full((num_joints, num_joints), float("inf"), dtype=torch.float64)
    for d in range(max_hop, -1, -1):
        dist[torch.linalg.matrix_power(reach, d) > 0] = d
    return dist


def stgcn_partitions(edges: Edges, num_joints: int, center: int, max_hop: int = 1) -> Tensor:
    """ST-GCN spatial partitions ``(1 + 2·max_hop, V, V)``: root, then per hop the messages from a source at least
    as far from ``center`` as the target ("close"), and the others ("further").

    Each entry is taken from the column-normalised ``A + I``. With the hop distance capped at ``max_hop``, an edge
    between two joints beyond that cap compares ``inf >= inf`` and lands in "close" both ways (pyskl's behaviour).
    """
    dist = hop_distance(edges, num_joints, max_hop)
    norm = normalize_columns((dist <= max_hop).float()).double()
    to_center = dist[:, center]
    closer = to_center[:, None] >= to_center[None, :]  # [source, target]
    parts = []
    for hop in range(max_hop + 1):
        at_hop = dist == hop
        parts.append(torch.where(at_hop & closer, norm, 0.0))
        if hop > 0:
            parts.append(torch.where(at_hop & ~closer, norm, 0.0))
    return torch.stack(parts).float()


def spatial_subsets(edges: Edges, num_joints: int) -> Tensor:
    """pyskl's 'spatial' graph ``(3, V, V)``: identity, parent -> child and child -> parent messages, each
    column-normalised (ST-GCN++)."""
    outward = torch.zeros(num_joints, num_joints)
    for child, parent in edges:
        outward[parent, child] = 1.0
    return torch.stack([torch.eye(num_joints), normalize_columns(outward), normalize_columns(outward.T)])


def random_graph(num_groups: int, num_joints: int, std: float = 0.02, offset: float = 0.04) -> Tensor:
    """``randn(K, V, V)·std + offset`` from torch's global generator (DG-STGCN's learnable initial graph)."""
    return torch.randn(num_groups, num_joints, num_joints) * std + offset

"""Adjacency builders of trainer.models.graph."""
from __future__ import annotations

import math

import torch

from schemas.layouts import get_layout
from trainer.models import graph

CHAIN = [(1, 0), (2, 1), (3, 2)]  # 0 - 1 - 2 - 3
NTU = get_layout("ntu25")


def pairs(a):
    return {(i, j) for i, j in a.nonzero().tolist() if i != j}


def test_binary_adjacency():
    a = graph.binary_adjacency(NTU.edges, 25)
    assert a.dtype == torch.float32 and torch.equal(a, a.T) and a.trace() == 0 and a.sum() == 48
    assert pairs(graph.binary_adjacency(CHAIN, 4)) == {(0, 1), (1, 0), (1, 2), (2, 1), (2, 3), (3, 2)}


def test_k_hop_keeps_exactly_k_hops_and_self_loops():
    a = graph.binary_adjacency(CHAIN, 4)
    assert torch.equal(graph.k_hop(a, 0), torch.eye(4))
    assert torch.equal(graph.k_hop(a, 1), a + torch.eye(4))
    assert pairs(graph.k_hop(a, 2)) == {(0, 2), (2, 0), (1, 3), (3, 1)}
    assert pairs(graph.k_hop(a, 3)) == {(0, 3), (3, 0)}
    assert torch.equal(graph.k_hop(a, 4), torch.eye(4))
    assert all(torch.equal(graph.k_hop(a, k).diagonal(), torch.ones(4)) for k in range(5))


def test_normalisations():
    a = graph.k_hop(graph.binary_adjacency(CHAIN, 4), 1)  # degrees with self-loops: 2, 3, 3, 2
    sym = graph.normalize_symmetric(a)
    assert math.isclose(sym[0, 1].item(), 1 / math.sqrt(2 * 3), rel_tol=1e-6)
    assert math.isclose(sym[1, 1].item(), 1 / 3, rel_tol=1e-6) and torch.equal(sym, sym.T)
    cols = graph.normalize_columns(a)
    torch.testing.assert_close(cols.sum(0), torch.ones(4))
    assert math.isclose(cols[1, 0].item(), 1 / 2, rel_tol=1e-6)
    assert torch.equal(graph.normalize_columns(torch.zeros(3, 3)), torch.zeros(3, 3))


def test_multiscale_and_space_time():
    a = graph.binary_adjacency(NTU.edges, 25)
    ms = graph.multiscale_adjacency(a, 13)
    assert ms.shape == (325, 25) and torch.equal(ms[:25], torch.eye(25))
    torch.testing.assert_close(ms[25:50], graph.normalize_symmetric(a + torch.eye(25)))
    st = graph.space_time_adjacency(a, 3)
    assert st.shape == (75, 75)
    assert all(torch.equal(st[i * 25:(i + 1) * 25, j * 25:(j + 1) * 25], a + torch.eye(25))
               for i in range(3) for j in range(3))


def test_stgcn_partitions_reproduce_pyskl():
    parts = graph.stgcn_partitions(NTU.graph_edges("pyskl"), 25, NTU.center)
    assert parts.shape == (3, 25, 25) and [int((p != 0).sum()) for p in parts] == [25, 40, 8]
    further = sorted((i + 1, j + 1) for i, j in parts[2].nonzero().tolist())  # source -> target, 1-based
    assert further == [(2, 1), (3, 4), (5, 6), (9, 10), (21, 2), (21, 3), (21, 5), (21, 9)]
    torch.testing.assert_close(parts.sum(0).sum(0), torch.ones(25))  # a mean over each target's neighbourhood
    dist = graph.hop_distance(NTU.graph_edges("pyskl"), 25, max_hop=1)
    assert dist[20, 20] == 0 and dist[20, 1] == 1 and math.isinf(dist[20, 0])


def test_spatial_subsets():
    identity, parent_to_child, child_to_parent = graph.spatial_subsets(CHAIN, 4)
    assert torch.equal(identity, torch.eye(4))
    assert pairs(parent_to_child) == {(0, 1), (1, 2), (2, 3)}  # [source, target]
    assert torch.equal(child_to_parent, parent_to_child.T)


def test_random_graph():
    torch.manual_seed(1)
    a = graph.random_graph(8, 25)
    torch.manual_seed(1)
    assert torch.equal(a, graph.random_graph(8, 25))
    assert a.shape == (8, 25, 25)
    assert abs(a.mean().item() - 0.04) < 0.003 and abs(a.std().item() - 0.02) < 0.003

"""Model zoo: a name -> factory registry and reference-checkpoint import.

Every model takes a batch ``(N, M, T, V, C)`` and returns logits ``(N, num_classes)``. Factories take the
layout (a ``schemas.layouts.Layout``), ``num_classes``, ``in_channels`` and ``num_persons``, plus
architecture keywords; the parameter and MAC counts quoted are for NTU (V = 25, C = 3, 60 classes), 1 sample of
2 persons, and are checked by the tests.
"""
from __future__ import annotations

import fnmatch
from collections.abc import Callable

from torch import nn

from schemas.layouts import Layout, resolve_layout

from .ctrgcn import CTRGCN, PysklCTRGCN
from .dgstgcn import DGSTGCN
from .dualhead import DualHead
from .msg3d import MSG3D
from .reference import export_reference_state_dict, load_reference_weights
from .stgcn import STGCN, STGCNPlusPlus

__all__ = ["MODELS", "build_model", "list_models", "load_reference_weights", "export_reference_state_dict"]


def ctrgcn(layout: Layout, *, num_classes: int, in_channels: int = 3, num_persons: int = 2) -> CTRGCN:
    """CTR-GCN (Uason-Chen/CTR-GCN): 1,446,672 parameters (NTU60) / 1,462,092 (NTU120); 1.77 GMAC at T = 64, 2.70
    at T = 100 (the reference: 1.94 and 2.97, as it runs the relation convs on every frame before averaging)."""
    return CTRGCN(layout, num_classes=num_classes, in_channels=in_channels, num_persons=num_persons)


def ctrgcn_pyskl(layout: Layout, *, num_classes: int, in_channels: int = 3, num_persons: int = 2) -> PysklCTRGCN:
    """CTR-GCN as ported by pyskl: the same parameter count as ``ctrgcn`` (1,431,252 in the backbone), another
    function (its graph, aggregation orientation and temporal ReLU); imports pyskl checkpoints."""
    return PysklCTRGCN(layout, num_classes=num_classes, in_channels=in_channels, num_persons=num_persons)


def dgstgcn(layout: Layout, *, num_classes: int, in_channels: int = 3, num_persons: int = 2, **kw) -> DGSTGCN:
    """DG-STGCN, pyskl config: 1,685,752 backbone parameters (1,701,172 with 60 classes), 2.50 GMAC at T = 100.
    The person slots share the data BN, so ``num_persons`` is not needed."""
    return DGSTGCN(layout, num_classes=num_classes, in_channels=in_channels, **kw)


def dualhead(layout: Layout, *, num_classes: int, in_channels: int = 3, num_persons: int = 2, **kw) -> DualHead:
    """DualHead-Net: 3,015,253 parameters (NTU60) / 3,049,933 (NTU120); 6.34 GMAC at T = 100, 18.94 at T = 300."""
    return DualHead(layout, num_classes=num_classes, in_channels=in_channels, num_persons=num_persons, **kw)


def msg3d(layout: Layout, *, num_classes: int, in_channels: int = 3, num_persons: int = 2, **kw) -> MSG3D:
    """MS-G3D: 3,194,595 parameters (NTU60) / 3,217,695 (NTU120); 10.92 GMAC at T = 100, 32.77 at T = 300."""
    return MSG3D(layout, num_classes=num_classes, in_channels=in_channels, num_persons=num_persons, **kw)


def stgcn(layout: Layout, *, num_classes: int, in_channels: int = 3, num_persons: int = 2, **kw) -> STGCN:
    """ST-GCN, pyskl port: 3,083,412 backbone parameters, 5.70 GMAC at T = 100. ``num_persons`` is not needed."""
    return STGCN(layout, num_classes=num_classes, in_channels=in_channels, **kw)


def stgcnpp(layout: Layout, *, num_classes: int, in_channels: int = 3, num_persons: int = 2,
            **kw) -> STGCNPlusPlus:
    """ST-GCN++ (pyskl): 1,387,724 backbone parameters, 2.93 GMAC at T = 100. ``num_persons`` is not needed."""
    return STGCNPlusPlus(layout, num_classes=num_classes, in_channels=in_channels, **kw)


MODELS: dict[str, Callable[..., nn.Module]] = {
    "ctrgcn": ctrgcn, "ctrgcn_pyskl": ctrgcn_pyskl, "dgstgcn": dgstgcn,
    "dualhead": dualhead, "msg3d": msg3d, "stgcn": stgcn, "stgcnpp": stgcnpp,
}


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern``, sorted."""
    return sorted(fnmatch.filter(MODELS, pattern))


def build_model(name: str, *, num_classes: int, layout: str | Layout = "ntu25", in_channels: int = 3,
                num_persons: int = 2, **overrides) -> nn.Module:
    """Build the registered model ``name``; ``overrides`` go to its constructor (e.g. ``num_gcn_scales=8``).
    ``layout``: a Layout, a built-in name, a .toml/.json layout file or a ``Layout.to_dict()`` mapping."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(list_models())}")
    layout = resolve_layout(layout)
    return MODELS[name](layout, num_classes=num_classes, in_channels=in_channels, num_persons=num_persons,
                        **overrides)

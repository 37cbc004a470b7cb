"""Numerical parity with a running reference: mmaction2's ST-GCN and ST-GCN++ (the same modules and state-dict
names as pyskl's). Skipped unless mmaction2 is importable; a CPU-only install that works is
``mmengine==0.10.7 mmcv-lite==2.1.0 einops`` plus ``mmaction2==1.2.0 --no-deps`` (specs/models.md §10)."""
from __future__ import annotations

import sys
import types

import pytest
import torch

from trainer.models import build_model, load_reference_weights


@pytest.fixture(scope="module")
def reference_stgcn():
    pytest.importorskip("mmengine")
    pytest.importorskip("mmcv")
    # The 1.2.0 wheel lacks the DRN localizer that mmaction.models imports (open-mmlab/mmaction2#2714).
    for name in ("mmaction.models.localizers.drn", "mmaction.models.localizers.drn.drn"):
        stub = sys.modules.setdefault(name, types.ModuleType(name))
        stub.DRN, stub.__path__ = type("DRN", (), {}), []
    backbones = pytest.importorskip("mmaction.models.backbones")
    return backbones.STGCN


@pytest.mark.parametrize("name, config", [
    ("stgcn", {"graph_cfg": {"layout": "nturgb+d", "mode": "stgcn_spatial"}}),
    ("stgcnpp", {"graph_cfg": {"layout": "nturgb+d", "mode": "spatial"}, "gcn_adaptive": "init",
                 "gcn_with_res": True, "tcn_type": "mstcn"}),
])
@torch.no_grad()
def test_same_logits_as_mmaction2(reference_stgcn, name, config):
    torch.manual_seed(0)
    reference = reference_stgcn(**config).eval()
    ours = build_model(name, num_classes=60).eval()
    torch.testing.assert_close(ours.blocks[0].gcn.A, reference.gcn[0].gcn.A)  # the same graph, built here
    g = torch.Generator().manual_seed(1)
    for key, t in reference.state_dict().items():  # non-trivial BN statistics and graph weights
        if key.endswith(("running_mean", "bias")):
            t.copy_(torch.randn(t.shape, generator=g) * 0.1)
        elif key.endswith(("running_var", "PA")) or (t.dim() == 1 and key.endswith("weight")):
            t.copy_(1 + torch.rand(t.shape, generator=g) * 0.5)
    fc = torch.nn.Linear(256, 60)
    checkpoint = {f"backbone.{k}": v for k, v in reference.state_dict().items()}
    checkpoint |= {"cls_head.fc_cls.weight": fc.weight, "cls_head.fc_cls.bias": fc.bias}
    load_reference_weights(ours, checkpoint, source="pyskl")
    x = torch.randn(3, 2, 24, 25, 3, generator=g)
    expected = fc(reference(x).mean((3, 4)).mean(1))  # GCNHead: mean over (T, V), then persons
    torch.testing.assert_close(ours(x), expected, atol=1e-5, rtol=1e-4)

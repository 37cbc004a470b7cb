"""Every registered model: shapes, gradients, determinism, train/eval, documented parameter and MAC counts,
initial gate values, and that a few SGD steps fit a tiny batch. CPU, tiny inputs."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from schemas.layouts import Layout, get_layout
from trainer.models import MODELS, build_model, list_models


NAMES = list_models()
PYSKL = ("dgstgcn", "stgcn", "stgcnpp")  # person slots share the data BN
CHAIN13 = Layout(
    name="chain13", joint_names=tuple(f"j{i}" for i in range(13)), bone_parents=(0, *range(12)),
    edges=tuple((i, i - 1) for i in range(1, 13)), center=6,
)


def batch(n=2, m=2, t=16, v=25, c=3, seed=0):
    return torch.randn(n, m, t, v, c, generator=torch.Generator().manual_seed(seed))


def count(module):
    return sum(p.numel() for p in module.parameters())


def open_gates(model):
    """Give the zero-initialised gates non-zero values, so that everything behind them gets a gradient."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("alpha", "beta", "add_coeff")) or name.startswith("ta."):
                p.normal_(0, 1e-3)  # small: a saturated sigmoid passes no gradient


def test_registry():
    assert {"dgstgcn", "dualhead", "msg3d", "stgcn"} <= set(NAMES)
    assert list_models("st*") == ["stgcn", "stgcnpp"]
    with pytest.raises(ValueError, match="unknown model 'gcn'.*dgstgcn"):
        build_model("gcn", num_classes=3)
    with pytest.raises(ValueError, match="unknown layout"):
        build_model("stgcn", num_classes=3, layout="body99")


@pytest.mark.parametrize("name", NAMES)
def test_input_that_does_not_fit_is_explained(name):
    model = build_model(name, num_classes=3)
    with pytest.raises(ValueError, match=r"input \(N, M, T, V, C\) = \(2, 2, 8, 17, 3\)"):
        model(batch(t=8, v=17))


@pytest.mark.parametrize("name", NAMES)
def test_forward_shape_and_finite(name):
    torch.manual_seed(0)
    model = build_model(name, num_classes=7)
    y = model(batch())
    assert y.shape == (2, 7)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("layout, channels", [("ntu25", 6), ("coco18", 3), ("coco17", 2), (CHAIN13, 3)],
                         ids=["V25-C6", "V18-C3", "V17-C2", "V13-C3"])
@pytest.mark.parametrize("name", NAMES)
def test_any_layout_and_channels(name, layout, channels):
    torch.manual_seed(0)
    model = build_model(name, num_classes=4, layout=layout, in_channels=channels).eval()
    v = layout.num_joints if isinstance(layout, Layout) else get_layout(layout).num_joints
    y = model(batch(t=9, v=v, c=channels))  # odd T: every stride-2 layer gives ceil(T / 2)
    assert y.shape == (2, 4)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", NAMES)
def test_every_parameter_gets_a_gradient(name):
    torch.manual_seed(0)
    model = build_model(name, num_classes=5)
    open_gates(model)
    F.cross_entropy(model(batch()), torch.tensor([1, 3])).backward()  # fails on in-place ops autograd needs
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert no_grad == []
    for n, p in model.named_parameters():
        if n.endswith(("alpha", "beta")):  # only entry 0 is used, as in the reference
            assert p.grad[0] != 0 and torch.all(p.grad[1:] == 0), n


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_model_and_output(name):
    outputs, states = [], []
    for _ in range(2):
        torch.manual_seed(3)
        model = build_model(name, num_classes=5)
        outputs.append(model(batch()))
        states.append(model.state_dict())
    assert torch.equal(outputs[0], outputs[1])
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    torch.manual_seed(4)
    assert not torch.equal(build_model(name, num_classes=5)(batch()), outputs[0])


@pytest.mark.parametrize("name", NAMES)
def test_train_and_eval(name):
    torch.manual_seed(0)
    model = build_model(name, num_classes=5)
    x = batch(n=3)
    stats = model.data_bn.running_mean.clone()
    train_out = model(x)
    assert not torch.equal(model.data_bn.running_mean, stats)  # train mode updates the BN statistics
    assert torch.equal(model(x), train_out)  # no dropout: train mode is deterministic too
    model.eval()
    stats = model.data_bn.running_mean.clone()
    eval_out = model(x)
    assert torch.equal(model.data_bn.running_mean, stats)
    assert not torch.allclose(eval_out, train_out, atol=1e-3)
    # In eval mode each sample is independent of the rest of the batch.
    torch.testing.assert_close(model(x[1:2]), eval_out[1:2], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_person_order(name):
    """pyskl's shared data BN makes its models invariant to person order; MS-G3D's per-slot BN does not."""
    torch.manual_seed(0)
    model = build_model(name, num_classes=5).eval()
    with torch.no_grad():
        model.data_bn.weight.uniform_(0.5, 2)  # distinct per-slot affine parameters
        model.data_bn.running_mean.uniform_(-1, 1)
    x = batch()
    same = torch.allclose(model(x), model(x.flip(1)), atol=1e-5)
    assert same == (name in PYSKL)


@pytest.mark.parametrize("name", NAMES)
def test_sgd_steps_lower_the_loss(name):
    torch.manual_seed(0)
    model = build_model(name, num_classes=3)
    x, y = batch(n=4, t=12), torch.tensor([0, 1, 2, 1])
    # pyskl's CTR-GCN port feeds the classifier large non-negative features (ReLU after its temporal module): at
    # lr 0.02 the first steps overshoot, exactly as the reference module does.
    opt = torch.optim.SGD(model.parameters(), lr=0.01 if name == "ctrgcn_pyskl" else 0.02, momentum=0.9)

    def loss():
        heads = model.forward_heads(x) if name == "dualhead" else (model(x),)
        return sum(F.cross_entropy(h, y) for h in heads) / len(heads)

    first = loss()
    for _ in range(5):
        opt.zero_grad()
        loss().backward()
        opt.step()
    assert loss().item() < 0.9 * first.item()


# Documented parity numbers (NTU layout, C = 3).
PARAMS = [("dgstgcn", 60, 1_701_172), ("stgcn", 60, 3_098_832), ("stgcnpp", 60, 1_403_144),
          ("msg3d", 60, 3_194_595), ("msg3d", 120, 3_217_695), ("dualhead", 60, 3_015_253),
          ("dualhead", 120, 3_049_933), ("ctrgcn", 60, 1_446_672), ("ctrgcn", 120, 1_462_092),
          ("ctrgcn_pyskl", 60, 1_446_672)]
BACKBONE = {"dgstgcn": 1_685_752, "stgcn": 3_083_412, "stgcnpp": 1_387_724, "ctrgcn_pyskl": 1_431_252}
GMAC = [("dgstgcn", 100, 2.50), ("stgcn", 100, 5.70), ("stgcnpp", 100, 2.93), ("msg3d", 100, 10.92),
        ("msg3d", 300, 32.77), ("dualhead", 100, 6.34), ("dualhead", 300, 18.94), ("ctrgcn", 64, 1.77),
        ("ctrgcn", 100, 2.70), ("ctrgcn_pyskl", 64, 1.77)]


@pytest.mark.parametrize("name, classes, expected", PARAMS)
def test_parameter_counts(name, classes, expected):
    model = build_model(name, num_classes=classes)
    assert count(model) == expected
    if name in BACKBONE:
        assert count(model) - count(model.fc) == BACKBONE[name]


def test_documented_parameters_cover_every_model():
    assert {name for name, _, _ in PARAMS} == set(MODELS) == {name for name, _, _ in GMAC}


def test_dgstgcn_per_block_counts():
    model = build_model("dgstgcn", num_classes=60)
    table = [(10_584, 10_241, 0)] + [(21_912, 10_241, 0)] * 3 + [(55_576, 39_417, 8_576)] \
        + [(71_576, 39_417, 0)] * 2 + [(204_440, 155_457, 33_536)] + [(269_208, 155_457, 0)] * 2
    got = [(count(b.gcn), count(b.tcn), count(b.residual) if b.residual is not None else 0) for b in model.blocks]
    assert got == table
    assert count(model.data_bn) == 150
    assert all(b.gcn.A.shape == (8, 25, 25) for b in model.blocks)
    coco = build_model("dgstgcn", num_classes=60, layout="coco17")
    assert count(coco) - count(coco.fc) == 1_658_824


def test_dualhead_per_part_counts():
    m = build_model("dualhead", num_classes=60)
    parts = [m.data_bn, m.stem.g3d, m.stem.sgcn, m.stem.tcn, m.embed_fine, m.fine[0], m.fine[1], m.fc_fine,
             m.coarse[0], m.coarse[1], m.fc_coarse, m.ta[0], m.ta[1], m.sa[0], m.sa[1]]
    assert [count(p) for p in parts] == [300, 205_836, 34_105, 12_800, 4_656, 258_069, 627_237, 11_580,
                                         389_583, 1_430_991, 23_100, 865, 1_729, 4_801, 9_601]
    assert [len(s.sgcn[0].A_scales) // 25 for s in (m.stem, *m.fine, *m.coarse)] == [9] * 5
    assert [len(s.g3d) for s in (m.stem, *m.fine, *m.coarse)] == [2, 2, 2, 1, 1]
    assert [len(s.tcn.branches) for s in (m.stem, *m.fine, *m.coarse)] == [6, 6, 6, 4, 4]


def gmac(model, x):
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() / 2 / 1e9  # FlopCounterMode counts 2 FLOPs per multiply-accumulate


@pytest.mark.parametrize("name, frames, expected", GMAC)
def test_macs(name, frames, expected):
    with torch.device("meta"):  # shapes only: counts without computing
        model = build_model(name, num_classes=60)
        x = torch.empty(1, 2, frames, 25, 3)
    assert gmac(model, x) == pytest.approx(expected, rel=0.01)


def test_initial_values():
    torch.manual_seed(0)
    dg = build_model("dgstgcn", num_classes=60)
    for block in dg.blocks:
        assert torch.all(block.gcn.alpha == 0) and block.gcn.alpha.shape == (8,)
        assert torch.all(block.gcn.beta == 0) and block.gcn.beta.shape == (8,)
        assert torch.all(block.tcn.add_coeff == 0) and block.tcn.add_coeff.shape == (25,)
        assert torch.equal(block.gcn.A, dg.blocks[0].gcn.A)  # one random graph, copied into every block
    a = dg.blocks[0].gcn.A
    assert abs(a.mean().item() - 0.04) < 0.005 and abs(a.std().item() - 0.02) < 0.005
    assert dg.blocks[0].gcn.A.data_ptr() != dg.blocks[1].gcn.A.data_ptr()
    assert dg.fc.weight.std().item() == pytest.approx(0.01, rel=0.1) and torch.all(dg.fc.bias == 0)

    dh = build_model("dualhead", num_classes=60)
    for conv in dh.ta:
        assert torch.all(conv.weight == 0) and torch.all(conv.bias == 0)
    for conv in dh.sa:
        assert torch.all(conv.bias == 0) and conv.weight.std() > 0 and conv.weight.shape[-1] == 25
    res = [p for n, p in dh.named_parameters() if n.endswith("A_res")]
    assert res and all(p.abs().max() <= 1e-6 and p.abs().max() > 0 for p in res)

    st = build_model("stgcn", num_classes=60)
    assert all(torch.all(b.gcn.PA == 1) for b in st.blocks)


def test_dualhead_fuses_the_two_heads():
    torch.manual_seed(0)
    model = build_model("dualhead", num_classes=5, mu=0.25).eval()
    x = batch()
    fine, coarse = model.forward_heads(x)
    torch.testing.assert_close(model(x), 0.25 * fine + 0.75 * coarse)
    assert build_model("dualhead", num_classes=5, layout="coco18").sa[0].kernel_size == (17,)

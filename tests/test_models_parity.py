"""The reference formulas (specs/models.md §2, §4, §5 and the quirks of reference-state-dicts.md), written out
with explicit loops on tiny sizes and compared with our modules."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from schemas.layouts import get_layout
from trainer.models import build_model, graph
from trainer.models.dgstgcn import DGGCN, DGTCN
from trainer.models.layers import DataBN
from trainer.models.msg3d import G3D, MSTCN, MultiScaleGCN
from trainer.models.stgcn import GraphConv


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


def randomize_bn(module):
    """Eval-mode BN with non-trivial statistics, so that a wrong channel order shows."""
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 2)
            m.bias.data.uniform_(-0.5, 0.5)
    return module.eval()


@pytest.mark.parametrize("per_person", [False, True])
def test_data_bn_feature_order(per_person):
    n, m, t, v, c = 2, 2, 3, 4, 3
    bn = DataBN(v, c, m if per_person else None).eval()
    bn.running_mean.copy_(torch.arange(len(bn.running_mean), dtype=torch.float32))
    x = torch.randn(n, m, t, v, c)
    y = bn(x).reshape(n, m, c, t, v)
    for i, j, vv, cc in [(0, 0, 0, 0), (1, 1, 3, 2), (0, 1, 2, 1), (1, 0, 1, 2)]:
        feature = (j * v + vv) * c + cc if per_person else vv * c + cc
        expected = (x[i, j, :, vv, cc] - feature) / math.sqrt(1 + bn.eps)
        torch.testing.assert_close(y[i, j, cc, :, vv], expected)


@torch.no_grad()
def test_dggcn_formula():
    c_in, c_out, k, v, t = 3, 16, 8, 5, 4
    mod = randomize_bn(DGGCN(c_in, c_out, graph.random_graph(k, v)))
    mod.alpha.uniform_(0.5, 1)  # entries 1.. must be ignored
    mod.beta.uniform_(0.5, 1)
    x = torch.randn(1, c_in, t, v)
    m = c_out // k
    pre = mod.pre(x)[0]  # (K·m, T, V), channel k·m + c
    z = x.mean(2, keepdim=True)
    x1, x2 = mod.conv1(z)[0, :, 0], mod.conv2(z)[0, :, 0]  # (K·m, V)
    y = torch.zeros(c_out, t, v)
    for g in range(k):
        s = torch.zeros(v, v)
        for vv in range(v):
            for w in range(v):
                s[vv, w] = sum(x1[g * m + c, vv] * x2[g * m + c, w] for c in range(m))
        da = torch.exp(s) / torch.exp(s).sum(0, keepdim=True)  # softmax over the source joint, no 1/sqrt(m)
        for c in range(m):
            ch = g * m + c
            a = mod.A[g] + mod.alpha[0] * torch.tanh(x1[ch][:, None] - x2[ch][None, :]) + mod.beta[0] * da
            for w in range(v):
                y[ch, :, w] = sum(pre[ch, :, vv] * a[vv, w] for vv in range(v))
    expected = torch.relu(mod.bn(mod.post(y[None])) + mod.down(x))
    torch.testing.assert_close(mod(x), expected, atol=1e-5, rtol=1e-4)


@torch.no_grad()
def test_dgtcn_joint_skeleton_fusion():
    c, v, t = 64, 5, 6
    fused = randomize_bn(DGTCN(c, 2, joint_fusion=True, num_joints=v))
    assert [b[0].out_channels if isinstance(b, torch.nn.Sequential) else b.out_channels for b in fused.branches] \
        == [14, 10, 10, 10, 10, 10]
    assert fused.add_coeff.shape == (25,) and [b[3].conv.dilation[0] for b in fused.branches[:4]] == [1, 2, 3, 4]
    plain = DGTCN(c, 2).eval()
    plain.load_state_dict({k: p for k, p in fused.state_dict().items() if k != "add_coeff"})
    x = torch.randn(2, c, t, v)
    torch.testing.assert_close(fused(x), plain(x))  # a no-op at init
    fused.add_coeff.uniform_(0.5, 1)
    x_tilde = torch.cat([x, x.mean(3, keepdim=True)], 3)  # the virtual skeleton node
    out = torch.cat([b(x_tilde) for b in fused.branches], 1)
    feat = torch.stack([out[..., j] + out[..., v] * fused.add_coeff[j] for j in range(v)], -1)
    torch.testing.assert_close(fused(x), fused.bn(fused.transform(feat)))
    assert fused(x).shape == (2, c, 3, v)


@torch.no_grad()
def test_stgcn_graph_conv_formula():
    c_in, c_out, v, t = 3, 4, 25, 2
    layout = get_layout("ntu25")
    a = graph.stgcn_partitions(layout.graph_edges("pyskl"), v, layout.center)
    mod = randomize_bn(GraphConv(c_in, c_out, a))
    mod.PA.uniform_(0.5, 1.5)
    x = torch.randn(1, c_in, t, v)
    h = mod.conv(x)[0]  # (K·C_out, T, V), subset-major
    eff = mod.A * mod.PA
    y = torch.zeros(c_out, t, v)
    for k in range(3):
        for c in range(c_out):
            for w in range(v):
                y[c, :, w] += sum(h[k * c_out + c, :, u] * eff[k, u, w] for u in range(v))
    torch.testing.assert_close(mod(x), torch.relu(mod.bn(y[None])), atol=1e-5, rtol=1e-4)


@torch.no_grad()
def test_multiscale_gcn_formula():
    v, c_in, c_out, s, t = 25, 3, 8, 4, 2
    a = graph.multiscale_adjacency(graph.binary_adjacency(get_layout("ntu25").edges, v), s)
    mod = randomize_bn(MultiScaleGCN(a, c_in, c_out))
    mod.A_res.uniform_(-0.1, 0.1)
    x = torch.randn(1, c_in, t, v)
    big = mod.A_scales + mod.A_res
    support = torch.zeros(s * c_in, t, v)
    for k in range(s):
        for c in range(c_in):
            for w in range(v):  # rows are targets; channels scale-major
                support[k * c_in + c, :, w] = sum(big[k * v + w, u] * x[0, c, :, u] for u in range(v))
    torch.testing.assert_close(mod(x), torch.relu(mod.mlp(support[None])), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("window, stride", [(3, 1), (5, 2)])
def test_g3d_windows_follow_nn_unfold(window, stride):
    v, c, t = 25, 3, 9
    mod = G3D(graph.binary_adjacency(get_layout("ntu25").edges, v), c, 6, 8, window, stride, 2).eval()
    seen = []
    mod.gcn.register_forward_hook(lambda _m, inputs, _out: seen.append(inputs[0]))
    x = torch.randn(2, c, t, v)
    out = mod(x)
    cols = F.unfold(x, (window, 1), padding=((window - 1) // 2, 0), stride=(stride, 1))  # N, C·τ, T'·V
    expected = cols.view(2, c, window, -1, v).permute(0, 1, 3, 2, 4).reshape(2, c, -1, window * v)
    torch.testing.assert_close(seen[0], expected)
    assert out.shape == (2, 8, math.ceil(t / stride), v)


def test_ms_tcn_structure():
    tcn = MSTCN(96, 192, 2)
    assert [len(b) for b in tcn.branches] == [4, 4, 4, 4, 5, 2] and tcn.residual.conv.stride == (2, 1)
    assert MSTCN(96, 96).residual(torch.ones(1)).item() == 1  # identity residual
    x = torch.randn(1, 96, 9, 25)
    assert tcn(x).shape == (1, 192, 5, 25)
    with pytest.raises(ValueError, match="equal branches"):
        MSTCN(96, 100)
    model = build_model("dualhead", num_classes=3)
    assert all(s.sgcn[2].act is False and s.sgcn[1].act and s.tcn.act for s in (model.stem, *model.fine, *model.coarse))


def test_graphs_follow_each_reference():
    """pyskl links NTU's hand tips straight to the hands; MS-G3D and DualHead use the tip -> thumb -> hand chain."""
    tip, thumb, hand = 21, 22, 7  # HandTipLeft, ThumbLeft, HandLeft
    st = build_model("stgcn", num_classes=3).blocks[0].gcn.A.sum(0)
    assert st[tip, hand] > 0 and st[tip, thumb] == 0
    ms = build_model("msg3d", num_classes=3).blocks[0].sgcn[0].A_scales[25:50]  # the 1-hop scale
    assert ms[tip, thumb] > 0 and ms[tip, hand] == 0


@torch.no_grad()
def test_dualhead_order_of_operations():
    """The spec's twelve steps, transcribed literally, against forward_heads."""
    model = randomize_bn(build_model("dualhead", num_classes=5))
    for conv in model.ta:
        conv.weight.normal_(0, 0.01)
    x = torch.randn(2, 2, 11, 25, 3)
    h = model.stem(model.data_bn(x))  # 1. STGC-1
    fine1 = model.embed_fine(h)  # 2.
    coarse1 = h[:, :, ::2]  # 3.
    fine2 = model.fine[0](fine1)  # 4.
    coarse1 = coarse1 * torch.sigmoid(model.ta[0](fine2.mean(-1))).unsqueeze(-1) + coarse1  # 5. TA-1
    coarse2 = model.coarse[0](coarse1)  # 6.
    fine2 = fine2 * torch.sigmoid(model.sa[0](coarse2.mean(-2))).unsqueeze(-2) + fine2  # 7. SA-1
    fine3 = model.fine[1](fine2)  # 8.
    coarse2 = coarse2 * torch.sigmoid(model.ta[1](fine3.mean(-1))).unsqueeze(-1) + coarse2  # 9. TA-2
    coarse3 = model.coarse[1](coarse2)  # 10.
    fine3 = fine3 * torch.sigmoid(model.sa[1](coarse3.mean(-2))).unsqueeze(-2) + fine3  # 11. SA-2
    heads = [fc(f.reshape(2, 2, f.shape[1], -1).mean(3).mean(1))  # 12. GAP over (T, V), mean over M
             for fc, f in ((model.fc_fine, fine3), (model.fc_coarse, coarse3))]
    for got, expected in zip(model.forward_heads(x), heads, strict=True):
        torch.testing.assert_close(got, expected)
    assert coarse3.shape[2] == 2 and fine3.shape[2] == 3  # 11 -> 6 -> 3 (fine); 6 -> 3 -> 2 (coarse)

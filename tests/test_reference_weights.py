"""Reference checkpoint import, tested with synthetic state dicts built from the documented key names and shapes
(specs/reference-state-dicts.md: pyskl DG-STGCN and ST-GCN recognizers, MS-G3D and DualHead-Net ``Model``)."""
from __future__ import annotations

import pytest
import torch

from trainer.models import build_model, export_reference_state_dict, list_models, load_reference_weights


# --- the documented checkpoints, generated from their published key patterns -----------------------------------
def bn(prefix, c):
    return {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,),
            f"{prefix}.running_var": (c,), f"{prefix}.num_batches_tracked": ()}


def conv(prefix, c_out, c_in, *kernel):
    return {f"{prefix}.weight": (c_out, c_in, *kernel), f"{prefix}.bias": (c_out,)}


PYSKL_BLOCKS = [(3, 64), (64, 64), (64, 64), (64, 64), (64, 128), (128, 128), (128, 128), (128, 256), (256, 256),
                (256, 256)]


def pyskl_keys(dg: bool) -> dict[str, tuple]:
    keys = bn("backbone.data_bn", 75)
    for i, (ci, co) in enumerate(PYSKL_BLOCKS):
        g, t = f"backbone.gcn.{i}.gcn", f"backbone.gcn.{i}.tcn"
        if dg:
            keys |= {f"{g}.A": (8, 25, 25), f"{g}.alpha": (8,), f"{g}.beta": (8,), f"{t}.add_coeff": (25,)}
            keys |= conv(f"{g}.pre.0", co, ci, 1, 1) | bn(f"{g}.pre.1", co) | conv(f"{g}.post", co, co, 1, 1)
            keys |= conv(f"{g}.conv1", co, ci, 1, 1) | conv(f"{g}.conv2", co, ci, 1, 1) | bn(f"{g}.bn", co)
            if ci != co:
                keys |= conv(f"{g}.down.0", co, ci, 1, 1) | bn(f"{g}.down.1", co)
            b = co // 6
            for j, w in enumerate([co - 5 * b, b, b, b]):
                keys |= conv(f"{t}.branches.{j}.0", w, co, 1, 1) | bn(f"{t}.branches.{j}.1", w)
                keys |= conv(f"{t}.branches.{j}.3.conv", w, w, 3, 1)
            keys |= conv(f"{t}.branches.4.0", b, co, 1, 1) | bn(f"{t}.branches.4.1", b)
            keys |= conv(f"{t}.branches.5", b, co, 1, 1)
            keys |= bn(f"{t}.transform.0", co) | conv(f"{t}.transform.2", co, co, 1, 1) | bn(f"{t}.bn", co)
        else:
            keys |= {f"{g}.PA": (3, 25, 25), f"{g}.A": (3, 25, 25)} | bn(f"{g}.bn", co)
            keys |= conv(f"{g}.conv", 3 * co, ci, 1, 1) | conv(f"{t}.conv", co, co, 9, 1) | bn(f"{t}.bn", co)
        if i in (4, 7):
            keys |= conv(f"backbone.gcn.{i}.residual.conv", co, ci, 1, 1) | bn(f"backbone.gcn.{i}.residual.bn", co)
    return keys | conv("cls_head.fc_cls", 60, 256)


def ms_tcn_keys(prefix, ci, co, num_dilations=4):
    n = num_dilations + 2
    w = co // n
    keys = {}
    for j in range(n):
        keys |= conv(f"{prefix}.branches.{j}.0", w, ci, 1, 1) | bn(f"{prefix}.branches.{j}.1", w)
    for j in range(num_dilations):
        keys |= conv(f"{prefix}.branches.{j}.3.conv", w, w, 3, 1) | bn(f"{prefix}.branches.{j}.3.bn", w)
    keys |= bn(f"{prefix}.branches.{num_dilations}.4", w)
    if ci != co:
        keys |= conv(f"{prefix}.residual.conv", co, ci, 1, 1) | bn(f"{prefix}.residual.bn", co)
    return keys


def stgc_keys(stage, ci, co, gcn_scales, windows=(3, 5), num_dilations=4):
    ce = co if ci == 3 else ci
    keys = {f"sgcn{stage}.0.A_res": (gcn_scales * 25, 25)}
    keys |= conv(f"sgcn{stage}.0.mlp.layers.0", ce, gcn_scales * ci, 1, 1) | bn(f"sgcn{stage}.0.mlp.layers.1", ce)
    keys |= ms_tcn_keys(f"sgcn{stage}.1", ce, co, num_dilations) | ms_tcn_keys(f"sgcn{stage}.2", co, co, num_dilations)
    for j, w in enumerate(windows):
        p = f"gcn3d{stage}.gcn3d.{j}"
        keys[f"{p}.gcn3d.1.A_res"] = (6 * 25 * w, 25 * w)
        keys |= conv(f"{p}.gcn3d.1.mlp.layers.0", ce, 6 * ci, 1, 1) | bn(f"{p}.gcn3d.1.mlp.layers.1", ce)
        keys |= conv(f"{p}.out_conv", co, ce, 1, w, 1) | bn(f"{p}.out_bn", co)
    return keys | ms_tcn_keys(f"tcn{stage}", co, co, num_dilations)


def msg3d_keys():
    keys = bn("data_bn", 150) | stgc_keys(1, 3, 96, 13) | stgc_keys(2, 96, 192, 13) | stgc_keys(3, 192, 384, 13)
    return keys | conv("fc", 60, 384)


def dualhead_keys():
    keys = bn("data_bn", 150) | stgc_keys(1, 3, 96, 9) | conv("embed_fine", 48, 96, 1, 1)
    keys |= stgc_keys("2_fine", 48, 96, 9) | stgc_keys("3_fine", 96, 192, 9) | conv("fc_fine", 60, 192)
    keys |= stgc_keys("2_coarse", 96, 192, 9, (3,), 2) | stgc_keys("3_coarse", 192, 384, 9, (3,), 2)
    keys |= conv("fc_coarse", 60, 384)
    keys |= conv("conv_ta_fine_to_coarse_block_2_to_1", 1, 96, 9)
    keys |= conv("conv_ta_fine_to_coarse_block_3_to_2", 1, 192, 9)
    return keys | conv("conv_sa_coarse_to_fine_block_2_to_2", 1, 192, 25) \
        | conv("conv_sa_coarse_to_fine_block_3_to_3", 1, 384, 25)


DOCUMENTED = {  # model -> (source, keys, documented number of entries)
    "dgstgcn": ("pyskl", pyskl_keys(dg=True), 832),
    "stgcn": ("pyskl", pyskl_keys(dg=False), 181),
    "msg3d": ("msg3d", msg3d_keys(), 810),
    "dualhead": ("dualhead", dualhead_keys(), 1164),
}


def synthetic(keys: dict[str, tuple], seed=0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape in keys.items():
        if name.endswith("num_batches_tracked"):
            out[name] = torch.tensor(7)
        elif name.endswith("running_var"):
            out[name] = torch.rand(shape, generator=g) + 0.5
        else:
            out[name] = torch.randn(shape, generator=g) * 0.1
    return out


def batch(n=2, t=12, seed=5):
    return torch.randn(n, 2, t, 25, 3, generator=torch.Generator().manual_seed(seed))


# --- tests -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", DOCUMENTED)
def test_documented_keys_match_exactly(name):
    source, keys, entries = DOCUMENTED[name]
    assert len(keys) == entries  # the generator reproduces the documented list
    exported = export_reference_state_dict(build_model(name, num_classes=60), source)
    assert {k: tuple(v.shape) for k, v in exported.items()} == keys


@pytest.mark.parametrize("name", DOCUMENTED)
def test_synthetic_checkpoint_loads_onto_the_right_tensors(name):
    source, keys, _ = DOCUMENTED[name]
    state = synthetic(keys)
    model = build_model(name, num_classes=60)
    load_reference_weights(model, state, source=source)
    ours = model.state_dict()
    where = {  # a few spot checks, written out by hand
        "dgstgcn": {"backbone.gcn.3.gcn.A": "blocks.3.gcn.A", "backbone.gcn.7.residual.bn.running_var":
                    "blocks.7.residual.bn.running_var", "backbone.gcn.9.tcn.branches.5.weight":
                    "blocks.9.tcn.branches.5.weight", "cls_head.fc_cls.weight": "fc.weight"},
        "stgcn": {"backbone.gcn.0.gcn.PA": "blocks.0.gcn.PA", "backbone.data_bn.bias": "data_bn.bias"},
        "msg3d": {"gcn3d2.gcn3d.1.gcn3d.1.mlp.layers.0.weight": "blocks.1.g3d.1.gcn.mlp.0.weight",
                  "sgcn3.1.residual.conv.weight": "blocks.2.sgcn.1.residual.conv.weight",
                  "tcn1.branches.4.4.running_mean": "blocks.0.tcn.branches.4.4.running_mean"},
        "dualhead": {"gcn3d2_fine.gcn3d.1.out_conv.weight": "fine.0.g3d.1.out_conv.weight",
                     "sgcn3_coarse.0.A_res": "coarse.1.sgcn.0.A_res", "sgcn1.0.A_res": "stem.sgcn.0.A_res",
                     "conv_ta_fine_to_coarse_block_3_to_2.weight": "ta.1.weight",
                     "conv_sa_coarse_to_fine_block_2_to_2.bias": "sa.0.bias", "embed_fine.weight": "embed_fine.weight"},
    }[name]
    for ref, key in where.items():
        assert torch.equal(ours[key], state[ref]), ref
    fingerprint = lambda values: sorted((tuple(v.shape), round(v.double().sum().item(), 9)) for v in values)  # noqa: E731
    assert fingerprint(state.values()) == fingerprint(ours.values())  # every tensor landed somewhere, once
    assert torch.isfinite(model.eval()(batch())).all()


@pytest.mark.parametrize("name", list_models())
def test_export_then_import_gives_identical_outputs(name):
    torch.manual_seed(0)
    model = build_model(name, num_classes=10)
    model(batch())  # one training step's worth of BN statistics
    model.eval()
    fresh = build_model(name, num_classes=10).eval()
    load_reference_weights(fresh, export_reference_state_dict(model))
    assert torch.equal(fresh(batch()), model(batch()))


def test_checkpoint_wrappers_and_missing_counters():
    source, keys, _ = DOCUMENTED["msg3d"]
    state = {f"module.{k}": v for k, v in synthetic(keys).items() if not k.endswith("num_batches_tracked")}
    a, b = build_model("msg3d", num_classes=60), build_model("msg3d", num_classes=60)
    load_reference_weights(a, {"meta": {}, "state_dict": state})  # mmcv layout, DataParallel prefix
    load_reference_weights(b, {k.removeprefix("module."): v for k, v in state.items()}, source="msg3d")
    assert all(torch.equal(a.state_dict()[k], v) for k, v in b.state_dict().items())


@pytest.mark.parametrize("corrupt, message", [
    (lambda s: s.pop("backbone.gcn.2.gcn.post.weight"), r"1 missing keys: backbone\.gcn\.2\.gcn\.post\.weight"),
    (lambda s: s.update({"backbone.gcn.10.gcn.A": torch.zeros(8, 25, 25)}),
     r"1 unexpected keys: backbone\.gcn\.10\.gcn\.A"),
    (lambda s: s.update({"backbone.gcn.0.gcn.A": torch.zeros(8, 17, 17)}),
     r"1 mis-shaped keys: backbone\.gcn\.0\.gcn\.A \(8, 17, 17\) \(model \(8, 25, 25\)\)"),
])
def test_mismatches_fail_loudly_and_load_nothing(corrupt, message):
    source, keys, _ = DOCUMENTED["dgstgcn"]
    state = synthetic(keys)
    corrupt(state)
    model = build_model("dgstgcn", num_classes=60)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=message):
        load_reference_weights(model, state)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_wrong_source_or_layout_fails():
    _, keys, _ = DOCUMENTED["dualhead"]
    with pytest.raises(ValueError, match="msg3d checkpoints do not fit DualHead"):
        load_reference_weights(build_model("dualhead", num_classes=60), synthetic(keys), source="msg3d")
    with pytest.raises(ValueError, match="unknown reference source"):
        load_reference_weights(build_model("dualhead", num_classes=60), synthetic(keys), source="agcn")
    with pytest.raises(ValueError, match=r"mis-shaped keys: .*sgcn1\.0\.A_res"):
        load_reference_weights(build_model("dualhead", num_classes=60, layout="coco18"), synthetic(keys))
    with pytest.raises(ValueError, match=r"(?s)unexpected keys: .*missing keys: "):
        load_reference_weights(build_model("msg3d", num_classes=60), synthetic(keys))


def test_head_can_be_left_out_for_fine_tuning():
    _, keys, _ = DOCUMENTED["dualhead"]
    state = synthetic(keys)  # 60 classes
    model = build_model("dualhead", num_classes=120)
    with pytest.raises(ValueError, match="mis-shaped keys: fc_fine.weight"):
        load_reference_weights(model, state)
    head = model.fc_coarse.weight.clone()
    load_reference_weights(model, state, head=False)
    assert torch.equal(model.fc_coarse.weight, head)
    assert torch.equal(model.stem.tcn.branches[0][0].weight, state["tcn1.branches.0.0.weight"])


def test_unused_dgstgcn_gate_entries_are_loaded_but_ignored():
    _, keys, _ = DOCUMENTED["dgstgcn"]
    state = synthetic(keys)
    tweaked = {k: (v + 3 * (torch.arange(len(v)) > 0) if k.endswith((".alpha", ".beta")) else v)
               for k, v in state.items()}
    a, b = build_model("dgstgcn", num_classes=60).eval(), build_model("dgstgcn", num_classes=60).eval()
    load_reference_weights(a, state)
    load_reference_weights(b, tweaked)
    assert torch.equal(b.blocks[0].gcn.alpha, tweaked["backbone.gcn.0.gcn.alpha"])
    assert not torch.equal(a.blocks[0].gcn.alpha, b.blocks[0].gcn.alpha)
    assert torch.equal(a(batch()), b(batch()))

"""CTR-GCN (``ctrgcn``: Uason-Chen/CTR-GCN; ``ctrgcn_pyskl``: pyskl's port): parameter counts per block, the
reference checkpoints' key lists, and logits equal to the reference implementations' on random weights.

``data/ctrgcn_reference.json`` was made once by running the unmodified reference modules (Uason-Chen/CTR-GCN
e13d758 ``model.ctrgcn.Model``; pyskl 3f6795f ``CTRGCN`` backbone + a ``GCNHead``) in eval mode with the weights of
``reference_weights`` and the input of ``reference_input``: it holds their state-dict key names and shapes (in
registration order) and their logits. No reference code is part of this repository.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from trainer.models import build_model, export_reference_state_dict, load_reference_weights
from trainer.data import SkeletonDataset, crop_resize_frames
from trainer.models.ctrgcn import CTRGC, original_relation_width, pyskl_relation_width
from trainer.recipes import resolve_recipe

FIXTURE = Path(__file__).parent / "data" / "ctrgcn_reference.json"
SOURCES = {"ctrgcn": "ctrgcn", "ctrgcn_pyskl": "pyskl"}  # model -> checkpoint format


def reference_weights(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random but well-scaled weights for every key, drawn in sorted key order (so any key order gives the same
    tensors): variance-preserving conv and linear weights, BN statistics and scales near 1, a non-zero ``alpha``
    so that the refinement branch counts, small non-negative graphs; the logits stay of order 1 to 100."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name in sorted(shapes):
        shape, leaf = shapes[name], name.rsplit(".", 1)[-1]
        if leaf == "num_batches_tracked":
            out[name] = torch.tensor(7)
        elif leaf == "running_var":
            out[name] = torch.rand(shape, generator=g) + 1
        elif leaf == "weight" and len(shape) == 1:  # BN scale
            out[name] = torch.rand(shape, generator=g) * 0.5 + 0.5
        elif leaf == "alpha":
            out[name] = torch.rand(shape, generator=g) * 0.1 + 0.05
        elif leaf in ("A", "PA"):
            out[name] = torch.rand(shape, generator=g) * 0.04
        elif leaf == "weight":
            fan_in = int(torch.tensor(shape[1:]).prod())
            out[name] = torch.randn(shape, generator=g) / fan_in ** 0.5
        else:  # biases, running means
            out[name] = torch.randn(shape, generator=g) * 0.1
    return out


def reference_input(seed: int = 1) -> torch.Tensor:
    """``(N, M, T, V, C) = (2, 2, 20, 25, 3)``; the second sample has an empty second person, as NTU often does."""
    x = torch.randn(2, 2, 20, 25, 3, generator=torch.Generator().manual_seed(seed))
    x[1, 1] = 0
    return x


@pytest.fixture(scope="module")
def reference():
    return json.loads(FIXTURE.read_text())


def count(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name", SOURCES)
def test_keys_and_shapes_are_the_reference_checkpoints(name, reference):
    keys = {k: tuple(s) for k, s in reference[SOURCES[name]]["keys"]}
    assert len(keys) == {"ctrgcn": 822, "ctrgcn_pyskl": 823}[name]
    exported = export_reference_state_dict(build_model(name, num_classes=60), SOURCES[name])
    assert {k: tuple(v.shape) for k, v in exported.items()} == keys


@pytest.mark.parametrize("name", SOURCES)
@torch.no_grad()
def test_logits_equal_the_reference(name, reference):
    ref = reference[SOURCES[name]]
    weights = reference_weights({k: tuple(s) for k, s in ref["keys"]})
    model = build_model(name, num_classes=60)
    load_reference_weights(model, weights, source=SOURCES[name])
    logits = model.eval()(reference_input())
    expected = torch.tensor(ref["logits"])
    assert expected.abs().max() > 0.5 and expected.std() > 0.1  # a non-degenerate case
    torch.testing.assert_close(logits, expected, atol=2e-6, rtol=1e-5)
    # The other variant, given the same tensors, computes something else.
    other = next(n for n in SOURCES if n != name)
    twin = build_model(other, num_classes=60).eval()
    twin.load_state_dict({k: v for k, v in model.state_dict().items() if k in twin.state_dict()} |
                         ({"A": model.blocks[0].gcn.A} if other == "ctrgcn_pyskl" else {}))
    assert (twin(reference_input()) - expected).abs().max() > 0.05


def test_checkpoint_of_the_other_variant_is_refused(reference):
    weights = reference_weights({k: tuple(s) for k, s in reference["pyskl"]["keys"]})
    with pytest.raises(ValueError, match="pyskl checkpoints do not fit CTRGCN"):
        load_reference_weights(build_model("ctrgcn", num_classes=60), weights, source="pyskl")
    with pytest.raises(ValueError, match="ctrgcn checkpoints do not fit PysklCTRGCN"):
        load_reference_weights(build_model("ctrgcn_pyskl", num_classes=60), weights, source="ctrgcn")
    model = build_model("ctrgcn_pyskl", num_classes=60)
    load_reference_weights(model, weights)  # pyskl is its default format
    assert torch.equal(model.blocks[4].residual.bn.running_var, weights["backbone.net.4.residual.bn.running_var"])
    assert torch.equal(model.blocks[9].gcn.convs[2].conv4.weight, weights["backbone.net.9.gcn1.convs.2.conv4.weight"])
    assert torch.equal(model.A, weights["backbone.A"])


@pytest.mark.parametrize("name", SOURCES)
def test_parameter_counts_per_block(name):
    """Counted from the reference definitions (Uason-Chen ``Model``; pyskl ``CTRGCN``: the same counts)."""
    model = build_model(name, num_classes=60)
    table = [(5_076, 6_976, 0)] + [(19_332, 6_976, 0)] * 3 + [(42_244, 27_264, 8_576)] \
        + [(70_580, 27_264, 0)] * 2 + [(160_436, 107_776, 33_536)] + [(274_452, 107_776, 0)] * 2
    got = [(count(b.gcn), count(b.tcn), count(b.residual) if b.residual is not None else 0) for b in model.blocks]
    assert got == table
    assert (count(model.data_bn), count(model.fc)) == (300, 15_420)
    assert count(model) == 1_446_672 and count(model) - count(model.fc) == 1_431_252
    assert count(build_model(name, num_classes=120)) == 1_462_092


@pytest.mark.parametrize("name", SOURCES)
def test_graph_is_the_reference_graph(name, reference):
    model = build_model(name, num_classes=60)
    expected = torch.tensor(reference[SOURCES[name]]["graph"])
    assert all(torch.equal(b.gcn.A, expected) for b in model.blocks)
    tip, thumb, hand = 21, 22, 7  # HandTipLeft, ThumbLeft, HandLeft; subset 1: A[parent, child] = 1
    assert (expected[1, thumb, tip], expected[1, hand, tip]) == ((1, 0) if name == "ctrgcn" else (0, 1))
    assert expected[2, 1, 20] == 0.25  # spine-shoulder has four children: 1/4 to each


def test_relation_widths():
    assert [original_relation_width(c) for c in (3, 9, 2, 6, 12, 16, 64, 128, 256)] == [8, 8, 8, 8, 1, 2, 8, 16, 32]
    assert [pyskl_relation_width(c) for c in (3, 9, 2, 6, 12, 16, 64, 128, 256)] == [8, 8, 8, 8, 8, 8, 8, 16, 32]
    assert build_model("ctrgcn", num_classes=5, in_channels=6).blocks[0].gcn.convs[0].conv1.out_channels == 8


@pytest.mark.parametrize("source_rows", [False, True])
@torch.no_grad()
def test_ctrgc_formula(source_rows):
    """The reference's order of operations (convs before the mean over time), written out with loops."""
    torch.manual_seed(0)
    c_in, c_out, t, v = 4, 3, 5, 6
    name = "ctrgcn_pyskl" if source_rows else "ctrgcn"
    unit = build_model(name, num_classes=3, in_channels=c_in, layout="coco17").blocks[0].gcn
    conv = CTRGC(c_in, c_out, 2)
    a, alpha = torch.rand(v, v), torch.tensor([0.7])
    x = torch.randn(1, c_in, t, v)
    x1, x2, x3 = conv.conv1(x).mean(2)[0], conv.conv2(x).mean(2)[0], conv.conv3(x)[0]
    rel = conv.conv4(torch.tanh(x1[:, :, None] - x2[:, None, :])[None])[0]  # C_out, V, V
    y = torch.zeros(c_out, t, v)
    for c in range(c_out):
        g = rel[c] * alpha + a
        for u in range(v):
            for w in range(v):
                if source_rows:
                    y[c, :, w] += g[u, w] * x3[c, :, u]
                else:
                    y[c, :, u] += g[u, w] * x3[c, :, w]
    h, r = conv(x)
    g = r * alpha + a
    torch.testing.assert_close(h @ (g if source_rows else g.transpose(2, 3)), y[None], atol=1e-5, rtol=1e-5)
    assert unit.source_rows == source_rows


def test_initial_values():
    torch.manual_seed(0)
    for name in SOURCES:
        model = build_model(name, num_classes=60)
        for block in model.blocks:
            assert block.gcn.alpha.shape == (1,) and block.gcn.alpha.item() == 0
            assert torch.all(block.gcn.bn.weight == 1e-6) and torch.all(block.gcn.bn.bias == 0)
            assert torch.all(block.gcn.convs[0].conv3.bias == 0)
        tcn_bn = model.blocks[9].tcn.branches[2][4].weight
        fc_std = model.fc.weight.std().item()
        if name == "ctrgcn":
            assert 0.005 < tcn_bn.std().item() < 0.04 and abs(tcn_bn.mean().item() - 1) < 0.01  # N(1, 0.02)
            assert fc_std == pytest.approx((2 / 60) ** 0.5, rel=0.1) and model.fc.bias.abs().max() > 0
        else:
            assert torch.all(tcn_bn == 1) and torch.all(model.fc.bias == 0)
            assert fc_std == pytest.approx(0.01, rel=0.1)
        conv = model.blocks[5].gcn.convs[1].conv3.weight  # kaiming, fan-out: std sqrt(2 / 128)
        assert conv.std().item() == pytest.approx((2 / 128) ** 0.5, rel=0.1)


# --- the data pipeline ------------------------------------------------------------------------------------------
class FixedDraws:
    """An rng whose ratio draw is ``u`` and whose offset draw is ``offset``."""

    def __init__(self, u, offset):
        self.u, self.offset = u, offset

    def random(self):
        return self.u

    def integers(self, low, high):
        assert low <= self.offset < high
        return self.offset


def resized(length, clip_len, rng=None):
    lower, upper, weight = crop_resize_frames(length, clip_len, rng)
    frames = np.arange(length, dtype=np.float32)
    return (1 - weight) * frames[lower] + weight * frames[upper]


def test_crop_resize_hand_computed():
    # Test: 10 frames keep all (int(0.05 * 10 / 2) = 0); scale 2.5, s = 0.75, 3.25, 5.75, 8.25.
    np.testing.assert_allclose(resized(10, 4), [0.75, 3.25, 5.75, 8.25])
    # 40 frames drop int(1.0000000000000009) = 1 at each end: frames 1..38, scale 9.5, s = 4.25, 13.75, ...
    np.testing.assert_allclose(resized(40, 4), [5.25, 14.75, 24.25, 33.75])
    # Short clips are stretched: 3 -> 4 frames, s = max(-0.125, 0), 0.625, 1.375, 2.125 (the last frame repeats).
    np.testing.assert_allclose(resized(3, 4), [0, 0.625, 1.375, 2])
    # Training: p = 0.6·0.5 + 0.5 = 0.8 of 200 frames = 160 at offset 7; 160 -> 4: s = 19.5, 59.5, 99.5, 139.5.
    np.testing.assert_allclose(resized(200, 4, FixedDraws(0.6, 7)), [26.5, 66.5, 106.5, 146.5])
    # The crop never goes below clip_len frames (nor above the sample): 70 · 0.5 = 35 -> 64 frames, 50 -> 50.
    assert crop_resize_frames(70, 64, FixedDraws(0.0, 6))[0][[0, -1]].tolist() == [6, 69]
    assert crop_resize_frames(50, 64, FixedDraws(0.0, 0))[1].max() == 49
    with pytest.raises(ValueError, match="at least one frame"):
        crop_resize_frames(0, 64)


@pytest.mark.parametrize("length", [1, 2, 17, 63, 64, 65, 100, 299, 300])
def test_crop_resize_is_torch_bilinear_interpolation(length):
    """What the reference calls: ``F.interpolate(..., mode='bilinear', align_corners=False)`` on the crop."""
    x = torch.randn(6, length, generator=torch.Generator().manual_seed(length))
    test_start = int(0.05 * length / 2)
    train_size = min(max(int(length * 0.65), 64), length)  # ratio 0.3·0.5 + 0.5, crop at offset 0
    for rng, crop in ((None, x[:, test_start:length - test_start]), (FixedDraws(0.3, 0), x[:, :train_size])):
        lower, upper, weight = crop_resize_frames(length, 64, rng)
        expected = F.interpolate(crop[None, None], size=(6, 64), mode="bilinear", align_corners=False)[0, 0]
        ours = (1 - weight) * x[:, lower].numpy() + weight * x[:, upper].numpy()
        np.testing.assert_allclose(ours, expected.numpy(), atol=1e-6, rtol=1e-6)


def test_dataset_crop_resize_and_motion_after_resizing(tmp_path):
    from test_modalities import random_store

    path = tmp_path / "s.zarr"
    frames, offsets = random_store(path, [40, 3, 90, 64])
    test = SkeletonDataset(path, None, modality="j+jm", clip_len=8, sampling="crop_resize", train=False)
    for i, length in enumerate([40, 3, 90, 64]):
        sample = frames[offsets[i]:offsets[i + 1]].transpose(1, 0, 2, 3)  # M, T, V, C
        lower, upper, w = crop_resize_frames(length, 8)
        joints = sample[:, lower] + w[:, None, None] * (sample[:, upper] - sample[:, lower])
        motion = np.concatenate([joints[:, 1:] - joints[:, :-1], np.zeros_like(joints[:, :1])], 1)
        clip = test[i][0]
        np.testing.assert_allclose(clip[..., :3], joints, atol=1e-6)
        np.testing.assert_allclose(clip[..., 3:], motion, atol=1e-5)
    train = SkeletonDataset(path, None, clip_len=8, sampling="crop_resize", train=True, seed=1)
    draws = {train[2][0].tobytes() for _ in range(2)} | {SkeletonDataset(
        path, None, clip_len=8, sampling="crop_resize", train=True, seed=2)[2][0].tobytes()}
    assert len(draws) == 2  # seeded per (seed, epoch, sample)
    with pytest.raises(ValueError, match="'crop_resize' gives one clip per sample"):
        SkeletonDataset(path, None, sampling="crop_resize", num_clips=2)


def test_recipe():
    r = resolve_recipe("ctrgcn", dataset="ntu120")
    assert (r.base_lr, r.batch_size, r.reference_batch_size, r.epochs, r.weight_decay) == (0.1, 64, 64, 65, 4e-4)
    assert (r.schedule, r.milestones, r.gamma, r.warmup_epochs, r.nesterov, r.momentum) == \
        ("step", (35, 55), 0.1, 5, True, 0.9)
    assert (r.sampling, r.clip_len, r.test_clips, r.rotation, r.clip_fusion) == ("crop_resize", 64, 1, 0.3, "logit")
    assert resolve_recipe("ctrgcn", overrides={"sampling": "uniform"}).sampling == "uniform"
    pyskl = resolve_recipe("ctrgcn_pyskl")
    assert (pyskl.sampling, pyskl.clip_len, pyskl.epochs, pyskl.schedule) == ("uniform", 100, 80, "cosine")


@pytest.mark.parametrize("name", SOURCES)
def test_predict_with_a_reference_checkpoint(name, tmp_path):
    """``predict --arch ... --weights``: the checkpoint loads and is tested with its recipe's clips: for ``ctrgcn``
    the 64-frame centre crop, for ``ctrgcn_pyskl`` pyskl's ten 100-frame uniform clips."""
    from test_modalities import random_store

    from skeltools.store import SkeletonStore
    from trainer.predict import predict_store, reference_predictor

    path = tmp_path / "s.zarr"
    random_store(path, [40, 90])
    store = SkeletonStore.open(path)
    shapes = {k: tuple(v.shape) for k, v in export_reference_state_dict(build_model(name, num_classes=3)).items()}
    torch.save(reference_weights(shapes), tmp_path / "ref.pt")
    predictor = reference_predictor(name, tmp_path / "ref.pt", store.attrs, device="cpu")
    got = predict_store(predictor, store, log=lambda _: None).probs
    assert got.shape == (2, 3) and not np.allclose(got[0], got[1])
    if name == "ctrgcn_pyskl":
        assert (predictor.recipe.sampling, predictor.recipe.test_clips) == ("uniform", 10)
        return
    clips = SkeletonDataset(path, None, clip_len=64, sampling="crop_resize", train=False)
    with torch.no_grad():
        expected = torch.softmax(predictor.model(torch.from_numpy(np.stack([clips[0][0], clips[1][0]]))), 1)
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-6)

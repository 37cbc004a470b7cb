"""Numba kernels against direct numpy: bones, motion, the 2D score rule, clip gathering, padding, affine."""
from __future__ import annotations

import numpy as np
import pytest

from schemas.layouts import LAYOUTS
from skeltools import kernels
from skeltools.kernels import BONE, MOTION, PairRule

# (layout, coords): every layout defined so far; the COCO layouts carry a confidence channel.
CASES = [("ntu25", "xyz"), ("coco18", "xyc"), ("coco17", "xyc"), ("coco18", "xy")]
CHANNELS = {"xyz": 3, "xy": 2, "xyc": 3}


def random_frames(lengths, joints: int, coords: str, persons: int = 2, seed: int = 0):
    """Concatenated random frames (F, M, V, C) and offsets; the second person is absent from some samples and
    from some frames of others; scores (xyc) lie in [0, 1]."""
    rng = np.random.default_rng(seed)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    x = rng.normal(size=(int(offsets[-1]), persons, joints, CHANNELS[coords])).astype(np.float32)
    if coords == "xyc":
        x[..., 2] = rng.uniform(size=x.shape[:3])
    for i, (s, e) in enumerate(zip(offsets[:-1], offsets[1:])):
        if i % 2 == 0:
            x[s:e, 1:] = 0  # a one-person sample
        elif e - s > 3:
            x[s + 1:s + 3, 1] = 0  # the second person leaves for two frames
    return x, offsets


def numpy_bones(x, parents, score: bool):
    b = x - x[:, :, list(parents)]
    if score:
        b[..., 2] = (x[..., 2] + x[:, :, list(parents), 2]) / 2
    return b


def numpy_motion(x, offsets, score: bool):
    m = np.zeros_like(x)
    for s, e in zip(offsets[:-1], offsets[1:]):
        m[s:e - 1] = x[s + 1:e] - x[s:e - 1]
        if score:
            m[s:e - 1, ..., 2] = (x[s + 1:e, ..., 2] + x[s:e - 1, ..., 2]) / 2
    return m


def rule_for(layout: str, coords: str) -> PairRule:
    return PairRule.make(LAYOUTS[layout].bone_parents, CHANNELS[coords], score=coords == "xyc")


LENGTHS = [1, 7, 130, 2, 40, 1, 9]


@pytest.mark.parametrize("parallel", [True, False])
@pytest.mark.parametrize("layout,coords", CASES)
def test_bones_match_numpy(layout, coords, parallel):
    parents = LAYOUTS[layout].bone_parents
    x, _ = random_frames(LENGTHS, len(parents), coords)
    b = kernels.bones(x, rule_for(layout, coords), parallel=parallel)
    np.testing.assert_array_equal(b, numpy_bones(x, parents, coords == "xyc"))
    roots = [v for v, p in enumerate(parents) if v == p]
    assert roots and not b[:, :, roots, :2].any()  # a self-parented joint has a zero bone ...
    if coords == "xyc":
        np.testing.assert_array_equal(b[:, :, roots, 2], x[:, :, roots, 2])  # ... and keeps its own score


@pytest.mark.parametrize("parallel", [True, False])
@pytest.mark.parametrize("layout,coords", CASES)
def test_motion_matches_numpy_inside_samples_only(layout, coords, parallel):
    x, offsets = random_frames(LENGTHS, LAYOUTS[layout].num_joints, coords)
    x += np.repeat(1000.0 * np.arange(len(LENGTHS)), LENGTHS)[:, None, None, None]  # jumps between samples
    m = kernels.motion(x, kernels.last_frames(offsets), rule_for(layout, coords), parallel=parallel)
    np.testing.assert_array_equal(m, numpy_motion(x, offsets, coords == "xyc"))
    assert not m[offsets[1:] - 1].any()  # the last frame of every sample is zero in every channel
    assert np.abs(m[..., :2]).max() < 100


def test_motion_by_blocks_with_one_frame_lookahead_equals_whole():
    x, offsets = random_frames(LENGTHS, 25, "xyz")
    rule = rule_for("ntu25", "xyz")
    whole = kernels.motion(x, kernels.last_frames(offsets), rule)
    cuts = [0, 5, 8, 64, 100, 150, len(x)]  # inside samples and on boundaries
    parts = [kernels.motion(x[s:min(e + 1, len(x))], kernels.last_frames(offsets, s, e), rule, parallel=False)
             for s, e in zip(cuts[:-1], cuts[1:])]
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    with pytest.raises(ValueError, match="followed by one more frame"):
        kernels.motion(x[10:20], kernels.last_frames(offsets, 10, 20), rule)


def test_last_frames_and_output_checks():
    offsets = np.array([0, 3, 3, 5, 9])  # an empty sample does not mark its neighbour twice
    np.testing.assert_array_equal(kernels.last_frames(offsets), [0, 0, 1, 0, 1, 0, 0, 0, 1])
    np.testing.assert_array_equal(kernels.last_frames(offsets, 2, 6), [1, 0, 1, 0])
    x = np.zeros((4, 1, 25, 3), np.float32)
    with pytest.raises(ValueError, match="float32"):
        kernels.bones(x.astype(np.float64), rule_for("ntu25", "xyz"))
    with pytest.raises(ValueError, match="out must be"):
        kernels.bones(x, rule_for("ntu25", "xyz"), out=np.zeros((3, 1, 25, 3), np.float32))


@pytest.mark.parametrize("layout,coords", CASES)
def test_absent_persons_stay_zero_in_every_modality(layout, coords):
    x, offsets = random_frames([20, 30], LAYOUTS[layout].num_joints, coords)
    rule = rule_for(layout, coords)
    b = kernels.bones(x, rule)
    last = kernels.last_frames(offsets)
    for data in (b, kernels.motion(x, last, rule), kernels.motion(b, last, rule)):
        assert not data[:20, 1].any()  # sample 0 has one person: slot 1 is zero throughout


@pytest.mark.parametrize("op", [0, BONE, MOTION, BONE | MOTION])
@pytest.mark.parametrize("layout,coords", CASES[:2])
def test_gather_clip_equals_whole_array_kernels(layout, coords, op):
    x, offsets = random_frames([13], LAYOUTS[layout].num_joints, coords)
    rule = rule_for(layout, coords)
    last = kernels.last_frames(offsets)
    full = {0: x, BONE: kernels.bones(x, rule), MOTION: kernels.motion(x, last, rule),
            BONE | MOTION: kernels.motion(kernels.bones(x, rule), last, rule)}[op]
    inds = np.array([12, 0, 5, 5, -1, 11])
    for persons in (1, 2, 3):  # truncation, as stored, padding
        out = np.full((persons, len(inds), x.shape[2], x.shape[3]), np.nan, np.float32)
        kernels.gather_clip(x, inds, op, rule, out)
        expect = np.zeros_like(out)
        keep = min(persons, 2)
        expect[:keep, inds >= 0] = full[inds[inds >= 0]].transpose(1, 0, 2, 3)[:keep]
        np.testing.assert_array_equal(out, expect)


def test_gather_clip_into_a_channel_slice():
    x, _ = random_frames([6], 25, "xyz")
    rule = rule_for("ntu25", "xyz")
    out = np.zeros((2, 6, 25, 6), np.float32)
    kernels.gather_clip(x, np.arange(6), BONE, rule, out[..., 3:])
    assert not out[..., :3].any()
    np.testing.assert_array_equal(out[..., 3:], kernels.bones(x, rule).transpose(1, 0, 2, 3))


def test_pad_indices():
    np.testing.assert_array_equal(kernels.pad_indices(3, 7, "loop"), [0, 1, 2, 0, 1, 2, 0])
    np.testing.assert_array_equal(kernels.pad_indices(3, 5, "zero"), [0, 1, 2, -1, -1])
    np.testing.assert_array_equal(kernels.pad_indices(4, 4, "zero"), [0, 1, 2, 3])
    np.testing.assert_array_equal(kernels.pad_indices(10, 4), [0, 2, 5, 7])  # longer: evenly subsampled
    with pytest.raises(ValueError, match="pad mode"):
        kernels.pad_indices(3, 5, "edge")


def test_affine_clip_transforms_present_person_frames_only():
    rng = np.random.default_rng(1)
    clip = rng.normal(size=(2, 5, 25, 6)).astype(np.float32)
    clip[1, 2:] = 0  # absent person-frames
    matrix = rng.normal(size=(3, 3))
    shift = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    expect = clip.copy()
    for g in range(2):
        expect[..., 3 * g:3 * g + 3] = clip[..., 3 * g:3 * g + 3] @ matrix.T + shift[g]
    expect[1, 2:] = 0
    kernels.affine_clip(clip, matrix, shift)
    np.testing.assert_allclose(clip, expect, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="multiple of 3"):
        kernels.affine_clip(np.zeros((1, 2, 25, 2), np.float32), matrix, shift[:1])

"""NTU presets against independent re-statements of their references, plus hand-computed cases.

The ``ref_*`` functions below follow the reference scripts step by step with plain loops, lists and dicts
(pyskl ``tools/data/ntu_preproc.py`` + ``PreNormalize3D``; CTR-GCN ``get_raw_skes_data.py`` +
``get_raw_denoised_data.py`` + ``seq_transformation.py`` in its ``(T, 150)`` row layout; MS-G3D ``read_xyz`` +
``pre_normalization`` with per-frame loops; st-gcn-style raw slots). Rotations there use the axis-angle form
``R = cos(t) I + sin(t) [k]x + (1 - cos(t)) k k^T`` instead of the package's Euler-Rodrigues form.
"""
from __future__ import annotations

import numpy as np
import pytest

from skeltools.normalize import alignment_matrix, rodrigues
from skeltools.presets import PRESETS, EmptySkeletonError, PresetResult, describe_preset, preprocess
from skeltools.readers.ntu import SkeletonFile
from skeltools.select import spread_valid

TOL = dict(rtol=1e-6, atol=1e-6)


# ----------------------------------------------------------------------------------------------------------------
# synthetic bodies and scenes


def spread_ok(joints) -> bool:
    """The references' plausibility test for one frame (float32 extents, float64 comparison)."""
    x, y = joints[:, 0], joints[:, 1]
    return float(x.max() - x.min()) <= 0.8 * float(y.max() - y.min())


def standing(rng, n, origin, sway=0.05, drift=0.0, scale=1.0):
    """``n`` frames of an upright body (tall in y, narrow in x), swaying and optionally walking along x."""
    shape = rng.uniform((-0.25, -0.8, -0.1), (0.25, 0.8, 0.1), size=(25, 3)) * scale
    t = np.arange(n, dtype=np.float64)[:, None, None]
    wave = sway * np.sin(0.3 * t + np.arange(25)[None, :, None]) * np.array([1.0, 0.5, 0.3])
    walk = drift * t * np.array([1.0, 0.0, 0.2])
    out = (shape + np.asarray(origin) + wave + walk).astype(np.float32)
    assert all(spread_ok(f) for f in out)
    return out


def lying(rng, n, origin):
    """``n`` frames of a flat blob (wide in x): spread noise in every frame."""
    shape = rng.uniform((-0.6, -0.15, -0.1), (0.6, 0.15, 0.1), size=(25, 3))
    out = (shape + np.asarray(origin) + rng.normal(0, 0.01, size=(n, 25, 3))).astype(np.float32)
    assert not any(spread_ok(f) for f in out)
    return out


def scene(n_frames, *tracks):
    """Frames from ``(body_id, frame_indices, xyz (n, 25, 3))`` tracks; in a frame, bodies follow track order."""
    frames = [[] for _ in range(n_frames)]
    for bid, where, xyz in tracks:
        where = list(where)
        assert len(where) == len(xyz)
        for f, joints in zip(where, xyz):
            frames[f].append((bid, joints))
    return frames


def motion(xyz):
    return np.var(np.concatenate(list(xyz)), axis=0).sum()


def scene_noise():
    """Two persons plus every kind of noise body."""
    rng = np.random.default_rng(1)
    b11 = standing(rng, 60, (0, 0, 3), drift=0.01)
    b12 = standing(rng, 60, (1, 0, 3.2), drift=0.03)
    b13 = standing(rng, 11, (2, 0, 3), sway=0.1, drift=0.2)  # 11 frames: length noise despite a big motion
    b14 = lying(rng, 40, (-1, -0.5, 2.5))  # flat in every frame: spread noise
    b15 = standing(rng, 30, (0.5, 0, 3.5), scale=0.8)  # a third of its frames are flat and far away
    b15[::3] = lying(rng, 10, (3.5, 0, 3.5))
    b16 = standing(rng, 12, (0, 0, 2), sway=0.01, scale=0.3)  # 12 frames: survives the length filter
    return scene(60, (11, range(60), b11), (12, range(60), b12), (14, range(5, 45), b14),
                 (13, range(10, 21), b13), (15, range(20, 50), b15), (16, range(45, 57), b16))


def scene_switch():
    """Person A changes bodyID at frame 40 (21 -> 22); person B (23) walks throughout."""
    rng = np.random.default_rng(2)
    a = standing(rng, 80, (0, 0, 3), drift=0.005)
    b = standing(rng, 80, (1, 0, 3), drift=0.03)
    return scene(80, (21, range(40), a[:40]), (23, range(80), b), (22, range(40, 80), a[40:]))


def scene_touch():
    """Bodies 31 (frames 0-39) and 32 (frames 39-79) share frame 39; 33 walks throughout."""
    rng = np.random.default_rng(3)
    return scene(80, (31, range(40), standing(rng, 40, (0, 0, 3), drift=0.02)),
                 (33, range(80), standing(rng, 80, (1, 0, 3), drift=0.03)),
                 (32, range(39, 80), standing(rng, 41, (0, 0, 3.4), drift=0.005)))


def scene_gaps():
    """3 leading, 3 interior (30-32) and 4 trailing empty frames; body 42 also vanishes in frames 20-24."""
    rng = np.random.default_rng(4)
    f41 = list(range(3, 30)) + list(range(33, 60))
    f42 = list(range(3, 20)) + list(range(25, 30)) + list(range(33, 60))
    return scene(64, (41, f41, standing(rng, len(f41), (0, 0, 3), drift=0.02)),
                 (42, f42, standing(rng, len(f42), (1, 0, 3), drift=0.01)))


def scene_interior():
    """Frame 0 non-empty, then an interior gap (frames 10-14) for both and trailing empty frames."""
    rng = np.random.default_rng(5)
    where = list(range(10)) + list(range(15, 40))
    return scene(45, (51, where, standing(rng, 35, (0, 0, 3), drift=0.02)),
                 (52, where, standing(rng, 35, (1, 0, 3))))


def scene_one():
    rng = np.random.default_rng(6)
    return scene(52, (61, range(2, 52), standing(rng, 50, (0.3, 0.1, 2.8), drift=0.01)))


def scene_crowd():
    """Six bodies in every frame; the body in slot 4 moves the most but MS-G3D never reads slot 4."""
    rng = np.random.default_rng(7)
    tracks = [(70 + k, range(30), standing(rng, 30, (k - 2.5, 0, 3), drift=0.01 * (k + 1))) for k in range(6)]
    tracks[4] = (74, range(30), standing(rng, 30, (0, 0, 3), sway=0.1, drift=0.3))
    return scene(30, *tracks)


def scene_swap():
    """Main body 81 starts at frame 20, body 82 covers frames 0-29: offline swap, online reorder, dropped frames."""
    rng = np.random.default_rng(8)
    return scene(60, (82, range(30), standing(rng, 30, (1, 0, 3))),
                 (81, range(20, 60), standing(rng, 40, (0, 0, 3), drift=0.05)))


def scene_gap_noise():
    """One person whose bodyID changes across a 5-frame gap (20-24) in which only a short noise body is seen."""
    rng = np.random.default_rng(20)
    xyz = standing(rng, 45, (0, 0, 3), drift=0.02)
    return scene(50, (1, range(20), xyz[:20]), (9, range(20, 25), standing(rng, 5, (2, 0, 4))),
                 (2, range(25, 50), xyz[20:]))


def scene_spread_rates():
    """Two persons; body 5 is flat in 21 of 30 frames (70 % >= 69.754 %: noise), body 6 in 20 (67 %: kept)."""
    rng = np.random.default_rng(21)
    b5 = standing(rng, 30, (0.5, 0, 3.5), drift=0.01)
    b5[:21] = lying(rng, 21, (0.5, 0, 3.5))
    b6 = standing(rng, 30, (-0.5, 0, 3.5), drift=0.01)
    b6[::3] = lying(rng, 10, (-0.5, 0, 3.5))
    b6[1::3][:10] = lying(rng, 10, (-0.5, 0, 3.5))
    return scene(40, (3, range(40), standing(rng, 40, (0, 0, 3), drift=0.02)), (5, range(5, 35), b5),
                 (6, range(5, 35), b6), (4, range(40), standing(rng, 40, (1, 0, 3), drift=0.03)))


def scene_random():
    """A generic two-person scene (non-perpendicular shoulders) for the rotation presets."""
    rng = np.random.default_rng(9)
    a = standing(rng, 70, (0.2, -0.1, 3), drift=0.02)
    b = standing(rng, 55, (1, 0.1, 3.3))
    return scene(70, (91, range(70), a), (92, range(10, 65), b))


SCENES = {
    "noise": scene_noise, "switch": scene_switch, "touch": scene_touch, "gaps": scene_gaps,
    "interior": scene_interior, "one": scene_one, "crowd": scene_crowd, "swap": scene_swap,
    "random": scene_random, "gap_noise": scene_gap_noise, "spread_rates": scene_spread_rates,
}


def run(frames, preset, **kw) -> PresetResult:
    skel = SkeletonFile.from_frames(frames)
    before = skel.xyz.copy()
    out = preprocess(skel, preset, **kw)
    np.testing.assert_array_equal(skel.xyz, before)  # the input is never modified
    assert out.data.dtype == np.float32 and out.data.ndim == 4 and out.data.shape[2:] == (25, 3)
    assert out.data.flags.c_contiguous
    return out


# ----------------------------------------------------------------------------------------------------------------
# independent reference re-statements


def ref_rotation(v, target):
    """Rotation taking ``v`` onto ``target`` with the references' zero thresholds (axis-angle form)."""
    target = np.asarray(target, np.float64)
    if np.abs(v).sum() < 1e-6:
        return np.eye(3)
    unit = v / np.linalg.norm(v)
    theta = np.arccos(np.clip(np.dot(unit.astype(np.float64), target), -1.0, 1.0))
    k = np.cross(v.astype(np.float64), target)
    if np.abs(k).sum() < 1e-6 or abs(theta) < 1e-6:
        return np.eye(3)
    k = k / np.linalg.norm(k)
    cross = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.cos(theta) * np.eye(3) + np.sin(theta) * cross + (1 - np.cos(theta)) * np.outer(k, k)


class ReferenceFailed(Exception):
    """Where the reference script would crash or return nothing."""


def ref_pyskl(frames, align_spine=False):
    bodies = {}
    fidx = 0
    for here in frames:
        if not here:
            continue
        for bid, xyz in here:
            bodies.setdefault(bid, {"start": fidx, "kpt": []})["kpt"].append(np.array(xyz, np.float32))
        fidx += 1
    if not bodies:
        raise ReferenceFailed("None")
    items = [{"start": b["start"], "kpt": np.stack(b["kpt"]), "motion": motion(b["kpt"])} for b in bodies.values()]
    items.sort(key=lambda it: -it["motion"])
    if len(items) > 1:
        items = [it for it in items if len(it["kpt"]) > 11]
        if len(items) > 1:
            kept = []
            for it in items:
                good = [k for k in range(len(it["kpt"])) if spread_ok(it["kpt"][k])]
                if len(good) < len(it["kpt"]):
                    if 1 - len(good) / len(it["kpt"]) >= 0.69754:
                        continue
                    it["motion"] = min(it["motion"], np.var(it["kpt"][good].reshape(-1, 3), axis=0).sum())
                kept.append(it)
            items = sorted(kept, key=lambda it: -it["motion"])
        if not items:
            raise ReferenceFailed("assert")
    if len(items) == 1:
        kp = items[0]["kpt"][None]
    else:
        kp = np.zeros((2, max(it["start"] + len(it["kpt"]) for it in items), 25, 3), np.float32)
        first = items[0]
        kp[0, first["start"]:first["start"] + len(first["kpt"])] = first["kpt"]
        spans = [[first["start"], first["start"] + len(first["kpt"])], [0, 0]]
        for it in items[1:]:
            s, e = it["start"], it["start"] + len(it["kpt"])
            for slot in range(2):
                lo, hi = spans[slot]
                if max(lo, s) >= min(hi, e):
                    kp[slot, s:e] = it["kpt"]
                    spans[slot] = [min(s, lo), max(e, hi)]
                    break
        first, last = 0, kp.shape[1] - 1
        while np.abs(kp[:, first]).sum() < 1e-3:
            first += 1
        while np.abs(kp[:, last]).sum() < 1e-3:
            last -= 1
        kp = kp[:, first:last + 1]
        if np.abs(kp[0, 0, 1]).sum() < 1e-3 and np.abs(kp[1, 0, 1]).sum() > 1e-3:
            kp = kp[::-1]
    return ref_prenormalize(kp, align_spine)


def ref_prenormalize(kp, align_spine):
    if kp.sum() == 0:
        return kp
    shown = [[t for t in range(kp.shape[1]) if not np.all(np.isclose(kp[p, t], 0))] for p in range(len(kp))]
    if len(kp) == 2 and len(shown[0]) < len(shown[1]):
        kp = kp[[1, 0]][:, shown[1]]
    else:
        kp = kp[:, shown[0]]
    center = kp[0, 0, 1].copy()
    out = np.zeros_like(kp)
    for p in range(len(kp)):
        for t in range(kp.shape[1]):
            for v in range(25):
                if np.any(kp[p, t, v] != 0):
                    out[p, t, v] = kp[p, t, v] - center
    if align_spine:
        r = ref_rotation(out[0, 0, 1] - out[0, 0, 0], (0, 0, 1))
        out = np.einsum("kd,ptvd->ptvk", r, out.astype(np.float64))
        r = ref_rotation(out[0, 0, 8] - out[0, 0, 4], (1, 0, 0))
        out = np.einsum("kd,ptvd->ptvk", r, out).astype(np.float32)
    if len(out) == 1:
        out = np.concatenate([out, np.zeros_like(out)])
    return out.transpose(1, 0, 2, 3)


def ref_ctrgcn(frames, dataset):
    bodies = {}
    n = 0
    for here in frames:
        if not here:
            continue
        for bid, xyz in here:
            if bid in bodies:
                bodies[bid]["joints"].append(np.array(xyz, np.float32))
                bodies[bid]["interval"].append(bodies[bid]["interval"][-1] + 1)
            else:
                bodies[bid] = {"joints": [np.array(xyz, np.float32)], "interval": [n]}
        n += 1
    if n == 0:
        raise ReferenceFailed("assert")

    def put(rows, col, b):
        rows[b["interval"][0]:b["interval"][-1] + 1, col:col + 75] = np.stack(b["joints"]).reshape(-1, 75)

    if len(bodies) == 1:
        rows = np.zeros((n, 75), np.float32)
        put(rows, 0, next(iter(bodies.values())))
    else:
        for b in bodies.values():
            b["motion"] = motion(b["joints"])
        alive = {bid: b for bid, b in bodies.items() if len(b["interval"]) > 11}
        if not alive:
            raise ReferenceFailed("IndexError")
        if len(alive) > 1:
            for bid in list(alive):
                if len(alive) == 1:
                    break
                b = alive[bid]
                good = [k for k, j in enumerate(b["joints"]) if spread_ok(j)]
                noise = len(b["joints"]) - len(good)
                if noise and noise / len(b["joints"]) >= 0.69754:
                    del alive[bid]
                elif noise:
                    b["motion"] = min(b["motion"], np.var(np.stack(b["joints"])[good].reshape(-1, 3), axis=0).sum())
        if len(alive) == 1:
            rows = np.zeros((n, 75), np.float32)
            put(rows, 0, next(iter(alive.values())))
        else:
            order = sorted(alive.values(), key=lambda b: b["motion"], reverse=True)
            rows = np.zeros((n, 150), np.float32)
            put(rows, 0, order[0])
            spans = [[order[0]["interval"][0], order[0]["interval"][-1]], [0, 0]]
            for b in order[1:]:
                s, e = b["interval"][0], b["interval"][-1]
                for actor in (0, 1):
                    if min(spans[actor][1], e) - max(spans[actor][0], s) <= 0:
                        put(rows, 75 * actor, b)
                        spans[actor] = [min(s, spans[actor][0]), max(e, spans[actor][1])]
                        break
        rows = rows[rows.sum(axis=1) != 0]
    two = rows.shape[1] == 150
    if two:
        miss1, miss2 = rows[:, :75].sum(axis=1) == 0, rows[:, 75:].sum(axis=1) == 0
    i = 0
    while not np.any(rows[i, :75] != 0):
        i += 1
    rows = rows - np.tile(rows[i, 3:6].copy(), rows.shape[1] // 3)
    if two:
        rows[miss1, :75] = 0
        rows[miss2, 75:] = 0
    else:
        rows = np.hstack([rows, rows if dataset == "ntu120" else np.zeros_like(rows)])
    return rows.reshape(len(rows), 2, 25, 3)


def ref_msg3d(frames):
    n = len(frames)
    raw = np.zeros((4, n, 25, 3))
    for t, here in enumerate(frames):
        for m, (_, xyz) in enumerate(here):
            if m < 4:
                raw[m, t] = xyz

    def energy(body):
        live = np.array([f for f in body if f.sum() != 0])
        return 0.0 if len(live) == 0 else sum(live[:, :, c].std() for c in range(3))

    scores = [energy(raw[m]) for m in range(4)]
    ranked = sorted(range(4), key=lambda m: scores[m])[::-1][:2]
    length = max(300, n)
    s = np.zeros((2, length, 25, 3), np.float32)
    s[:, :n] = raw[ranked]
    for p in range(2):
        if s[p].sum() == 0:
            continue
        if s[p, 0].sum() == 0:
            live = [s[p, t].copy() for t in range(length) if s[p, t].sum() != 0]
            s[p] = 0
            for k, f in enumerate(live):
                s[p, k] = f
        for t in range(length):
            if s[p, t].sum() == 0 and s[p, t:].sum() == 0:
                for k in range(t, length):
                    s[p, k] = s[p, k % t]
                break
    if s.sum() != 0:
        center = s[0, :, 1].copy()
        for p in range(2):
            if s[p].sum() == 0:
                continue
            for t in range(length):
                keep = s[p, t].sum(-1) != 0
                s[p, t] = np.where(keep[:, None], s[p, t] - center[t], 0)
    for top, bottom, target in ((1, 0, (0, 0, 1)), (8, 4, (1, 0, 0))):
        if s.sum() == 0:
            continue
        r = ref_rotation(s[0, 0, top] - s[0, 0, bottom], target)
        for p in range(2):
            if s[p].sum() == 0:
                continue
            for t in range(length):
                if s[p, t].sum() != 0:
                    s[p, t] = (r @ s[p, t].astype(np.float64).T).T
    return s.transpose(1, 0, 2, 3)


def ref_none(frames):
    out = np.zeros((len(frames), 2, 25, 3), np.float32)
    for t, here in enumerate(frames):
        for m, (_, xyz) in enumerate(here[:2]):
            out[t, m] = xyz
    return out


# ----------------------------------------------------------------------------------------------------------------
# every scene, every preset, against the re-statements


@pytest.mark.parametrize("name", sorted(SCENES))
def test_pyskl_matches_reference(name):
    frames = SCENES[name]()
    out = run(frames, "pyskl")
    np.testing.assert_array_equal(out.data, ref_pyskl(frames))
    assert out.n_persons == int(np.any(out.data != 0, axis=(0, 2, 3)).sum())


@pytest.mark.parametrize("name", sorted(SCENES))
def test_pyskl_align_spine_matches_reference(name):
    frames = SCENES[name]()
    np.testing.assert_allclose(run(frames, "pyskl", align_spine=True).data, ref_pyskl(frames, True), **TOL)


@pytest.mark.parametrize("dataset", ["ntu60", "ntu120"])
@pytest.mark.parametrize("name", sorted(SCENES))
def test_ctrgcn_matches_reference(name, dataset):
    frames = SCENES[name]()
    np.testing.assert_array_equal(run(frames, "ctrgcn", dataset=dataset).data, ref_ctrgcn(frames, dataset))


@pytest.mark.parametrize("name", sorted(SCENES))
def test_msg3d_matches_reference(name):
    frames = SCENES[name]()
    out = run(frames, "msg3d")
    assert out.data.shape == (300, 2, 25, 3)
    np.testing.assert_allclose(out.data, ref_msg3d(frames), **TOL)


@pytest.mark.parametrize("name", sorted(SCENES))
def test_none_matches_reference(name):
    frames = SCENES[name]()
    np.testing.assert_array_equal(run(frames, "none").data, ref_none(frames))


# ----------------------------------------------------------------------------------------------------------------
# hand-checked behaviour of the tricky cases


def tracks_of(frames):
    """body_id -> (frame indices, xyz (n, 25, 3)) as laid out in the scene."""
    out = {}
    for f, here in enumerate(frames):
        for bid, xyz in here:
            out.setdefault(bid, ([], []))
            out[bid][0].append(f)
            out[bid][1].append(xyz)
    return {bid: (w, np.stack(x)) for bid, (w, x) in out.items()}


def test_noise_bodies_are_removed_and_spread_updates_the_motion():
    frames = scene_noise()
    b = tracks_of(frames)
    # the scene relies on: body 15 outranks 12 on raw motion, but not on the motion of its valid frames
    valid15 = np.array([spread_ok(f) for f in b[15][1]])
    assert motion(b[15][1]) > motion(b[12][1]) > motion(b[11][1]) > np.var(
        b[15][1][valid15].reshape(-1, 3), axis=0).sum()
    for preset in ("pyskl", "ctrgcn"):
        out = run(frames, preset)
        assert out.data.shape == (60, 2, 25, 3) and out.n_persons == 2
        origin = b[12][1][0, 1]  # person 0 is body 12 (largest motion once 15 is corrected)
        np.testing.assert_array_equal(out.data[:, 0], b[12][1] - origin)
        np.testing.assert_array_equal(out.data[:, 1], b[11][1] - origin)
        assert "1 noise bodies removed (<= 11 frames)" in out.notes  # body 13 (11 frames); 16 (12) survives
        assert "1 noise bodies removed (spread)" in out.notes  # body 14
        assert "2 bodies dropped (they overlap both persons)" in out.notes or \
            "2 bodies dropped (they overlap both actors)" in out.notes  # 15 and 16


def test_frames_with_only_noise_bodies_are_removed():
    frames = scene_gap_noise()
    b = tracks_of(frames)
    stitched = np.concatenate([b[1][1], b[2][1]])
    ctr, pys = run(frames, "ctrgcn"), run(frames, "pyskl")
    assert "5 frames without any actor removed" in ctr.notes
    assert "dropped 5 frames without the main person" in pys.notes
    for out in (ctr, pys):
        assert out.data.shape == (45, 2, 25, 3) and out.n_persons == 1
        np.testing.assert_array_equal(out.data[:, 0], stitched - stitched[0, 1])
    assert run(frames, "none").data.shape == (50, 2, 25, 3)


def test_spread_noise_rate_threshold():
    frames = scene_spread_rates()
    b = tracks_of(frames)
    assert sum(not spread_ok(f) for f in b[5][1]) == 21 and sum(not spread_ok(f) for f in b[6][1]) == 20
    for preset in ("pyskl", "ctrgcn"):
        out = run(frames, preset)
        assert "1 noise bodies removed (spread)" in out.notes, preset  # body 5 only


def test_spread_test_runs_in_float64_like_numpy1():
    # x-extent float32(0.8) against y-extent 1.0: 0.800000011920929 > 0.8 (float64) -> a noisy frame, although
    # a float32 product 0.8f * 1.0 would call it valid; an exact tie (1.0 vs 0.8 * 1.25) is valid
    frame = np.zeros((2, 25, 3), np.float32)
    frame[0, 1, 0], frame[0, 1, 1] = np.float32(0.8), 1.0
    frame[1, 1, 0], frame[1, 1, 1] = 1.0, 1.25
    np.testing.assert_array_equal(spread_valid(frame), [False, True])
    assert [spread_ok(f) for f in frame] == [False, True]


def test_bodyid_listed_twice_in_a_frame():
    # both bodyID references pack the extra appearance; CTR-GCN then runs one row past the last frame and fails
    rng = np.random.default_rng(22)
    xyz = standing(rng, 21, (0, 0, 3), drift=0.01)
    frames = scene(20, (1, range(20), xyz[:20]))
    frames[5].append((1, xyz[20]))
    packed = np.concatenate([xyz[:6], xyz[20:], xyz[6:20]])
    out = run(frames, "ctrgcn")
    assert any("listed twice" in n for n in out.notes)
    np.testing.assert_array_equal(out.data[:, 0], packed[:20] - packed[0, 1])
    np.testing.assert_array_equal(run(frames, "pyskl").data[:, 0], packed - packed[0, 1])  # 21 frames


def test_bodyid_switch_is_merged_into_one_person():
    frames = scene_switch()
    b = tracks_of(frames)
    stitched = np.concatenate([b[21][1], b[22][1]])
    for preset in ("pyskl", "ctrgcn"):
        out = run(frames, preset)
        origin = b[23][1][0, 1]
        assert out.data.shape == (80, 2, 25, 3) and out.n_persons == 2
        np.testing.assert_array_equal(out.data[:, 0], b[23][1] - origin)
        np.testing.assert_array_equal(out.data[:, 1], stitched - origin)


def test_touching_intervals_inclusive_vs_exclusive_ends():
    frames = scene_touch()
    b = tracks_of(frames)
    assert motion(b[33][1]) > motion(b[31][1]) > motion(b[32][1])
    origin = b[33][1][0, 1]
    # CTR-GCN: inclusive [0, 39] and [39, 79] "do not overlap" (min(ends) - max(starts) = 0 <= 0), so body 32
    # joins body 31's actor and overwrites their shared frame 39
    ctr = run(frames, "ctrgcn")
    assert not any("dropped" in n for n in ctr.notes)
    np.testing.assert_array_equal(ctr.data[:39, 1], b[31][1][:39] - origin)
    np.testing.assert_array_equal(ctr.data[39:, 1], b[32][1] - origin)
    # pyskl: exclusive [0, 40) and [39, 80) overlap (max(starts) = 39 < min(ends) = 40): body 32 is dropped
    out = run(frames, "pyskl")
    assert "1 bodies dropped (they overlap both persons)" in out.notes
    np.testing.assert_array_equal(out.data[:40, 1], b[31][1] - origin)
    assert not out.data[40:, 1].any()


def test_second_slot_starts_from_a_virtual_zero_interval():
    # the second person's interval starts as [0, 0] and grows by union, so once body 32 (frames 40-79) takes
    # it, it spans [0, 80): body 31 (frames 0-29), which never meets 32, is dropped by both references
    rng = np.random.default_rng(19)
    frames = scene(80, (31, range(30), standing(rng, 30, (0, 0, 3), drift=0.005)),
                   (33, range(80), standing(rng, 80, (1, 0, 3), drift=0.03)),
                   (32, range(40, 80), standing(rng, 40, (0, 0, 3.3), drift=0.02)))
    b = tracks_of(frames)
    assert motion(b[33][1]) > motion(b[32][1]) > motion(b[31][1])
    for preset in ("pyskl", "ctrgcn"):
        out = run(frames, preset)
        assert any("1 bodies dropped" in n for n in out.notes), preset
        assert not out.data[:40, 1].any()
        np.testing.assert_array_equal(out.data[40:, 1], b[32][1] - b[33][1][0, 1])


def test_exactly_touching_intervals_are_merged_by_both():
    rng = np.random.default_rng(10)
    frames = scene(50, (1, range(25), standing(rng, 25, (0, 0, 3), drift=0.02)),
                   (3, range(50), standing(rng, 50, (1, 0, 3), drift=0.04)),
                   (2, range(25, 50), standing(rng, 25, (0, 0, 3.3), drift=0.01)))
    b = tracks_of(frames)
    assert motion(b[3][1]) > motion(b[1][1]) > motion(b[2][1])
    for preset in ("pyskl", "ctrgcn"):
        out = run(frames, preset)
        assert out.n_persons == 2 and (np.abs(out.data[:, 1]).sum(axis=(1, 2)) > 0).all(), preset


def test_empty_frames_leading_interior_trailing():
    frames = scene_gaps()
    b = tracks_of(frames)
    # pyskl and CTR-GCN drop the 10 empty frames; body 42 is packed from its first frame (both references
    # assume a bodyID is contiguous), so its frames after the gap move 5 frames earlier
    assert motion(b[41][1]) > motion(b[42][1])
    for preset in ("pyskl", "ctrgcn"):
        data = run(frames, preset).data
        assert data.shape == (54, 2, 25, 3)
        origin = b[41][1][0, 1]
        np.testing.assert_array_equal(data[:, 0], b[41][1] - origin)
        np.testing.assert_array_equal(data[:49, 1], b[42][1] - origin)
        assert not data[49:, 1].any()
    # none keeps the header's 64 frames, empty ones as zeros
    data = run(frames, "none").data
    assert data.shape == (64, 2, 25, 3)
    assert not data[:3].any() and not data[30:33].any() and not data[60:].any()
    # msg3d: frame 0 is empty, so every person is squeezed (gaps vanish) and loop-padded from its length
    out = run(frames, "msg3d")
    assert "person 0: 6 leading/interior null frames squeezed out" in out.notes
    assert "person 1: 11 leading/interior null frames squeezed out" in out.notes  # 42 leaves slot 1 in 20-24
    data = out.data
    assert (np.abs(data).sum(axis=(2, 3)) > 0).all()  # no gap left for either person
    # person 0 (slot 0 = body 41, 54 frames) repeats with period 54, centring and rotation included
    for k in range(54, 300):
        np.testing.assert_array_equal(data[k, 0], data[k % 54, 0])


def test_msg3d_interior_gaps_stay_zero_when_frame0_is_present():
    frames = scene_interior()
    data = run(frames, "msg3d").data
    live = np.abs(data).sum(axis=(2, 3)) > 0  # (T, M)
    assert live[:10].all() and not live[10:15].any() and live[15:40].all()
    # loop padding from frame 40 repeats frames [0, 40), gaps included
    for k in range(40, 300):
        np.testing.assert_array_equal(data[k], data[k % 40])
    # per-frame centring: person 0's joint 1 is the origin in every live frame, also in padded ones
    assert not data[live[:, 0], 0, 1].any()


def test_msg3d_loop_padding_values():
    rng = np.random.default_rng(11)
    xyz = standing(rng, 7, (0, 0, 3), drift=0.02)
    data = run(scene(7, (1, range(7), xyz)), "msg3d").data
    assert data.shape == (300, 2, 25, 3)
    np.testing.assert_array_equal(data[7:14], data[:7])
    np.testing.assert_array_equal(data[294:], data[:6])
    assert not data[:, 1].any()


def test_msg3d_longer_than_300_keeps_every_frame():
    rng = np.random.default_rng(12)
    frames = scene(320, (1, range(320), standing(rng, 320, (0, 0, 3), drift=0.001)))
    out = run(frames, "msg3d")
    assert out.data.shape == (320, 2, 25, 3)
    assert any("320 frames > 300" in n for n in out.notes)
    np.testing.assert_allclose(out.data, ref_msg3d(frames), **TOL)


def test_msg3d_reads_only_four_slots():
    frames = scene_crowd()
    b = tracks_of(frames)
    out = run(frames, "msg3d")
    assert "60 body-frames beyond the first 4 of their frame ignored" in out.notes
    # top 2 by energy among slots 0-3 are slots 3 and 2 (drift grows with the slot); slot 4 would win
    energies = {k: sum(b[70 + k][1][:, :, c].astype(np.float64).std() for c in range(3)) for k in range(6)}
    assert energies[4] == max(energies.values()) and energies[3] > energies[2] > max(energies[0], energies[1])
    # the kept persons are the bodies of slots 3 and 2: after per-frame centring, person 1 = body 2 - body 3's
    # spine joint (before rotation), so compare shapes through inter-joint distances, which rotations keep
    d = out.data[:30]
    for person, bid in ((0, 73), (1, 72)):
        dist = np.linalg.norm(d[:, person, 3] - d[:, person, 10], axis=-1)
        raw = np.linalg.norm(b[bid][1][:, 3] - b[bid][1][:, 10], axis=-1)
        np.testing.assert_allclose(dist, raw, rtol=1e-5)
    # none takes slots 0 and 1; pyskl and ctrgcn follow bodyIDs (the slot-4 body has the largest motion)
    np.testing.assert_array_equal(run(frames, "none").data[:, 1], b[71][1])
    for preset in ("pyskl", "ctrgcn"):
        np.testing.assert_array_equal(run(frames, preset).data[:, 0], b[74][1] - b[74][1][0, 1])


def test_msg3d_energy_tie_prefers_the_later_slot():
    # body B mirrors body A in x: identical per-axis std (an exact tie); NumPy 1.x's stable insertion sort
    # reversed puts slot 1 first
    a = (np.random.default_rng(13).integers(-16, 16, size=(20, 25, 3)) / 16 + [0, 0, 3]).astype(np.float32)
    a[:, :, 1] *= 4
    b = a * np.array([-1, 1, 1], np.float32)
    frames = scene(20, (1, range(20), a), (2, range(20), b))
    data = run(frames, "msg3d").data
    np.testing.assert_allclose(data, ref_msg3d(frames), **TOL)
    swapped = ref_msg3d(scene(20, (2, range(20), b), (1, range(20), a)))
    assert not np.allclose(data, swapped)


def test_one_person_ctrgcn_second_actor_rule():
    frames = scene_one()
    xyz = tracks_of(frames)[61][1]
    expected = xyz - xyz[0, 1]
    ntu60 = run(frames, "ctrgcn", dataset="ntu60")
    ntu120 = run(frames, "ctrgcn", dataset="ntu120")
    assert ntu60.data.shape == ntu120.data.shape == (50, 2, 25, 3)
    np.testing.assert_array_equal(ntu60.data[:, 0], expected)
    assert not ntu60.data[:, 1].any()
    np.testing.assert_array_equal(ntu120.data[:, 1], expected)
    assert ntu60.n_persons == ntu120.n_persons == 1
    assert any("duplicates" in n for n in ntu120.notes)
    # the other presets never copy
    for preset in ("pyskl", "msg3d", "none"):
        assert not run(frames, preset, dataset="ntu120").data[:, 1].any()


def test_ctrgcn_ntu120_keeps_an_empty_second_slot_after_a_bodyid_switch():
    rng = np.random.default_rng(14)
    xyz = standing(rng, 60, (0, 0, 3), drift=0.02)
    frames = scene(60, (1, range(30), xyz[:30]), (2, range(30, 60), xyz[30:]))
    out = run(frames, "ctrgcn", dataset="ntu120")  # two bodyIDs -> the two-actor layout: no duplication
    np.testing.assert_array_equal(out.data[:, 0], xyz - xyz[0, 1])
    assert not out.data[:, 1].any() and out.n_persons == 1


def test_pyskl_offline_swap_online_reorder_and_frame_drop():
    frames = scene_swap()
    b = tracks_of(frames)
    assert motion(b[81][1]) > motion(b[82][1])
    out = run(frames, "pyskl")
    assert "persons swapped (person 0 absent from the first frame)" in out.notes
    assert "main person reordered (person 1 has more frames)" in out.notes
    assert "dropped 20 frames without the main person" in out.notes
    assert out.data.shape == (40, 2, 25, 3) and out.n_persons == 2
    origin = b[81][1][0, 1]
    np.testing.assert_array_equal(out.data[:, 0], b[81][1] - origin)
    np.testing.assert_array_equal(out.data[:10, 1], b[82][1][20:] - origin)
    assert not out.data[10:, 1].any()


def test_pyskl_keeps_zero_joints_at_zero():
    rng = np.random.default_rng(15)
    xyz = standing(rng, 20, (0, 0, 3))
    xyz[5, 7] = 0  # an untracked joint
    out = run(scene(20, (1, range(20), xyz)), "pyskl")
    assert not out.data[5, 0, 7].any()
    np.testing.assert_array_equal(out.data[6, 0, 7], xyz[6, 7] - xyz[0, 1])


def perpendicular_body():
    """A single-frame-0 body whose spine (0 -> 1) is perpendicular to its shoulders (4 -> 8)."""
    rng = np.random.default_rng(16)
    xyz = standing(rng, 30, (0.4, 0.2, 3), drift=0.01)
    spine = np.array([0.1, 0.35, -0.2])
    across = np.cross(spine, [0.3, -0.2, 0.9])
    across *= 0.35 / np.linalg.norm(across)
    xyz[0, 1] = xyz[0, 0] + spine
    xyz[0, 4] = xyz[0, 20] - across / 2
    xyz[0, 8] = xyz[0, 20] + across / 2
    return scene(30, (1, range(30), xyz))


@pytest.mark.parametrize("preset,kw", [("msg3d", {}), ("pyskl", {"align_spine": True})])
def test_rotation_puts_spine_on_z_and_shoulders_on_x(preset, kw):
    frames = perpendicular_body()
    data = run(frames, preset, **kw).data
    spine = data[0, 0, 1] - data[0, 0, 0]
    shoulders = data[0, 0, 8] - data[0, 0, 4]
    np.testing.assert_allclose(spine / np.linalg.norm(spine), [0, 0, 1], atol=2e-6)
    np.testing.assert_allclose(shoulders / np.linalg.norm(shoulders), [1, 0, 0], atol=2e-6)
    # rotations keep every bone length
    raw = tracks_of(frames)[1][1]
    np.testing.assert_allclose(np.linalg.norm(data[:30, 0, 3] - data[:30, 0, 12], axis=-1),
                               np.linalg.norm(raw[:, 3] - raw[:, 12], axis=-1), rtol=1e-5)
    # pyskl without align_spine only translates
    plain = run(frames, "pyskl").data
    np.testing.assert_array_equal(plain[:, 0], raw - raw[0, 1])


def test_rotation_helpers():
    v = np.array([0.2, -0.5, 0.7], np.float32)
    for target in (np.array([0.0, 0, 1]), np.array([1.0, 0, 0])):
        got = alignment_matrix(v, target) @ v.astype(np.float64)
        np.testing.assert_allclose(got / np.linalg.norm(got), target, atol=1e-7)
        np.testing.assert_allclose(alignment_matrix(v, target), ref_rotation(v, target), atol=1e-12)
    # the references' quirks: an exactly opposite vector (zero cross product) or a tiny angle is not rotated
    np.testing.assert_array_equal(alignment_matrix(np.array([0, 0, -0.3], np.float32), np.array([0.0, 0, 1])),
                                  np.eye(3))
    np.testing.assert_array_equal(rodrigues([0, 0, 1], 5e-7), np.eye(3))
    r = rodrigues([0, 0, 2], np.pi / 2)  # counter-clockwise about +z: x -> y
    np.testing.assert_allclose(r @ [1, 0, 0], [0, 1, 0], atol=1e-15)


# ----------------------------------------------------------------------------------------------------------------
# nothing to keep, differing failure points, API


@pytest.mark.parametrize("preset", PRESETS)
def test_all_empty_and_zero_frame_files_raise(preset):
    with pytest.raises(EmptySkeletonError, match="empty"):
        preprocess(SkeletonFile.from_frames([[] for _ in range(71)]), preset)
    with pytest.raises(EmptySkeletonError, match="0 frames"):
        preprocess(SkeletonFile.from_frames([]), preset)
    assert issubclass(EmptySkeletonError, ValueError)


def test_short_bodies_only():
    rng = np.random.default_rng(17)
    frames = scene(20, (1, range(10), standing(rng, 10, (0, 0, 3))), (2, range(10, 20), standing(rng, 10, (1, 0, 3))))
    for preset in ("pyskl", "ctrgcn"):  # both references fail here; we raise a clear error instead
        with pytest.raises(EmptySkeletonError, match="<= 11 frames"):
            preprocess(SkeletonFile.from_frames(frames), preset)
        with pytest.raises(ReferenceFailed):
            (ref_pyskl if preset == "pyskl" else lambda f: ref_ctrgcn(f, "ntu60"))(frames)
    assert run(frames, "msg3d").n_persons == 1 and run(frames, "none").data.shape == (20, 2, 25, 3)
    # a single short bodyID is kept by everyone (no denoising for one body)
    assert run(scene(5, (1, range(5), standing(rng, 5, (0, 0, 3)))), "pyskl").data.shape == (5, 2, 25, 3)


def test_spread_denoising_stops_at_one_body_in_ctrgcn_only():
    rng = np.random.default_rng(18)
    frames = scene(30, (1, range(30), lying(rng, 30, (0, 0, 3))), (2, range(30), lying(rng, 30, (1, 0, 3))))
    with pytest.raises(EmptySkeletonError, match="spread"):  # pyskl asserts: every body is spread noise
        preprocess(SkeletonFile.from_frames(frames), "pyskl")
    out = run(frames, "ctrgcn")  # CTR-GCN deletes body 1, then stops with body 2 left, noisy as it is
    b2 = tracks_of(frames)[2][1]
    np.testing.assert_array_equal(out.data[:, 0], b2 - b2[0, 1])
    np.testing.assert_array_equal(out.data, ref_ctrgcn(frames, "ntu60"))


def test_max_persons_and_api():
    frames = scene_crowd()
    for preset in PRESETS:
        out = run(frames, preset, max_persons=3)
        assert out.data.shape[1] == 3 and 0 <= out.n_persons <= 3
        assert isinstance(out.notes, tuple)
        one = run(frames, preset, max_persons=1)
        assert one.data.shape[1] == 1 and one.n_persons == 1
    assert run(frames, "msg3d", max_persons=3).n_persons == 3
    assert run(frames, "pyskl", max_persons=3).n_persons == 2
    with pytest.raises(ValueError, match="unknown preset"):
        preprocess(SkeletonFile.from_frames(frames), "stgcn")
    with pytest.raises(ValueError, match="unknown dataset"):
        preprocess(SkeletonFile.from_frames(frames), "ctrgcn", dataset="kinetics")
    assert describe_preset("ctrgcn", dataset="ntu120")["missing_persons"] == "copy of the actor"
    assert describe_preset("pyskl", align_spine=True)["align_spine"] is True


# ----------------------------------------------------------------------------------------------------------------
# genuine NTU files (skipped when ../shared/fixtures is absent)


def read_text_frames(path):
    """A plain text parse of a ``.skeleton`` file into frames of ``(bodyID, xyz float32 (25, 3))``."""
    lines = [ln.strip() for ln in path.read_text().splitlines()]
    i, frames = 1, []
    for _ in range(int(lines[0])):
        count, i = int(lines[i]), i + 1
        here = []
        for _ in range(count):
            bid, joints = int(lines[i].split()[0]), int(lines[i + 1])
            xyz = np.array([lines[i + 2 + k].split()[:3] for k in range(joints)], dtype=np.float32)
            here.append((bid, xyz))
            i += 2 + joints
        frames.append(here)
    return frames


@pytest.mark.parametrize("name,persons,frames_kept", [("S001C003P008R002A058", 2, 70),
                                                      ("S001C001P001R001A011", 1, 82)])
def test_genuine_files_match_the_references(ntu_fixtures, name, persons, frames_kept):
    frames = read_text_frames(ntu_fixtures / f"{name}.skeleton")
    pys = run(frames, "pyskl")
    assert pys.data.shape == (frames_kept, 2, 25, 3) and pys.n_persons == persons
    np.testing.assert_array_equal(pys.data, ref_pyskl(frames))
    np.testing.assert_allclose(run(frames, "pyskl", align_spine=True).data, ref_pyskl(frames, True), **TOL)
    for dataset in ("ntu60", "ntu120"):
        np.testing.assert_array_equal(run(frames, "ctrgcn", dataset=dataset).data, ref_ctrgcn(frames, dataset))
    msg = run(frames, "msg3d")
    assert msg.data.shape == (300, 2, 25, 3) and msg.n_persons == persons
    np.testing.assert_allclose(msg.data, ref_msg3d(frames), **TOL)
    np.testing.assert_array_equal(run(frames, "none").data, ref_none(frames))


def test_genuine_all_empty_file_raises(ntu_fixtures):
    frames = read_text_frames(ntu_fixtures / "S001C002P006R001A008.skeleton")
    assert len(frames) == 71 and not any(frames)
    for preset in PRESETS:
        with pytest.raises(EmptySkeletonError, match="all 71 frames are empty"):
            preprocess(SkeletonFile.from_frames(frames), preset)

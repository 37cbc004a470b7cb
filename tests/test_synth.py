"""Synthetic NTU corpus: determinism, the text format checked by an independent line reader, realism, classes."""
from __future__ import annotations

import re

import json

import numpy as np
import pytest

from schemas.datasets import get_dataset, parse_ntu_name
from skeltools import synth

NAME = re.compile(r"^S(\d{3})C(00[123])P(\d{3})R(00[12])A(\d{3})$")
ZERO_ORIENTATION_1BASED = {4, 16, 20, 22, 23, 24, 25}
CORPUS_FILES = 50


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("ntu")
    return synth.write_ntu_corpus(out, CORPUS_FILES, seed=7)


@pytest.fixture(scope="module")
def parsed(corpus):
    return {p.stem: read_skeleton(p.read_bytes()) for p in corpus}


def read_skeleton(data: bytes) -> dict:
    """A deliberately naive reader of the NTU grammar; asserts on every line it reads."""
    assert data.endswith(b"\r\n") and data.count(b"\n") == data.count(b"\r\n") == data.count(b"\r")
    lines = iter(data.decode("ascii").split("\r\n")[:-1])
    frames, ids, xyz, joints, bodies = int(next(lines)), [], [], [], []
    for _ in range(frames):
        count = int(next(lines))
        bodies.append(count)
        for _ in range(count):
            body = next(lines).split(" ")
            assert len(body) == 10 and body[-1] == "2", body
            ids.append(int(body[0]))
            assert all(re.fullmatch(r"\d", f) for f in body[1:7]), body
            assert next(lines) == "25"
            for _ in range(25):
                fields = next(lines).split(" ")
                assert len(fields) == 12 and fields[-1] in ("1", "2"), fields
                joints.append(fields)
    assert next(lines, None) is None, "text after the last frame"
    values = np.array([[float(v) for v in j] for j in joints]).reshape(-1, 25, 12)
    return {"frames": frames, "bodies": bodies, "ids": ids, "values": values, "tokens": joints}


def significant_digits(token: str) -> int:
    mantissa = token.lstrip("-").split("e")[0].replace(".", "")
    return len(mantissa.lstrip("0")) or 1


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, corpus):
    again = synth.write_ntu_corpus(tmp_path / "a", 4, seed=7)
    other = synth.write_ntu_corpus(tmp_path / "b", 4, seed=8)
    assert [p.name for p in again] == [p.name for p in corpus[:4]] == [p.name for p in other]
    assert all(a.read_bytes() == c.read_bytes() for a, c in zip(again, corpus))
    assert all(a.read_bytes() != b.read_bytes() for a, b in zip(again, other))


def test_grammar_and_ground_truth(corpus, parsed):
    for path in corpus[:10]:
        text = parsed[path.stem]
        truth = synth.generate_ntu_sample(np.random.default_rng([7, corpus.index(path)]),
                                          int(path.stem[-3:]), name=path.stem)
        assert text["frames"] == truth.num_frames and text["bodies"] == truth.bodies_per_frame.tolist()
        assert text["ids"] == truth.body_id.tolist() and min(text["ids"]) > 2 ** 56
        assert np.array_equal(text["values"][..., :3], truth.xyz)         # printed values are the truth
        assert np.array_equal(text["values"][..., 11], truth.joint_state)


def test_crlf_and_line_ending_option(tmp_path):
    sample = synth.generate_ntu_sample(np.random.default_rng(0), 58)
    crlf, lf = synth.format_skeleton(sample), synth.format_skeleton(sample, line_ending="\n")
    assert b"\r" not in lf and crlf == lf.replace(b"\n", b"\r\n") and crlf.endswith(b"\r\n")


def test_numbers_look_like_kinect_output(parsed):
    tokens = [t for text in parsed.values() for joint in text["tokens"] for t in joint[:11]]
    assert max(significant_digits(t) for t in tokens) == 7
    assert not any("E" in t or t.startswith("+") or t == "-0" for t in tokens)
    assert any(re.fullmatch(r"-?\d\.?\d*e-0[5-9]", t) for t in tokens)   # %.7g writes tiny values with e-05
    assert not any(re.search(r"\.\d*0(e|$)", t) for t in tokens)         # trailing zeros are stripped
    for text in parsed.values():
        v = text["values"]
        zero = np.all(v[..., 7:11] == 0, axis=-1)
        assert np.array_equal(np.flatnonzero(zero.all(0)) + 1, sorted(ZERO_ORIENTATION_1BASED))
        assert not zero[:, [j - 1 for j in range(1, 26) if j not in ZERO_ORIENTATION_1BASED]].any()
        x, y, z = v[..., 0], v[..., 1], v[..., 2]
        assert np.all((z > 2.0) & (z < 5.0))
        assert np.allclose(v[..., 3], 364.8 * x / z + 260.3) and np.allclose(v[..., 4], 209.3 - 367.7 * y / z)


def test_file_names_sizes_and_splits(corpus):
    names = [p.stem for p in corpus]
    fields = [tuple(map(int, NAME.match(n).groups())) for n in names]
    assert len(set(names)) == len(names)
    for dataset in ("ntu60", "ntu120"):                                # xsub, xview, xset
        spec = get_dataset(dataset)
        flags = [spec.split_flags(parse_ntu_name(n)) for n in names[:10]]
        for protocol in spec.protocols:
            assert {f[f"{protocol}_train"] for f in flags} == {True, False}, (dataset, protocol)
    assert [f[4] for f in fields[:10]] == [c.action for c in synth.CLASSES]
    sizes = np.array([p.stat().st_size for p in corpus])
    assert 200e3 < sizes.mean() < 350e3 and sizes.min() > 80e3


def test_every_class_is_balanced_over_every_split():
    actions = synth.corpus_actions(400)
    for dataset in ("ntu60", "ntu120"):
        spec = get_dataset(dataset)
        names = synth.sample_names(actions, dataset)
        for protocol in spec.protocols:
            for action in set(actions):
                flags = [spec.split_flags(parse_ntu_name(n))[f"{protocol}_train"]
                         for n, a in zip(names, actions) if a == action]
                assert 0.25 <= np.mean(flags) <= 0.8, (dataset, protocol, action, np.mean(flags))


def test_names_avoid_official_missing_lists(ntu_fixtures):
    missing = set()
    for f in ("NTU_RGBD_samples_with_missing_skeletons.txt", "NTU_RGBD120_samples_with_missing_skeletons.txt"):
        missing |= set((ntu_fixtures / f).read_text().split())
    for dataset in ("ntu60", "ntu120"):
        names = synth.sample_names(synth.corpus_actions(3000), dataset)
        assert len(set(names)) == 3000 and not missing & set(names)


def test_corpus_has_the_quirks_of_real_data(corpus):
    samples = [synth.generate_ntu_sample(np.random.default_rng([7, i]), int(p.stem[-3:]), name=p.stem)
               for i, p in enumerate(corpus)]
    bodies = np.concatenate([s.bodies_per_frame for s in samples])
    assert 0.01 < np.mean(bodies == 0) < 0.06
    assert any(s.bodies_per_frame[0] == 0 for s in samples)
    two = [s for s in samples if (s.actor == 1).any()]
    assert 0.3 < len(two) / len(samples) < 0.5
    for s in two:
        a, b = s.body_id[s.actor == 0][0], s.body_id[s.actor == 1][0]
        assert a != b and float(a) == float(b)                        # the float64 trap of genuine files
    noise = [s for s in samples if (s.actor == -1).any()]
    assert noise and all(np.sum(s.actor == -1) <= 11 and np.all(s.lean[s.actor == -1, 0] == -1) for s in noise)
    extent = [np.ptp(s.xyz[s.actor == -1], axis=1).max(0) for s in noise]
    assert any(e[0] > 0.8 * e[1] for e in extent)                     # a wide one, as the spread rule expects
    switched = [s for s in samples if len(np.unique(s.body_id[s.actor == 0])) == 2]
    assert switched
    for s in switched:                                                 # the same actor, one ID after the other
        ids, frames = s.body_id[s.actor == 0], s.frame[s.actor == 0]
        spans = sorted((frames[ids == i].min(), frames[ids == i].max()) for i in np.unique(ids))
        assert spans[0][1] < spans[1][0]
    states = np.concatenate([s.joint_state.ravel() for s in samples])
    assert 0.02 < np.mean(states == 1) < 0.15


def motion_features(s: synth.SynthSample) -> np.ndarray:
    """View-invariant summary of a sample: joint distances over time, vertical motion, the partner's distance."""
    pose = s.xyz[s.actor == 0]
    pairs = [(6, 3), (10, 3), (6, 10), (6, 0), (10, 0), (10, 20), (3, 0), (14, 0), (7, 2), (11, 2)]
    d = np.stack([np.linalg.norm(pose[:, a] - pose[:, b], axis=-1) for a, b in pairs], -1)
    vel = np.abs(np.diff(d, axis=0))
    base_y = pose[:, 0, 1] - np.median(pose[:, 0, 1])
    feats = [d.mean(0), d.std(0), d.min(0), vel.mean(0), [base_y.max(), base_y.min()]]
    if (s.actor == 1).any():
        other = s.xyz[s.actor == 1]
        frames = np.intersect1d(s.frame[s.actor == 0], s.frame[s.actor == 1])
        mine = pose[np.searchsorted(s.frame[s.actor == 0], frames)]
        theirs = other[np.searchsorted(s.frame[s.actor == 1], frames)]
        gap = np.linalg.norm(mine[:, 0] - theirs[:, 0], axis=-1)
        hand = np.linalg.norm(mine[:, 10] - theirs[:, 20], axis=-1)
        feats.append([1, gap.mean(), gap.std(), hand.min(), np.linalg.norm(mine[:, 10] - theirs[:, 10], axis=-1).min()])
    else:
        feats.append([0, 0, 0, 0, 0])
    return np.concatenate(feats)


def test_classes_are_separable_by_motion():
    n_train, n_test = 8, 8
    actions = synth.corpus_actions(10 * (n_train + n_test))
    names = synth.sample_names(actions)
    x = np.array([motion_features(synth.generate_ntu_sample(np.random.default_rng([3, i]), a, name=n))
                  for i, (a, n) in enumerate(zip(actions, names))])
    y = np.array(actions)
    train = np.arange(len(y)) < 10 * n_train
    mu, sd = x[train].mean(0), x[train].std(0) + 1e-9
    z = (x - mu) / sd
    classes = np.unique(y)
    centroids = np.stack([z[train & (y == c)].mean(0) for c in classes])
    pred = classes[np.argmin(((z[~train, None] - centroids) ** 2).sum(-1), axis=1)]
    assert np.mean(pred == y[~train]) >= 0.7                          # chance is 0.1


def test_class_selection_and_two_person_ratio():
    assert synth.corpus_actions(4, num_classes=2) == [58, 27, 58, 27]
    actions = synth.corpus_actions(100, two_person_ratio=0.25)
    two = {c.action for c in synth.CLASSES if c.persons == 2}
    assert sum(a in two for a in actions) == 25
    with pytest.raises(ValueError):
        synth.corpus_actions(10, num_classes=1, two_person_ratio=0.5)
    with pytest.raises(ValueError):
        synth.corpus_actions(10, num_classes=11)


def test_round_sig_prints_and_reads_back_exactly():
    v = np.random.default_rng(0).normal(0, 2, 20000) * 10.0 ** np.random.default_rng(1).integers(-6, 4, 20000)
    q = synth.round_sig(v)
    assert all(float("%.7g" % a) == a for a in q.tolist())
    assert np.all(np.abs(q - v) <= 5e-7 * np.abs(v))


def test_knobs_reach_every_sample(tmp_path):
    seen = []
    paths = synth.write_ntu_corpus(tmp_path, 6, seed=1, frames_range=(30, 30), empty_frame_ratio=0.0,
                                   noise_body_ratio=1.0, id_switch_ratio=0.0, progress=seen.append)
    assert seen == paths
    for path in paths:
        text = read_skeleton(path.read_bytes())
        expected = 3 if int(path.stem[-3:]) in {c.action for c in synth.CLASSES if c.persons == 2} else 2
        assert text["frames"] == 30 and min(text["bodies"]) >= 1 and max(text["bodies"]) == expected
    with pytest.raises(TypeError):
        synth.write_ntu_corpus(tmp_path / "x", 1, noise_ratio=0.5)


def test_openpose_frame_json_writes_numbers_as_openpose_and_reads_back_exactly():
    from skeltools.synth import generate_ntu_sample, openpose_frame_json, openpose_people

    rng = np.random.default_rng(3)
    frames = openpose_people(generate_ntu_sample(rng, 58, frames=30), rng)
    people = next(p for p in frames if len(p))
    text = openpose_frame_json(people)
    doc = json.loads(text)
    values = np.float32(doc["people"][0]["pose_keypoints_2d"])
    np.testing.assert_array_equal(values, people[0].reshape(-1))  # the float32 values survive the 6 digits
    assert all(len(t.strip("-").replace(".", "").lstrip("0")) <= 6 for t in text.split('2d":[')[1].split("]")[0].split(","))
    assert doc["people"][0]["person_id"] == [-1] and doc["version"] == 1.3

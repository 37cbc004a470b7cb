"""Preset ``clean``: each hard case of body selection as its own small synthetic file, scored against its ground
truth; the genuine NTU files; the synthetic ground truth itself; the scorer."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from click.testing import CliRunner

from skeltools import denoise as dn
from skeltools import synth
from skeltools.cli import main
from skeltools.denoise_score import Score, score_output, score_preset, trace
from skeltools.presets import EmptySkeletonError, preprocess
from skeltools.readers.ntu import SkeletonFile, parse_skeleton

QUIET = dict(empty_frame_ratio=0.0, noise_body_ratio=0.0, id_switch_ratio=0.0)
SEEDS = range(6)
TWO_PERSON, ONE_PERSON = 58, 38  # handshaking, salute


def sample(seed: int, action: int = TWO_PERSON, **rates) -> synth.SynthSample:
    """A 60-frame sample without empty frames, noise or ID switches unless ``rates`` asks for them."""
    plain = {**QUIET, **{k: rates.pop(k) for k in list(rates) if k in QUIET}}
    return synth.generate_ntu_sample(np.random.default_rng([11, seed]), action, frames=60,
                                     hard=synth.HardCases(**rates), **plain)


def parsed(s: synth.SynthSample) -> SkeletonFile:
    return parse_skeleton(synth.format_skeleton(s))


def score(s: synth.SynthSample, preset: str) -> Score:
    return score_preset(parsed(s), synth.ground_truth(s), preset)


def assert_clean_right_and_reference_wrong(samples, reference: str, field: str):
    """``clean`` scores 0/0/0/0 on every sample; ``reference`` fails ``field`` on at least one (the case is hard)."""
    for s in samples:
        assert score(s, "clean") == Score(), (s.name, s.cases)
    assert any(getattr(score(s, reference), field) for s in samples), f"{reference} never fails {field}"


# ----------------------------------------------------------------------------------------------------------------
# the hard cases, one file each


def test_side_on_actor_with_extended_arms_is_kept():
    samples = [sample(k, side_on_ratio=1.0) for k in SEEDS]
    assert all(s.cases[0].startswith("side_on:") for s in samples)
    assert_clean_right_and_reference_wrong(samples, "pyskl", "actor_lost")
    assert all(preprocess(parsed(s), "clean").n_persons == 2 for s in samples)


def test_actor2_id_switch_is_linked_into_one_person():
    samples = [sample(k, id_switch2_ratio=1.0) for k in SEEDS]
    for s in samples:
        assert "id_switch:1" in s.cases and len(synth.ground_truth(s)["actors"][1]["body_ids"]) == 2
        assert "3 bodyIDs linked into 2 tracks" in preprocess(parsed(s), "clean").notes
    assert_clean_right_and_reference_wrong(samples, "pyskl", "actor_lost")


def test_short_dropout_leaves_a_gap_and_shifts_nothing():
    samples = [sample(k, dropout_ratio=1.0) for k in SEEDS]
    assert all(synth.ground_truth(s)["actors"][int(s.cases[0][-1])]["dropout"] for s in samples)
    assert_clean_right_and_reference_wrong(samples, "ctrgcn", "shifted")
    # the dropped-out actor 2 is zero exactly in its missing frames; every kept frame is the file's frame
    s = next(s for s in samples if s.cases == ("dropout:1",))
    skel, truth = parsed(s), synth.ground_truth(s)
    data = preprocess(skel, "clean").data
    t, m, body = trace(data, skel)
    assert (body >= 0).all() and len(np.unique(t)) == data.shape[0]
    file_frame = skel.frame[body]
    np.testing.assert_array_equal(file_frame[m == 0], np.unique(skel.frame))  # main actor: every non-empty frame
    (first, last), = truth["actors"][1]["dropout"]
    gap = np.arange(first, last + 1)
    assert not np.isin(file_frame[m == 1], gap).any() and np.isin(gap, file_frame[m == 0]).all()


def test_bodyid_flicker_is_linked():
    samples = [sample(k, flicker_ratio=1.0) for k in SEEDS]
    assert all(len(synth.ground_truth(s)["actors"][int(s.cases[0][-1])]["body_ids"]) == 2 for s in samples)
    assert_clean_right_and_reference_wrong(samples, "pyskl", "shifted")


def test_furniture_is_dropped():
    samples = [sample(k, ONE_PERSON, furniture_ratio=1.0) for k in SEEDS]
    assert all(synth.ground_truth(s)["noise"][0]["kind"] == "furniture" for s in samples)
    assert_clean_right_and_reference_wrong(samples, "none", "noise_kept")
    assert all(preprocess(parsed(s), "clean").n_persons == 1 for s in samples)


def test_short_false_detection_is_dropped():
    samples = [sample(k, ONE_PERSON, noise_body_ratio=1.0) for k in SEEDS]
    assert all(synth.ground_truth(s)["noise"][0]["kind"] == "flicker" for s in samples)
    assert_clean_right_and_reference_wrong(samples, "none", "noise_kept")


def test_late_second_actor_is_second():
    samples = [sample(k, late_ratio=1.0) for k in SEEDS]
    for s in samples:
        assert score(s, "clean") == Score()
        skel = parsed(s)
        t, m, body = trace(preprocess(skel, "clean").data, skel)
        owner = {b: a["actor"] for a in synth.ground_truth(s)["actors"] for b in a["body_ids"]}
        assert {owner[int(b)] for b in skel.body_id[body[m == 0]]} == {0}   # main actor first
        assert {owner[int(b)] for b in skel.body_id[body[m == 1]]} == {1}


def test_file_pyskl_skips_is_kept():
    """One actor, its bodyID switching, side-on the whole take: pyskl's spread rule removes both bodies."""
    s = sample(0, ONE_PERSON, id_switch_ratio=1.0, side_on_ratio=1.0)
    with pytest.raises(EmptySkeletonError, match="spread denoising removed every body"):
        preprocess(parsed(s), "pyskl")
    out = preprocess(parsed(s), "clean")
    assert out.n_persons == 1 and score(s, "clean") == Score()


def test_nothing_person_like_keeps_the_longest_body():
    blob = (np.random.default_rng(0).uniform(-1, 1, (25, 3)) + [0, 0, 3]).astype(np.float32)
    frames = [[(7, blob)]] * 20 + [[]] * 5 + [[(8, blob + 1)]] * 15
    out = preprocess(SkeletonFile.from_frames(frames), "clean")
    assert out.n_persons == 1 and out.data.shape == (20, 2, 25, 3)
    np.testing.assert_array_equal(out.data[:, 0], np.broadcast_to(blob - blob[1], (20, 25, 3)))
    assert out.notes == ("dropped 1 of 2 tracks: a body without a human shape",
                         "dropped 20 frames without the main person")


def test_a_still_body_is_a_person_only_when_nothing_moves():
    """A mannequin: human bone lengths, but not one joint moving over 80 frames."""
    s = synth.generate_ntu_sample(np.random.default_rng(5), ONE_PERSON, frames=80, **QUIET)
    skel = parsed(s)
    mannequin = (synth.rest_pose() + [1.2, 0.0, 3.5]).astype(np.float32)
    frames = [[(7, xyz) for xyz in skel.xyz[skel.frame == f]] + [(9, mannequin)] for f in range(80)]
    out = preprocess(SkeletonFile.from_frames(frames), "clean")
    assert out.n_persons == 1 and out.notes == ("dropped 1 of 2 tracks: a still body",)
    alone = preprocess(SkeletonFile.from_frames([[(9, mannequin)]] * 80), "clean")
    assert alone.n_persons == 1 and alone.notes == () and alone.data.shape == (80, 2, 25, 3)


def test_second_tracking_of_a_person_is_dropped():
    """Kinect tracking one person twice: a copy 3 cm off under another bodyID, from frame 10 on."""
    s = sample(1, ONE_PERSON)
    skel = parsed(s)
    twin = skel.frame >= 10
    ghost = SkeletonFile(skel.num_frames, skel.bodies_per_frame + (np.arange(skel.num_frames) >= 10),
                         np.r_[skel.body_id, skel.body_id[twin] + 4], np.r_[skel.frame, skel.frame[twin]],
                         np.r_[skel.slot, skel.slot[twin] + 1], np.concatenate([skel.xyz, skel.xyz[twin] + 0.03]))
    out = preprocess(ghost, "clean")
    assert out.n_persons == 1 and "a second tracking of a kept person" in out.notes[0]
    np.testing.assert_array_equal(out.data, preprocess(skel, "clean").data)


def test_bodyid_switch_sharing_a_frame_is_merged():
    """Kinect lists the old and the new bodyID of the actor in one frame (40), 1 cm apart."""
    s = sample(4, ONE_PERSON)
    skel = parsed(s)
    frames = [[(7 if f <= 40 else 8, xyz)] for f, xyz in zip(skel.frame, skel.xyz)]
    frames[40].append((8, skel.xyz[40] + 0.01))
    out = preprocess(SkeletonFile.from_frames(frames), "clean")
    assert out.n_persons == 1 and out.notes == ("dropped 1 of 2 tracks: a second tracking of a kept person (merged)",)
    np.testing.assert_array_equal(out.data, preprocess(skel, "clean").data)


# ----------------------------------------------------------------------------------------------------------------
# building blocks


def test_tracklets_keep_the_first_listing_of_a_repeated_bodyid():
    a, b, c = (np.full((25, 3), v, np.float32) for v in (1.0, 2.0, 3.0))
    skel = SkeletonFile.from_frames([[(5, a), (9, b)], [(9, c), (9, a)], [], [(5, b)]])
    pieces = dn.tracklets(skel)
    assert [p.body_id for p in pieces] == [5, 9]
    np.testing.assert_array_equal(pieces[0].frames, [0, 3])
    np.testing.assert_array_equal(pieces[1].frames, [0, 1])
    np.testing.assert_array_equal(pieces[1].xyz[:, 0, 0], [2.0, 3.0])


def test_link_needs_disjoint_frames_and_a_continuous_pose():
    pose = synth.rest_pose().astype(np.float32) + [0, 0, 3]
    piece = lambda bid, frames, shift=0.0: dn.Tracklet(bid, np.array(frames), np.stack([pose + shift] * len(frames)))
    assert len(dn.link_tracklets([piece(1, range(20)), piece(2, range(20, 40))])) == 1          # ID switch
    assert len(dn.link_tracklets([piece(1, range(20)), piece(2, range(19, 40))])) == 2          # a shared frame
    assert len(dn.link_tracklets([piece(1, range(20)), piece(2, range(20, 40), 0.15)])) == 2    # a jump
    assert len(dn.link_tracklets([piece(1, range(20)), piece(2, range(25, 40), 0.15)])) == 1    # a gap allows more
    assert len(dn.link_tracklets([piece(1, range(20, 40)), piece(2, range(3, 8))])) == 2       # short, far
    assert len(dn.link_tracklets([piece(1, range(20, 40)), piece(2, range(14, 19))])) == 1      # short, adjacent
    flicker = dn.link_tracklets([piece(1, [*range(10), *range(13, 30)]), piece(2, [10, 11, 12])])
    assert len(flicker) == 1 and flicker[0].body_ids == (1, 2)
    np.testing.assert_array_equal(flicker[0].frames, np.arange(30))


def test_human_body_is_pose_invariant():
    s = sample(2, ONE_PERSON, side_on_ratio=1.0)
    assert dn.human_body(s.xyz[s.actor == 0].astype(np.float32))
    assert dn.human_body(synth.rest_pose(0.6)[None]) and not dn.human_body(synth.rest_pose(2.0)[None])
    wide = synth.rest_pose() * [3.0, 0.4, 1.0]
    assert not dn.human_body(wide[None])
    twisted = synth.rest_pose()
    twisted[4] += [0.12, 0.25, 0]              # left shoulder high: the shoulder line slants across the spine
    twisted[12] += [0.06, 0.2, 0]              # left hip high
    twisted[3] = twisted[2] + [0, 0, 0.12]     # head at right angles to the neck
    assert dn._torso_misfits(synth.rest_pose()[None]) == 0 and dn._torso_misfits(twisted[None]) == 3
    batch = np.stack([synth.rest_pose()[None], wide[None], twisted[None]])
    np.testing.assert_array_equal(dn.human_body(batch), [True, False, False])
    assert not dn.human_body(twisted[None])


# ----------------------------------------------------------------------------------------------------------------
# genuine files, faithful presets, ground truth, scorer


@pytest.mark.parametrize("name", ["S001C003P008R002A058", "S001C001P001R001A011"])
def test_genuine_files_give_pyskls_actors(ntu_fixtures, name):
    skel = parse_skeleton((ntu_fixtures / f"{name}.skeleton").read_bytes())
    clean, pyskl = preprocess(skel, "clean"), preprocess(skel, "pyskl")
    assert clean.n_persons == pyskl.n_persons
    np.testing.assert_array_equal(clean.data, pyskl.data)
    aligned = preprocess(skel, "clean", align_spine=True).data
    np.testing.assert_array_equal(aligned, preprocess(skel, "pyskl", align_spine=True).data)


def test_genuine_all_empty_file_is_still_nothing(ntu_fixtures):
    skel = parse_skeleton((ntu_fixtures / "S001C002P006R001A008.skeleton").read_bytes())
    with pytest.raises(EmptySkeletonError, match="all 71 frames are empty"):
        preprocess(skel, "clean")


def test_default_corpus_is_unchanged_by_the_hard_cases(tmp_path):
    """The first 3 files of seed 7 as written before the hard cases existed."""
    paths = synth.write_ntu_corpus(tmp_path, 3, seed=7)
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in paths)).hexdigest()
    assert digest == "e3e017507f0ba324e3454cd431e583fb7ec22c78049de1ddcf819c6c83dbd3f2"
    assert not (tmp_path / synth.MANIFEST).exists()


def test_ground_truth_matches_the_file(tmp_path):
    hard = synth.HardCases(side_on_ratio=0.3, id_switch2_ratio=0.5, dropout_ratio=0.5, flicker_ratio=0.5,
                           furniture_ratio=0.5, late_ratio=0.5)
    paths = synth.write_ntu_corpus(tmp_path, 12, seed=4, manifest=True, hard=hard)
    truth = synth.read_manifest(tmp_path)
    assert list(truth) == [p.stem for p in paths]
    kinds, cases = set(), set()
    for path in paths:
        skel, rec = parse_skeleton(path.read_bytes()), truth[path.stem]
        listed = {int(b["body_id"]) for b in rec["noise"]} | {int(b) for a in rec["actors"] for b in a["body_ids"]}
        assert listed == set(skel.body_id.tolist())                      # every body is an actor's or noise
        empty = [f for a, b in rec["empty"] for f in range(a, b + 1)]
        np.testing.assert_array_equal(empty, np.flatnonzero(skel.bodies_per_frame == 0))
        for actor in rec["actors"]:
            mine = np.isin(skel.body_id, actor["body_ids"])
            runs = [f for a, b in actor["frames"] for f in range(a, b + 1)]
            np.testing.assert_array_equal(runs, np.unique(skel.frame[mine]))
            missing = [f for a, b in actor["dropout"] for f in range(a, b + 1)]
            assert not np.isin(missing, skel.frame[mine]).any()
            assert missing == [] or actor["frames"][0][0] < missing[0] <= missing[-1] < actor["frames"][-1][1]
            assert bool(missing) == (f"dropout:{actor['actor']}" in rec["cases"])
            if len(actor["body_ids"]) > 1:
                assert {f"id_switch:{actor['actor']}", f"id_flicker:{actor['actor']}"} & set(rec["cases"])
        kinds |= {n["kind"] for n in rec["noise"]}
        cases |= {c.split(":")[0] for c in rec["cases"]}
    assert kinds == {"flicker", "furniture"}
    assert cases == {"side_on", "id_switch", "dropout", "id_flicker", "late"}
    with pytest.raises(ValueError, match="side_on_ratio must be a rate"):
        synth.HardCases(side_on_ratio=1.5)


def test_synth_cli_rates_and_manifest(tmp_path):
    result = CliRunner().invoke(main, ["synth", "ntu", str(tmp_path), "--samples", "4", "--seed", "2",
                                       "--p-furniture", "1", "--p-noise", "0", "--p-late", "1"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (tmp_path / synth.MANIFEST).read_text().splitlines()]
    assert len(records) == 4 and all(r["noise"][0]["kind"] == "furniture" and len(r["noise"]) == 1 for r in records)
    assert sum("late:1" in r["cases"] for r in records) == sum(len(r["actors"]) == 2 for r in records) > 0


def test_scorer_catches_each_fault():
    s = sample(3, noise_body_ratio=1.0)
    skel, truth = parsed(s), synth.ground_truth(s)
    good = preprocess(skel, "clean").data
    assert score_output(good, skel, truth) == Score()
    shifted = good.copy()
    shifted[1:, 1] = good[:-1, 1]
    assert score_output(shifted, skel, truth).shifted
    lost = good.copy()
    lost[: len(good) // 2, 1] = 0
    assert score_output(lost, skel, truth) == Score(actor_lost=True)
    assert score_output(good[:, :1], skel, truth) == Score(actor_lost=True)
    t, m, body = trace(good, skel)                                   # a third person: noise, in its own frame
    noise = int(np.flatnonzero(skel.body_id == truth["noise"][0]["body_id"])[0])
    at = int(t[(m == 0) & (skel.frame[body] == skel.frame[noise])][0])
    noisy = np.concatenate([good, np.zeros_like(good[:, :1])], axis=1)
    noisy[at, 2] = skel.xyz[noise] + 5.0
    assert score_output(noisy, skel, truth) == Score(noise_kept=True)
    garbage = np.concatenate([good, np.zeros_like(good[:, :1])], axis=1)
    garbage[0, 2] = 1.0
    assert score_output(garbage, skel, truth) == Score(noise_kept=True, unmatched=1)

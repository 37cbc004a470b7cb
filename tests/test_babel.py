"""BABEL: metadata files, AMASS npz inspection, the reference chunking and subsampling, both input modes."""
from __future__ import annotations

import json
import pickle
from collections import Counter

import numpy as np
import pytest
from click.testing import CliRunner

from schemas.datasets import babel_action_index, babel_sid_splits, get_dataset
from skeltools.cli import main
from skeltools.convert import ConversionError
from skeltools.convert_babel import convert_babel, sequence_samples
from skeltools.normalize import msg3d_pre_normalization
from skeltools.readers.babel import (SMPLH_TO_NTU, Annotation, BabelInputError, Segment, amass_metadata,
                                     chunk_segments, frame_labels, joints_relpath, load_joint_positions,
                                     read_release_labels, subsample_indices)
from skeltools.store import SkeletonStore
from skeltools.synth_sets import write_babel_corpus


def test_shipped_metadata_matches_the_babel_files(babel_fixtures):
    assert babel_action_index() == json.loads((babel_fixtures / "action_label_2_idx.json").read_text())
    splits = json.loads((babel_fixtures / "amass_splits.json").read_text())
    assert {k: len(v) for k, v in splits.items()} == {"train": 7976, "val": 2659, "test": 2659}
    assert babel_sid_splits() == {int(u.rsplit("/", 1)[1][:-4]): s for s, urls in splits.items() for u in urls}
    fps = json.loads((babel_fixtures / "featp_2_fps.json").read_text())
    assert len(fps) == 12660 and Counter(fps.values()) == {120: 7560, 100: 4367, 60: 638, 250: 57, 150: 9,
                                                           120.00004577636719: 17, 59.9999885559082: 12}
    assert str(joints_relpath("ACCAD/ACCAD/Male2MartialArtsStances_c3d/D7 - walk to bow_poses.npz")) == \
        "ACCAD/Male2MartialArtsStances_c3d/D7 - walk to bow_poses.npz"
    assert str(joints_relpath("BMLrub/BioMotionLab_NTroje/rub055/0020_lifting_heavy2_poses.npz")) == \
        "BMLrub/rub055/0020_lifting_heavy2_poses.npz"
    assert str(joints_relpath("DFaust67/DFaust_67/50002/50002_hips_poses.npz")) == "DFaust/50002/50002_hips_poses.npz"


def test_babel_class_subsets():
    b60, b120 = get_dataset("babel60"), get_dataset("babel120")
    assert (b60.num_classes, b120.num_classes) == (60, 120) and b120.class_names[:60] == b60.class_names
    assert (b60.class_names[0], b60.class_names[20], b60.class_names[59]) == ("walk", "take/pick something up",
                                                                              "martial art")
    assert (b120.class_names[60], b120.class_names[119]) == ("balance", "sudden movement")
    assert b60.split_columns() == ("babel_train", "babel_val", "babel_test")


def test_amass_sample_metadata_and_the_clear_error(amass_sample, tmp_path):
    meta = amass_metadata(amass_sample)
    assert (meta.frames, meta.fps, meta.gender, meta.has_joints) == (500, 120.0, "female", False)
    with np.load(amass_sample) as npz:
        fields = {k: npz[k] for k in ("poses", "trans", "betas")}
    np.savez(tmp_path / "b.npz", **fields, gender=np.bytes_(b"male"), mocap_frame_rate=np.float64(120.00004577636719))
    meta = amass_metadata(tmp_path / "b.npz")
    assert (meta.frames, meta.fps, meta.gender) == (500, 120.00004577636719, "male")
    with pytest.raises(BabelInputError, match="licensed SMPL-H body model"):
        load_joint_positions(amass_sample)
    result = CliRunner().invoke(main, ["info", str(amass_sample)])
    assert result.exit_code == 0 and "frames      500" in result.output and "gender      female" in result.output


def test_subsampling_to_30fps_matches_hand_computed_indices():
    assert subsample_indices(13, 120.0).tolist() == [0, 4, 8, 12]
    assert subsample_indices(7, 60.0).tolist() == [0, 2, 4, 6]
    second = [0, 3, 6, 10, 13, 16, 20, 23, 26, 30, 33, 36, 40, 43, 46, 50, 53, 56, 60, 63, 66, 70, 73, 76, 80, 83,
              86, 90, 93, 96]  # floor(100 / 30 * k)
    assert subsample_indices(205, 100.0).tolist() == second + [100 + i for i in second] + [200, 203]
    odd = [0, 1] + [2 * k - 1 for k in range(2, 30)]  # floor(1.998 k), seconds of int(59.94) = 59 frames
    assert subsample_indices(130, 59.94).tolist() == odd + [59 + i for i in odd] + [118 + i for i in odd[:7]]
    assert subsample_indices(400, 120.00004577636719).tolist() == list(range(0, 400, 4))


def _annotation(segments, dur=10.0):
    return Annotation(7, dur, "a", tuple(Segment(f"s{i}", cats, start, end)
                                         for i, (cats, start, end) in enumerate(segments)))


def test_chunking_padding_and_dropped_segments():
    joints = np.arange(300, dtype=np.float64)[:, None, None] * np.ones((1, 25, 3))
    ann = _annotation([(("walk", "turn"), 0.5, 6.0),   # frames 15..180: 165 -> chunks of 150 and 15
                       (("stand",), 3.0, 3.01),        # shorter than a frame: label never set -> dropped
                       (None, 0.0, 10.0),               # transition without category
                       (("run",), 9.9, 20.0)])          # past the sequence: frames 297..299 (3 frames)
    labels = frame_labels(ann.segments, ann.dur)
    assert len(labels) == 300 and labels[15] == {"walk", "turn"} and labels[14] == set()
    chunks = chunk_segments(joints, ann)
    assert [(c.seg_id, c.chunk_n, c.length, c.categories) for c in chunks] == [
        ("s0", 0, 150, ("walk", "turn")), ("s0", 1, 15, ("walk", "turn")), ("s3", 0, 3, ("run",))]
    assert chunks[0].frames[0, 0, 0] == 15 and chunks[1].frames[0, 0, 0] == 165 and chunks[1].frames[14, 0, 0] == 179
    assert not chunks[1].frames[15:].any() and chunks[2].frames.shape == (150, 25, 3)


def test_one_sample_per_category_class_filter_and_normalization():
    rng = np.random.default_rng(0)
    joints = rng.normal(0, 0.3, (600, 25, 3)) + [0, 1, 0]  # 5 s at 120 fps -> 150 frames at 30 fps
    record = {"babel_sid": 5534, "dur": 5.0, "feat_p": "CMU/CMU/01/01_01_poses.npz", "frame_ann": {
        "anntr_id": "x", "labels": [{"seg_id": "g", "act_cat": ["walk", "balance", "no such"], "start_t": 0,
                                     "end_t": 2.5}]}}
    rows60, frames60, _ = sequence_samples(joints, 120.0, [("train.json[5534]", record)], 60)
    rows120, frames120, _ = sequence_samples(joints, 120.0, [("train.json[5534]", record)], 120)
    assert [r["label"] for r in rows60] == [0] and [r["label"] for r in rows120] == [0, 60]
    assert rows60[0]["sample_id"] == "g/0/0" and rows60[0]["split"] == "train" and rows60[0]["sid"] == 5534
    assert frames60.shape == (150, 1, 25, 3) and np.array_equal(frames120[:150], frames120[150:])
    chunk = np.zeros((150, 25, 3), np.float32)
    chunk[:75] = joints[0:300:4]
    expected, _ = msg3d_pre_normalization(chunk[None], 150)
    np.testing.assert_allclose(frames60[:, 0], expected[0], atol=1e-6)
    np.testing.assert_allclose(frames60[75:, 0], frames60[:75, 0])  # loop padding
    shoulders = frames60[0, 0, 8] - frames60[0, 0, 4]
    np.testing.assert_allclose(shoulders[1:], 0, atol=1e-5)  # the last rotation puts them on +x


def _release(folder, split, x, labels, classes=60):
    np.save(folder / f"{split}_ntu_sk_{classes}.npy", x)
    (folder / f"{split}_label_{classes}.pkl").write_bytes(pickle.dumps(labels))


def test_release_mode_stores_the_arrays_as_they_are(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 3, 150, 25, 1)).astype(np.float32)
    _release(tmp_path, "train", x, (["a", "b", "b"], ([np.int64(4), 0, 7], [np.int64(12), 12, 13], [0, 0, 1],
                                                      ["p", "q", "q"])))
    _release(tmp_path, "val", x[:1], (["c"], ([59], [40], [2], ["r"])))
    _release(tmp_path, "test", x[:2], (["d"], ([-1], [41], [0], ["s"])))  # one label for two samples
    with pytest.raises(ConversionError, match="1 of 3 files failed"):
        convert_babel([tmp_path], tmp_path / "no.zarr", workers=1, progress=False)
    report = convert_babel([tmp_path], tmp_path / "b.zarr", workers=1, keep_going=True, progress=False)
    assert "test_ntu_sk_60.npy: 2 samples but test_label_60.pkl has 1 labels" in report["failed"][0]["error"]
    store = SkeletonStore.open(tmp_path / "b.zarr")
    assert store.attrs["preprocessing"]["already_normalized"] and store.attrs["persons"] == 1
    rows = store.index.to_pylist()
    assert [r["sample_id"] for r in rows] == ["a/0/4", "b/0/0", "b/1/7", "c/2/59"]
    assert [r["babel_train"] for r in rows] == [True, True, True, False] and rows[3]["babel_val"]
    assert rows[0]["sid"] == 12 and rows[2]["anntr_id"] == "q"
    np.testing.assert_array_equal(store[2][:, 0], x[2, :, :, :, 0].transpose(1, 2, 0))


def test_release_labels_never_run_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "l.pkl").write_bytes(pickle.dumps((["a"], ([Evil()], [1], [0], ["x"]))))
    with pytest.raises(BabelInputError, match="refusing to load builtins.print"):
        read_release_labels(tmp_path / "l.pkl")


def test_joints_mode_round_trip_and_every_bad_file_reported(tmp_path, amass_sample):
    paths = write_babel_corpus(tmp_path / "raw", 8, seed=3, seconds_range=(3.0, 7.0))
    joints, babel_json = paths["joints"], paths["babel_json"]
    files = sorted(p for p in joints.rglob("*.npz"))
    docs = {f: json.loads((babel_json / f).read_text()) for f in ("train.json", "val.json")}
    (files[0]).write_bytes(amass_sample.read_bytes())  # raw AMASS parameters instead of joints
    np.savez(files[1], joint_pos=np.zeros((50, 70)), mocap_framerate=120.0)
    np.savez(files[2], joint_pos=np.full((50, 25, 3), np.nan), mocap_framerate=120.0)
    key, record = next((k, r) for k, r in docs["train.json"].items() if r["frame_ann"] is not None
                       and joints / joints_relpath(r["feat_p"]) not in files[:3])
    record["frame_ann"]["labels"][0]["start_t"] = "soon"
    (babel_json / "train.json").write_text(json.dumps(docs["train.json"]))
    report = convert_babel([joints], tmp_path / "b.zarr", source="joints", babel_json=babel_json,
                           fps_table=paths["fps_table"], workers=1, keep_going=True, progress=False)
    errors = {f["file"]: f["error"] for f in report["failed"]}
    assert len(errors) == 4 and report["counts"]["converted"] == 4
    assert "licensed SMPL-H" in errors[str(files[0])] and str(files[0]) in errors[str(files[0])]
    assert "key 'joint_pos' has shape (50, 70)" in errors[str(files[1])]
    assert "key 'joint_pos' holds non-numbers, NaN" in errors[str(files[2])]
    assert any(f"train.json[{key}].frame_ann.labels[0]: key 'start_t'" in e for e in errors.values())
    store = SkeletonStore.open(tmp_path / "b.zarr")
    assert store.attrs["dataset"] == "babel60" and set(store.lengths.tolist()) == {150}
    assert store.attrs["preprocessing"]["already_normalized"] is False
    rows = store.index.to_pylist()
    assert len(rows) == len(store) and all(r["babel_train"] or r["babel_val"] for r in rows)
    assert len({r["sample_id"] for r in rows}) == len(rows)


def test_joints_mode_needs_a_frame_rate(tmp_path):
    paths = write_babel_corpus(tmp_path / "raw", 2, seed=4, seconds_range=(2.0, 3.0))
    for f in paths["joints"].rglob("*.npz"):
        with np.load(f) as npz:
            np.savez(f, joint_pos=npz["joint_pos"])
    with pytest.raises(ConversionError, match="no frame rate"):
        convert_babel([paths["joints"]], tmp_path / "b.zarr", source="joints", babel_json=paths["babel_json"],
                      workers=1, progress=False)


def test_joint_layouts_accepted(tmp_path):
    ntu = np.random.default_rng(2).normal(size=(40, 25, 3))
    full = np.zeros((40, 73, 3))
    full[:, list(SMPLH_TO_NTU)] = ntu
    for i, joint_pos in enumerate((full.reshape(40, 219), full, ntu)):
        np.savez(tmp_path / f"{i}.npz", joint_pos=joint_pos, fps=np.array(60.0))
        got, fps = load_joint_positions(tmp_path / f"{i}.npz")
        assert fps == 60.0 and np.array_equal(got, ntu)


def test_cli_synth_then_convert(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["synth", "babel", str(tmp_path / "raw"), "--sequences", "4", "--seed", "1"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["convert", "babel", str(tmp_path / "raw" / "joints"), "--from", "joints",
                                  "--babel-json", str(tmp_path / "raw" / "babel"), "--fps-table",
                                  str(tmp_path / "raw" / "featp_2_fps.json"), "-o", str(tmp_path / "b.zarr"),
                                  "--workers", "1", "-q"])
    assert result.exit_code == 0 and "(babel60)" in result.output, result.output
    samples = len(SkeletonStore.open(tmp_path / "b.zarr"))  # the summary counts samples, not input files
    assert samples > 4 and f": {samples} samples from 4 files," in result.output, result.output

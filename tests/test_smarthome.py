"""Toyota Smarthome: official split lists, the LCR-Net JSON and keypoint npz readers, and ``convert smarthome``."""
from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from click.testing import CliRunner

from schemas.datasets import get_dataset, parse_smarthome_name, smarthome_split_lists
from schemas.layouts import get_layout
from skeltools.cli import main
from skeltools.convert import ConversionError
from skeltools.convert_smarthome import convert_smarthome
from skeltools.readers.smarthome import normalize_screen, read_pose_json, track_one_person
from skeltools.store import SkeletonStore
from skeltools.synth_sets import smarthome_document, write_smarthome_corpus

NPZ = "WatchTV_p02_r03_v05_c05_LCRNet2d.npz"


def test_shipped_lists_are_the_official_ones(smarthome_fixtures):
    lists = smarthome_split_lists()
    files = {("cs", "train"): "train_CS", ("cs", "val"): "validation_CS", ("cs", "test"): "test_CS",
             ("cv1", "train"): "train_CV1", ("cv1", "val"): "validation_CV1", ("cv1", "test"): "test_CV1",
             ("cv2", "train"): "train_CV2", ("cv2", "val"): "validation_CV2", ("cv2", "test"): "test_CV2"}
    for key, name in files.items():
        lines = (smarthome_fixtures / "splits" / f"{name}.txt").read_text().split()
        assert lists[key] == {n.removesuffix(".mp4") for n in lines}, name


def test_split_counts_and_the_pour_fromcup_clips():
    lists = smarthome_split_lists()
    sizes = {k: len(v) for k, v in lists.items()}
    assert sizes == {("cs", "train"): 8831, ("cs", "val"): 1854, ("cs", "test"): 5444,
                     ("cv1", "train"): 1877, ("cv1", "val"): 3539, ("cv1", "test"): 1901,
                     ("cv2", "train"): 7806, ("cv2", "val"): 3539, ("cv2", "test"): 1901}
    cs = get_dataset("smarthome")
    kept = Counter()
    fromcup = Counter()
    for part in cs.parts:
        for name in lists["cs", part]:
            meta = parse_smarthome_name(name)
            if meta["activity"] in cs.class_names:
                assert cs.split_flags(meta) == {f"cs_{p}": p == part for p in cs.parts}
                kept[part] += 1
            else:
                assert meta["activity"] == "Pour.Fromcup"
                fromcup[part] += 1
    assert kept == {"train": 8829, "val": 1853, "test": 5433} and sum(kept.values()) == 16115
    assert fromcup == {"train": 2, "val": 1, "test": 11}
    cv = get_dataset("smarthome_cv")
    assert cv.num_classes == 19 and set(cv.class_names) < set(cs.class_names)
    cams = {p: {parse_smarthome_name(n)["camera"] for n in lists["cv2", p]} for p in cv.parts}
    assert cams == {"train": {1, 3, 4, 6, 7}, "val": {5}, "test": {2}}
    camera3 = sorted(n for n in lists["cv2", "train"] if n.endswith("_c03"))[0]
    assert cv.split_flags(parse_smarthome_name(camera3)) == {
        "cv1_train": False, "cv1_val": False, "cv1_test": False, "cv2_train": True, "cv2_val": False,
        "cv2_test": False}


def test_smarthome13_layout():
    layout = get_layout("smarthome13")
    layout.check()
    assert layout.joint_names[12] == "Head" and layout.bone_parents[0] == 2 and layout.center == 12


def test_real_keypoint_npz_converts_whole(smarthome_fixtures, tmp_path):
    kpts = np.load(smarthome_fixtures / NPZ)["kpts"]
    assert kpts.shape == (1379, 17, 2) and kpts.dtype == np.float32
    assert (kpts[:, :5] == kpts[:, :1]).all()  # nose, eyes and ears are the head point
    np.testing.assert_allclose([kpts[..., 0].min(), kpts[..., 0].max(), kpts[..., 1].min()],
                               [324.2673, 416.33618, 268.5916], rtol=1e-6)
    np.testing.assert_allclose(kpts[0, 0], [377.57758, 284.28818], rtol=1e-6)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / NPZ).write_bytes((smarthome_fixtures / NPZ).read_bytes())
    report = convert_smarthome([tmp_path / "in"], tmp_path / "s.zarr", workers=1, progress=False)
    store = SkeletonStore.open(tmp_path / "s.zarr")
    assert report["counts"]["frames"] == 1379 and store.attrs["layout"] == "coco17"
    assert store.attrs["coords"] == "xy" and store.attrs["persons"] == 1
    row = store.index.to_pylist()[0]
    assert row["sample_id"] == "WatchTV_p02_r03_v05_c05" and row["label"] == 30 and row["length"] == 1379
    assert (row["subject"], row["camera"], row["cs_test"], row["cs_train"]) == (2, 5, True, False)
    x = store[0]
    assert x.shape == (1379, 1, 17, 2)
    np.testing.assert_allclose(x[100, 0, 9], kpts[100, 9] / 320 - [1, 0.75], rtol=1e-6)


def test_json_layout_detections_and_empty_frames(tmp_path):
    pose = np.arange(39, dtype=np.float32).reshape(13, 3) / 10
    doc = {"njts": 13, "K": 5, "frames": [
        [{"pose2d": list(range(26)), "pose3d": [float(v) for v in pose.T.ravel()]}],
        [],
        [{"pose2d": [0] * 26, "pose3d": [float(v) for v in (pose + 5).T.ravel()]},
         {"pose2d": [0] * 26, "pose3d": [float(v) for v in (pose + 0.1).T.ravel()]}],
    ]}
    path = tmp_path / "a.json"
    path.write_text(json.dumps(doc))
    frames = read_pose_json(path)
    assert [f.shape for f in frames] == [(1, 13, 3), (0, 13, 3), (2, 13, 3)]
    np.testing.assert_array_equal(frames[0][0], pose)  # coordinate-major -> (joint, xyz)
    np.testing.assert_array_equal(read_pose_json(path, "xy")[0][0, 3], [3, 16])
    track, most = track_one_person(frames)
    assert most == 2 and (track[1] == 0).all()
    np.testing.assert_allclose(track[2], pose + 0.1)  # the detection nearest the track, not the first


def _write(path, content):
    path.write_text(content) if isinstance(content, str) else path.write_text(json.dumps(content))


GOOD = {"njts": 13, "frames": [[{"pose2d": [0.0] * 26, "pose3d": [0.1] * 39}]]}
BAD = [  # (content, what the error names)
    ("{not json", "not readable JSON"),
    ({"njts": 13}, "'frames'"),
    ({"njts": 17, "frames": [[]]}, "'njts'"),
    ({"frames": [[{"pose3d": [0.1] * 38}]]}, "'frames[0][0].pose3d'"),
    ({"frames": [[], {"pose3d": []}]}, "'frames[1]'"),
    ({"frames": [[{"pose3d": ["x"] * 39}]]}, "'frames[0][0].pose3d'"),
    ({"frames": [[{"pose3d": [float("nan")] * 39}]]}, "NaN"),
    ({"frames": []}, "'frames' is empty"),
]


def test_malformed_files_each_give_one_report_entry(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    walks = sorted(n for n in smarthome_split_lists()["cs", "train"] if n.startswith("Walk_"))
    good, bad = walks[:2], dict(zip(walks[2:], BAD))
    for name in good:
        _write(raw / f"{name}_pose3d.json", GOOD)
    for name, (content, _) in bad.items():
        _write(raw / f"{name}_pose3d.json", content)
    _write(raw / "Walk_03_r00_pose3d.json", GOOD)  # bad name
    _write(raw / "Pour.Fromcup_p03_r00_v01_c01_pose3d.json", GOOD)
    _write(raw / "Walk_p99_r00_v01_c01_pose3d.json", GOOD)  # on no list
    _write(raw / f"{walks[20]}_pose3d.json", {"frames": [[], []]})  # nobody detected
    with pytest.raises(ConversionError, match="9 of 14 files failed"):
        convert_smarthome([raw], tmp_path / "no.zarr", workers=1, progress=False)
    report = convert_smarthome([raw], tmp_path / "s.zarr", workers=2, keep_going=True, progress=False)
    failed = {f["file"].rsplit("/", 1)[1]: f["error"] for f in report["failed"]}
    assert set(failed) == {f"{n}_pose3d.json" for n in bad} | {"Walk_03_r00_pose3d.json"}
    for name, (_, key) in bad.items():
        error = failed[f"{name}_pose3d.json"]
        assert name in error and key in error, error
    skipped = {s["sample_id"]: s["reason"] for s in report["skipped"]}
    assert "not one of the 31" in skipped["Pour.Fromcup_p03_r00_v01_c01"]
    assert "not on the official CS lists" in skipped["Walk_p99_r00_v01_c01"]
    assert "no detection" in skipped[walks[20]]
    store = SkeletonStore.open(tmp_path / "s.zarr")
    assert store.index.column("sample_id").to_pylist() == good
    assert store.index.column("cs_train").to_pylist() == [True, True]


def test_synthetic_corpus_and_long_clip_round_trip(tmp_path):
    paths = write_smarthome_corpus(tmp_path / "raw", 40, seed=1, frames_range=(20, 60))
    again = write_smarthome_corpus(tmp_path / "raw2", 40, seed=1, frames_range=(20, 60))
    assert [p.read_bytes() for p in paths] == [p.read_bytes() for p in again]
    long = np.tile(np.linspace(0, 1, 13 * 3, dtype=np.float32).reshape(13, 3), (3500, 1, 1))
    long[:, 0, 0] = np.arange(3500) / 1000
    empty = np.zeros(3500, bool)
    empty[10] = True
    name = sorted(smarthome_split_lists()["cs", "val"])[0]
    _write(tmp_path / "raw" / f"{name}_pose3d.json", smarthome_document(long, empty, empty))
    report = convert_smarthome([tmp_path / "raw"], tmp_path / "s.zarr", workers=2, progress=False)
    assert report["counts"]["converted"] == 41 and report["counts"]["failed"] == 0
    store = SkeletonStore.open(tmp_path / "s.zarr")
    assert store.attrs["layout"] == "smarthome13" and store.attrs["dataset"] == "smarthome"
    i = store.index.column("sample_id").to_pylist().index(name)
    x = store[i]
    assert x.shape == (3500, 1, 13, 3) and store.index.column("cs_val")[i].as_py()
    assert (x[10] == 0).all()
    np.testing.assert_allclose(x[3499, 0, 0, 0], 3.499, atol=1e-5)
    labels = store.index.column("label").to_pylist()
    assert set(labels) == set(range(31))
    parts = Counter(p for p in ("cs_train", "cs_val", "cs_test") for v in store.index.column(p).to_pylist() if v)
    assert set(parts) == {"cs_train", "cs_val", "cs_test"} and sum(parts.values()) == 41


def test_cross_view_dataset_and_2d(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    lists = smarthome_split_lists()
    walk = sorted(n for n in lists["cv1", "train"] if n.startswith("Walk_"))[0]
    cook = sorted(n for n in lists["cs", "train"] if n.startswith("Cook.Stir_"))[0]
    for name in (walk, cook):
        _write(raw / f"{name}_pose3d.json", {"frames": [[{"pose2d": [320.0] * 13 + [240.0] * 13,
                                                           "pose3d": [0.1] * 39}]] * 5})
    report = convert_smarthome([raw], tmp_path / "cv.zarr", dataset="smarthome_cv", coords="xy", workers=1,
                               progress=False)
    assert "not one of the 19" in report["skipped"][0]["reason"]
    store = SkeletonStore.open(tmp_path / "cv.zarr")
    row = store.index.to_pylist()[0]
    assert row["label"] == store.attrs["class_names"].index("Walk") == 18
    assert row["cv1_train"] and row["cv2_train"] and not row["cv1_test"]
    np.testing.assert_allclose(store[0][0, 0, 0], normalize_screen(np.float32([320, 240])))
    assert store[0].shape == (5, 1, 13, 2)


def test_cli_synth_then_convert(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["synth", "smarthome", str(tmp_path / "raw"), "--samples", "6", "--seed", "2"])
    assert result.exit_code == 0 and "6 _pose3d.json files" in result.output, result.output
    result = runner.invoke(main, ["convert", "smarthome", str(tmp_path / "raw"), "-o", str(tmp_path / "s.zarr"),
                                  "--workers", "1", "-q"])
    assert result.exit_code == 0 and "6 samples" in result.output and "(smarthome)" in result.output, result.output

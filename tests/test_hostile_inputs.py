"""Hostile input (issue 14, points 4-6, 8, 9, 11-14; issue 20, point 4): each bad file becomes one failed entry
naming the file and what was expected, the good files convert bit-identically to a clean conversion, memory stays
bounded by what a file holds, and non-finite values are zeroed and counted after every step."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from skeltools.cli import main
from skeltools.convert import ConversionError, convert_ntu, find_skeleton_files, walk_files
from skeltools.convert_generic import convert_generic
from skeltools.convert_openpose import convert_openpose
from skeltools.convert_smarthome import convert_smarthome
from skeltools.readers.ntu import SkeletonParseError, parse_skeleton
from skeltools.readers.openpose import read_kinetics_video, select_tracked
from skeltools.readers.smarthome import normalize_screen
from skeltools.store import SkeletonStore
from skeltools.synth import format_skeleton, generate_ntu_sample, kinetics_json, write_ntu_corpus, \
    write_openpose_corpus
from skeltools.synth_sets import write_generic_corpus
from skeltools.validate import validate_store

RUN = dict(workers=1, progress=False)
REPO = Path(__file__).resolve().parents[1]


def assert_same_store(a: Path, b: Path) -> None:
    """The two stores hold the same frames, offsets, index and class names, bit for bit."""
    x, y = SkeletonStore.open(a), SkeletonStore.open(b)
    assert x.array("joint")[:].tobytes() == y.array("joint")[:].tobytes()
    assert np.array_equal(x.offsets, y.offsets) and x.index.equals(y.index)
    assert x.attrs["class_names"] == y.attrs["class_names"]


def failures(report: dict) -> dict[str, str]:
    return {Path(f["file"]).name: f["error"] for f in report["failed"]}


# ----------------------------------------------------------------------------------------------------------------
# Point 5: the hostile corpus, one source at a time


def test_hostile_ntu_files_fail_alone(tmp_path):
    good = tmp_path / "good"
    write_ntu_corpus(good, 3, seed=7)
    convert_ntu([good], tmp_path / "clean.zarr", **RUN)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "S001C001P001R001A001.skeleton").write_text("9223372036854775807\n0\n")
    (bad / "S001C001P001R001A002.skeleton").write_text("4000000000\r\n0\r\n")
    report = convert_ntu([good, bad], tmp_path / "s.zarr", keep_going=True, **RUN)
    errors = failures(report)
    assert set(errors) == {"S001C001P001R001A001.skeleton", "S001C001P001R001A002.skeleton"}
    assert "A001.skeleton:1: expected a frame count the file's 22 bytes can hold (at most 2), found " \
           "9223372036854775807" in errors["S001C001P001R001A001.skeleton"]
    assert "found 4000000000" in errors["S001C001P001R001A002.skeleton"]
    assert [f["line"] for f in report["failed"]] == [1, 1]
    assert_same_store(tmp_path / "clean.zarr", tmp_path / "s.zarr")


def _kinetics_corpus(root: Path) -> Path:
    write_openpose_corpus(root, 4, seed=3, format="kinetics", frames=20)
    return root


def _bad_kinetics(folder: Path, good: dict) -> dict[str, str]:
    """Write the hostile Kinetics files into ``folder``; return file name -> what its error must say."""
    folder.mkdir()
    expected = {}
    text = json.dumps(good)
    first = json.dumps(good["data"][1]["frame_index"])
    for name, value, says in [("fi_2p63", "9223372036854775808", "data[1].frame_index is 9223372036854775808"),
                              ("fi_m2p63", "-9223372036854775808", "data[1].frame_index is -9223372036854775808"),
                              ("fi_2p70", str(2**70), f"data[1].frame_index is {2**70}"),
                              ("fi_1e9", "1e9", "data[1] has no integer 'frame_index'"),
                              ("fi_10p9", "1000000000", "frame number 1000000000 is 999999999 frames after")]:
        (folder / f"{name}.json").write_text(text.replace(f'"frame_index": {first}', f'"frame_index": {value}', 1))
        expected[f"{name}.json"] = says
    label = f'"label_index": {json.dumps(good["label_index"])}'
    for name, value, says in [("li_1e30", "1e30", "'label_index': label 1e+30 is not an integer"),
                              ("li_70000", "70000", "label 70000 is outside 0..32767")]:
        (folder / f"{name}.json").write_text(text.replace(label, f'"label_index": {value}'))
        expected[f"{name}.json"] = says
    (folder / "deep.json").write_text('{"data": ' + "[" * 100_000 + "]" * 100_000 + "}")
    expected["deep.json"] = "not readable JSON (nested too deeply)"
    (folder / "frame_000000000000_keypoints.json").write_text('{"version": 1.3, "people": []}')
    expected["frame_000000000000_keypoints.json"] = "missing key 'data' (an OpenPose per-frame file: use --format frames)"
    return expected


def test_hostile_kinetics_files_fail_alone(tmp_path):
    raw = _kinetics_corpus(tmp_path / "raw")
    convert_openpose([raw], tmp_path / "clean.zarr", **RUN)
    good = json.loads(next((raw / "kinetics_train").glob("*.json")).read_text())
    expected = _bad_kinetics(tmp_path / "bad", good)
    report = convert_openpose([raw, tmp_path / "bad"], tmp_path / "s.zarr", keep_going=True, **RUN)
    errors = failures(report)
    assert set(errors) == set(expected)
    for name, says in expected.items():
        assert errors[name].startswith(str(tmp_path / "bad" / name)) and says in errors[name], errors[name]
    assert_same_store(tmp_path / "clean.zarr", tmp_path / "s.zarr")


def test_hostile_frame_number_in_a_file_name(tmp_path):
    raw = tmp_path / "raw"
    write_openpose_corpus(raw, 2, seed=5, format="frames", frames=20)
    options = dict(format="frames", image_size=(1920, 1080), **RUN)
    convert_openpose([raw], tmp_path / "clean.zarr", **options)
    bad = tmp_path / "bad"
    bad.mkdir()
    person = '{"version":1.3,"people":[{"pose_keypoints_2d":[' + ",".join(["10,20,0.5"] * 18) + "]}]}"
    for number in (0, 1, 2, 999999999999):
        (bad / f"v1_{number:012d}_keypoints.json").write_text(person)
    report = convert_openpose([raw, bad], tmp_path / "s.zarr", keep_going=True, **options)
    assert report["failed"] == [{"file": str(bad / "v1"), "line": 0, "error": (
        f"{bad / 'v1_999999999999_keypoints.json'}: frame number 999999999999 is outside -2^31..2^31-1")}]
    assert report["counts"]["files"] == 2 * 20 + 4  # per-frame inputs count files, not videos
    assert_same_store(tmp_path / "clean.zarr", tmp_path / "s.zarr")


def _generic_corpus(root: Path) -> Path:
    write_generic_corpus(root, 8, seed=2, fmt="npz", axes="TMVC")
    return root


def test_hostile_generic_files_and_symlink_loops(tmp_path):
    raw = _generic_corpus(tmp_path / "raw")
    options = dict(layout="ntu25", labels=raw / "labels.csv", axes="TMVC", **RUN)
    convert_generic([raw / "keypoints"], tmp_path / "clean.zarr", **options)
    keypoints = raw / "keypoints"
    data = (keypoints / "clip0000.npz").read_bytes()
    (keypoints / "cut.npz").write_bytes(data[:len(data) // 2])
    os.symlink(".", keypoints / "a")
    os.symlink(".", keypoints / "b")
    os.symlink("loop.npy", keypoints / "loop.npy")
    first_label = (raw / "labels.csv").read_text().splitlines()[1].split(",")[1]
    with open(raw / "labels.csv", "a") as fh:
        fh.write(f"cut,{first_label}\nloop,{first_label}\n")
    report = convert_generic([keypoints], tmp_path / "s.zarr", keep_going=True, **options)
    errors = failures(report)
    assert set(errors) == {"cut.npz", "loop.npy"} and report["skipped"] == []  # no duplicate from a/ or b/
    assert errors["cut.npz"].startswith(f"{keypoints / 'cut.npz'}: cannot be read")
    assert errors["loop.npy"].startswith(f"{keypoints / 'loop.npy'}: cannot be read") and "symbolic links" in \
        errors["loop.npy"]
    assert_same_store(tmp_path / "clean.zarr", tmp_path / "s.zarr")


# ----------------------------------------------------------------------------------------------------------------
# Point 4: non-finite values, also those normalization creates


def test_ntu_overflow_in_centring_is_zeroed_and_counted(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    sample = generate_ntu_sample(np.random.default_rng(1), 27, name="S001C001P001R001A027", frames=20,
                                 empty_frame_ratio=0.0, noise_body_ratio=0.0)
    lines = format_skeleton(sample).decode().split("\r\n")
    first_joint = next(i for i, line in enumerate(lines) if line.strip() == "25") + 1
    for joint, x in ((1, "3e38"), (5, "-3e38")):  # the centre (joint 1) and another joint of frame 1
        lines[first_joint + joint] = " ".join([x, *lines[first_joint + joint].split()[1:]])
    path = raw / "S001C001P001R001A027.skeleton"
    path.write_text("\r\n".join(lines))
    assert np.isfinite(parse_skeleton(path.read_bytes()).xyz).all()  # finite as read: -3e38 - 3e38 overflows
    report = convert_ntu([raw], tmp_path / "s.zarr", **RUN)
    assert report["counts"]["nonfinite_body_frames"] == 1
    assert report["nonfinite_body_frames"] == {"S001C001P001R001A027": 1}
    x = SkeletonStore.open(tmp_path / "s.zarr")[0]
    assert np.isfinite(x).all() and not x[0, 0].any() and x[1, 0].any()
    assert validate_store(tmp_path / "s.zarr").ok


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e400", "null"])
def test_kinetics_non_finite_values_are_zeroed_and_counted(tmp_path, token):
    rng = np.random.default_rng(0)
    frames = [rng.uniform(0.1, 0.9, (1, 18, 3)).astype(np.float32) for _ in range(5)]
    text = kinetics_json(frames, "x", 3, image_size=(1, 1))
    doc = json.loads(text)
    doc["data"][2]["skeleton"][0]["pose"][4] = "TOKEN"
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "v.json").write_text(json.dumps(doc).replace('"TOKEN"', token))
    report = convert_openpose([raw], tmp_path / "s.zarr", **RUN)
    assert report["counts"]["nonfinite_body_frames"] == 1 and report["nonfinite_body_frames"] == {"v": 1}
    x = SkeletonStore.open(tmp_path / "s.zarr")[0]
    assert np.isfinite(x).all() and not x[2].any() and x[1].any() and x[3].any()


def test_pixels_overflowing_in_normalization_are_counted(tmp_path):
    raw = tmp_path / "raw"
    (raw / "v").mkdir(parents=True)
    person = [10.0, 20.0, 0.5] * 18
    for t in range(3):
        values = person if t != 1 else [3e38, 20.0, 0.5] + person[3:]
        doc = {"version": 1.3, "people": [{"pose_keypoints_2d": values}]}
        (raw / "v" / f"v_{t:012d}_keypoints.json").write_text(json.dumps(doc))
    report = convert_openpose([raw], tmp_path / "s.zarr", format="frames", image_size=(0.001, 1), **RUN)
    assert report["nonfinite_body_frames"] == {"v": 1}
    x = SkeletonStore.open(tmp_path / "s.zarr")[0]
    assert np.isfinite(x).all() and not x[1].any() and x[0].any()


def test_babel_overflow_in_pre_normalization_is_zeroed_and_counted(tmp_path):
    from skeltools.convert_babel import convert_babel
    from skeltools.readers.babel import SMPLH_TO_NTU
    from skeltools.synth_sets import write_babel_corpus

    paths = write_babel_corpus(tmp_path / "raw", 2, seed=3, seconds_range=(6.0, 6.0))
    first = sorted(paths["joints"].rglob("*.npz"))[0]
    with np.load(first) as npz:
        joint_pos, fps = npz["joint_pos"].reshape(len(npz["joint_pos"]), 73, 3), npz["mocap_framerate"]
    joint_pos[0, SMPLH_TO_NTU[1], 0], joint_pos[0, SMPLH_TO_NTU[5], 0] = 3e38, -3e38  # centre and a shoulder
    np.savez(first, joint_pos=joint_pos.reshape(len(joint_pos), 219), mocap_framerate=fps)
    report = convert_babel([paths["joints"]], tmp_path / "b.zarr", source="joints", babel_json=paths["babel_json"],
                           fps_table=paths["fps_table"], **RUN)
    assert report["counts"]["nonfinite_body_frames"] >= 1 and len(report["nonfinite_body_frames"]) == 1
    assert np.isfinite(SkeletonStore.open(tmp_path / "b.zarr").array("joint")[:]).all()
    assert validate_store(tmp_path / "b.zarr").ok


# ----------------------------------------------------------------------------------------------------------------
# Point 6: memory bounded by what a file holds


def test_frame_count_beyond_the_file_size_is_refused_under_a_memory_limit(tmp_path):
    raw = tmp_path / "raw"
    write_ntu_corpus(raw, 2, seed=3)
    (raw / "S001C001P001R001A001.skeleton").write_bytes(b"1500000000\n0\n0\n0")  # 16 bytes
    code = textwrap.dedent("""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, 4 * 2**30))  # 1.5e9 int32 frame counts alone take 6 GB
        from skeltools.convert import convert_ntu
        report = convert_ntu([sys.argv[1]], sys.argv[2], workers=1, keep_going=True, progress=False)
        print(report["counts"]["converted"], report["failed"][0]["error"])
    """)
    env = dict(os.environ, PYTHONPATH=str(REPO), NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", code, str(raw), str(tmp_path / "s.zarr")], capture_output=True,
                          text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == (f"2 {raw / 'S001C001P001R001A001.skeleton'}:1: expected a frame count the file's "
                                   f"16 bytes can hold (at most 3), found 1500000000")


def test_declared_array_shape_beyond_the_file_is_refused(tmp_path):
    from skeltools.readers.generic import GenericInputError, read_keypoints

    path = tmp_path / "big.npy"
    np.save(path, np.zeros((2, 1, 25, 3), np.float32))
    path.write_bytes(path.read_bytes().replace(b"'shape': (2,", b"'shape': (9,"))  # same header length
    with pytest.raises(GenericInputError, match=r"declares shape \(9, 1, 25, 3\) of float32 \(2700 bytes\), but the "
                                                r"file holds 600 bytes"):
        read_keypoints(path, "TMVC")
    rows = "frame,person,joint,x,y,z\n0,0,0,1,2,3\n1000000000,0,0,1,2,3\n"
    (tmp_path / "far.csv").write_text(rows)
    with pytest.raises(GenericInputError, match="line 3: frame 1000000000 is far beyond the file's other rows"):
        read_keypoints(tmp_path / "far.csv")


# ----------------------------------------------------------------------------------------------------------------
# Point 8: symlink loops in input listing


def test_listing_follows_each_real_folder_once(tmp_path):
    raw = tmp_path / "raw"
    write_ntu_corpus(raw / "sub", 2, seed=1)
    os.symlink(".", raw / "a")
    os.symlink(".", raw / "b")
    os.symlink("..", raw / "sub" / "up")
    os.symlink(raw / "sub", tmp_path / "again")
    found = find_skeleton_files([raw, tmp_path / "again"])
    assert sorted(p.relative_to(raw).as_posix() for p in found) == sorted(
        f"sub/{p.name}" for p in (raw / "sub").iterdir() if p.suffix == ".skeleton")
    assert len(list(walk_files([raw], ("*",)))) == 2


# ----------------------------------------------------------------------------------------------------------------
# Point 9: convert generic persons and a split that failed files do not move


def test_generic_person_id_2000_does_not_pad_the_corpus(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    rows = ["frame,person,joint,x,y,z"] + [f"{t},0,{v},{t + 1},{v + 1},1" for t in range(3) for v in range(4)]
    (raw / "a.csv").write_text("\n".join(rows) + "\n")
    (raw / "b.csv").write_text("\n".join(rows + ["1,2000,0,9,9,9"]) + "\n")
    (tmp_path / "labels.csv").write_text("sample_id,label\na,0\nb,1\n")
    tiny = {"name": "tiny", "joints": ["hip", "spine", "head", "arm"], "parents": ["hip", "hip", "spine", "spine"]}
    convert_generic([raw], tmp_path / "g.zarr", layout=tiny, labels=tmp_path / "labels.csv", **RUN)
    store = SkeletonStore.open(tmp_path / "g.zarr")
    assert store.attrs["persons"] == 2 and store[1][1, 1, 0].tolist() == [9, 9, 9]
    report = convert_generic([raw], tmp_path / "one.zarr", layout=tiny, labels=tmp_path / "labels.csv",
                             max_persons=1, **RUN)
    assert report["notes"] == {"b": ["2 persons, kept 1"]}  # capped and reported


def test_generic_split_ignores_files_that_fail(tmp_path):
    raw = tmp_path / "raw"
    paths = write_generic_corpus(raw, 30, seed=4, fmt="npy", axes="TMVC", num_classes=3)
    options = dict(layout="ntu25", labels=raw / "labels.csv", axes="TMVC", keep_going=True, **RUN)
    convert_generic([raw / "keypoints"], tmp_path / "clean.zarr", **options)
    lines = (raw / "labels.csv").read_text().splitlines()
    with open(raw / "labels.csv", "a") as fh:
        for i in range(10):  # files whose header passes the listing but whose channels fail processing
            np.save(raw / "keypoints" / f"bad{i:02d}.npy", np.zeros((5, 1, 25, 2), np.float32))
            fh.write(f"bad{i:02d},{lines[1 + i % 3].split(',')[1]}\n")
    report = convert_generic([raw / "keypoints"], tmp_path / "s.zarr", **options)
    assert report["counts"]["failed"] == 10 and report["counts"]["converted"] == len(paths)
    assert_same_store(tmp_path / "clean.zarr", tmp_path / "s.zarr")


# ----------------------------------------------------------------------------------------------------------------
# Point 11: Kinetics without --dataset


def test_kinetics_without_dataset_names_classes_from_the_label_files(tmp_path):
    raw = _kinetics_corpus(tmp_path / "raw")
    convert_openpose([raw], tmp_path / "s.zarr", **RUN)
    store = SkeletonStore.open(tmp_path / "s.zarr")
    named = {e["label_index"]: e["label"] for part in ("train", "val")
             for e in json.loads((raw / f"kinetics_{part}_label.json").read_text()).values()}
    names = store.attrs["class_names"]
    assert len(names) == max(named) + 1 and all(names[i] == n for i, n in named.items())
    assert all(names[i] == str(i) for i in set(range(len(names))) - set(named))
    assert validate_store(tmp_path / "s.zarr").ok
    raw2 = tmp_path / "raw2"
    raw2.mkdir()
    frames = [np.full((1, 18, 3), 0.5, np.float32)] * 3
    (raw2 / "v.json").write_text(kinetics_json(frames, "", 4, image_size=(1, 1)))
    convert_openpose([raw2], tmp_path / "n.zarr", **RUN)
    assert SkeletonStore.open(tmp_path / "n.zarr").attrs["class_names"] == ["0", "1", "2", "3", "4"]
    assert validate_store(tmp_path / "n.zarr").ok


# ----------------------------------------------------------------------------------------------------------------
# Point 12: tracking score-free poses


def _score_free_video(rng, frames: int = 76) -> list[np.ndarray]:
    """tf-pose output packed as Kinetics: 2-4 people a frame, coordinates in [0, 1], every score 0."""
    start = rng.uniform(0.1, 0.9, (4, 18, 2))
    video = []
    for t in range(frames):
        n = 2 + t % 3
        xy = start[:n] + 0.001 * t
        xy[:, 5] = 0  # an undetected joint
        video.append(np.concatenate([xy, np.zeros((n, 18, 1))], -1).astype(np.float32))
    return video


def test_score_free_people_are_tracked_not_dropped(tmp_path):
    video = _score_free_video(np.random.default_rng(2))
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "S004C002P003R001A055_rgb.json").write_text(kinetics_json(video, "", 55, image_size=(1, 1)))
    report = convert_openpose([raw], tmp_path / "s.zarr", **RUN)
    x = SkeletonStore.open(tmp_path / "s.zarr")[0]
    assert x.shape[0] == 76 and x[:, 0].any(axis=(1, 2)).all() and x[:, 1].any(axis=(1, 2)).all()
    notes = report["notes"]["S004C002P003R001A055_rgb"]
    assert notes[0].startswith("every keypoint score is 0")
    people = sum(len(p) for p in video)
    assert notes[1] == f"{people - 2 * 76} of {people} person-frames dropped (at most 2 persons kept)"
    assert (x[:, :, 5] == 0).all() and set(np.unique(x[..., 2])) == {0.0, 1.0}
    # the reference mode stays the reference: no score is given
    convert_openpose([raw], tmp_path / "ref.zarr", persons="stgcn", **RUN)
    assert not SkeletonStore.open(tmp_path / "ref.zarr")[0].any()


def test_genuine_tf_pose_file_keeps_every_frame(fixtures, tmp_path):
    """hluong89/st_gcn_preprocessing_NTU_RGB_images@6664f6a4 ``S004C002P003R001A055_rgb.json`` (76 frames, 2-4
    people, every score 0), when the fixtures folder holds it."""
    path = fixtures / "kinetics" / "S004C002P003R001A055_rgb.json"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    (tmp_path / "in").mkdir()
    shutil.copy(path, tmp_path / "in")
    report = convert_openpose([tmp_path / "in"], tmp_path / "s.zarr", **RUN)
    x = SkeletonStore.open(tmp_path / "s.zarr")[0]
    seen = x[..., :2].any(axis=(2, 3))
    assert x.shape[0] == 76 and seen.sum(axis=0).tolist() == [76, 71]
    assert report["notes"]["S004C002P003R001A055_rgb"][:2] == [
        "every keypoint score is 0 (no confidences, as tf-pose writes): joints with coordinates given score 1",
        "13 of 160 person-frames dropped (at most 2 persons kept)"]


def test_tracking_drops_are_reported_for_scored_people():
    frames = [np.stack([np.full((18, 3), 0.5, np.float32), np.full((18, 3), 0.2, np.float32)])] * 4
    frames = [f.copy() for f in frames]
    for t, f in enumerate(frames):
        f[1, :, 0] += 10  # far away: a second track
    from skeltools.convert_openpose import dropped_people
    from skeltools.readers.openpose import Frames

    people = Frames.of(frames)
    assert dropped_people(people, select_tracked(people, 1)) == ["4 of 8 person-frames dropped (at most 1 persons "
                                                                 "kept)"]
    assert dropped_people(people, select_tracked(people, 2)) == []


# ----------------------------------------------------------------------------------------------------------------
# Point 13: Smarthome undetected keypoints


def test_smarthome_undetected_keypoints_stay_zero(smarthome_fixtures, tmp_path):
    name = "WatchTV_p02_r03_v05_c05_LCRNet2d.npz"
    kpts = np.load(smarthome_fixtures / name)["kpts"]
    kpts[3] = 0  # an empty frame
    kpts[7, [0, 9, 16]] = 0  # three undetected joints
    (tmp_path / "in").mkdir()
    np.savez_compressed(tmp_path / "in" / name, kpts=kpts)
    convert_smarthome([tmp_path / "in"], tmp_path / "s.zarr", **RUN)
    x = SkeletonStore.open(tmp_path / "s.zarr")[0][:, 0]
    zero = (kpts == 0).all(-1)
    assert zero.sum() == 17 + 3 and (x[zero] == 0).all()
    np.testing.assert_allclose(x[~zero], kpts[~zero] / 320 - [1, 0.75], rtol=1e-6)
    assert np.array_equal(normalize_screen(np.float32([[0, 0], [0, 5], [640, 480]])),
                          np.float32([[0, 0], [-1, 5 / 320 - 0.75], [1, 0.75]]))


def test_smarthome_json_2d_undetected_keypoints_stay_zero(tmp_path):
    from skeltools.synth_sets import write_smarthome_corpus

    write_smarthome_corpus(tmp_path / "raw", 1, seed=0, frames_range=(5, 6))
    path = next((tmp_path / "raw").rglob("*.json"))
    doc = json.loads(path.read_text())
    det = doc["frames"][2][0]
    det["pose2d"][4] = det["pose2d"][4 + 13] = 0  # joint 4 undetected
    path.write_text(json.dumps(doc))
    convert_smarthome([tmp_path / "raw"], tmp_path / "s.zarr", coords="xy", **RUN)
    x = SkeletonStore.open(tmp_path / "s.zarr")[0]
    assert (x[2, 0, 4] == 0).all() and (x[2, 0, 3] != 0).all()


# ----------------------------------------------------------------------------------------------------------------
# Point 14: messages


def test_smarthome_says_why_no_file_qualifies(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "clip.npz").write_bytes(b"")
    (raw / "Pour.Fromcup_p02_r00_v01_c03.npz").write_bytes(b"")
    with pytest.raises(ConversionError) as caught:
        convert_smarthome([raw], tmp_path / "s.zarr", dataset="smarthome_cv", **RUN)
    message = str(caught.value)
    assert message.startswith(f"no npz pose file qualifies in {raw}: ")
    assert "1 file(s): expected a file name Activity_pSS_rRR_vVV_cCC[...].npz" in message
    assert "1 file(s): class Pour.Fromcup is not one of the 19 smarthome_cv classes" in message


def test_every_file_failed_keeps_the_reasons_and_the_report(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "S001C001P001R001A001.skeleton").write_text("x\n")
    (raw / "S001C001P001R001A002.skeleton").write_text("1\n1\n")
    with pytest.raises(ConversionError, match=r"no sample could be converted \(0 skipped, 2 failed: .*A001.skeleton:1: "
                                              r"expected a number in a frame count, found 'x'; .*A002.skeleton"):
        convert_ntu([raw], tmp_path / "s.zarr", keep_going=True, **RUN)
    work = tmp_path / ".s.zarr.partial"
    assert len(json.loads((work / "report.json").read_text())["failed"]) == 2
    with pytest.raises(ConversionError, match=f"Every failure is in {work / 'report.json'}"):
        convert_ntu([raw], tmp_path / "s.zarr", **RUN)


def test_cli_prints_where_the_report_is_and_no_numpy_warning(tmp_path):
    raw = tmp_path / "raw"
    write_ntu_corpus(raw, 1, seed=1)
    (raw / "S001C001P001R001A001.skeleton").write_text("3\n")
    rng = np.random.default_rng(0)
    frames = [rng.uniform(0.1, 0.9, (1, 18, 3)).astype(np.float32) for _ in range(3)]
    (tmp_path / "k").mkdir()
    doc = json.loads(kinetics_json(frames, "", 1, image_size=(1, 1)))
    doc["data"][0]["skeleton"][0]["pose"][0] = 1e300  # finite, beyond float32: numpy warns of an overflow
    (tmp_path / "k" / "v.json").write_text(json.dumps(doc))
    runner = CliRunner()
    result = runner.invoke(main, ["convert", "ntu", str(raw), "-o", str(tmp_path / "s.zarr"), "-q", "--workers", "1"])
    assert result.exit_code == 1 and f"Every failure is in {tmp_path / '.s.zarr.partial' / 'report.json'}" in \
        result.output
    done = subprocess.run([sys.executable, "-m", "skeltools", "convert", "openpose", str(tmp_path / "k"), "-o",
                           str(tmp_path / "k.zarr"), "-q", "--workers", "1"], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert json.loads((tmp_path / "k.zarr" / "report.json").read_text())["nonfinite_body_frames"] == {"v": 1}


def test_info_on_a_file_that_is_no_store(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    np.savez(tmp_path / "objects.npz", a=np.array([{"x": 1}], dtype=object))
    runner = CliRunner()
    result = runner.invoke(main, ["info", str(tmp_path / "notes.txt")])
    assert result.exit_code == 1 and result.output == (
        f"error: {tmp_path / 'notes.txt'}: not a skeltools store (a .zarr folder) nor an AMASS .npz (a zip of arrays)\n")
    result = runner.invoke(main, ["info", str(tmp_path / "objects.npz")])
    assert result.exit_code == 1 and "hold Python objects" in result.output and "pickle" not in result.output


def test_kinetics_one_based_label_index_is_warned_about(tmp_path, fixtures):
    names = (fixtures / "kinetics" / "k400_class_names.txt").read_text().split("\n")
    frames = [np.full((1, 18, 3), 0.5, np.float32)] * 3
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "one.json").write_text(kinetics_json(frames, names[9], 10, image_size=(1, 1)))  # 1-based
    (raw / "zero.json").write_text(kinetics_json(frames, names[9], 9, image_size=(1, 1)))
    (raw / "top.json").write_text(kinetics_json(frames, names[399], 400, image_size=(1, 1)))
    logs = []
    report = convert_openpose([raw], tmp_path / "s.zarr", dataset="kinetics400", keep_going=True, log=logs.append,
                              **RUN)
    assert report["notes"]["one"] == [f"label_index 10 looks 1-based: the file's label {names[9]!r} is class 9 "
                                      f"(stored as given)"]
    assert "zero" not in report["notes"]
    assert failures(report) == {"top.json": f"{raw / 'top.json'}: label 400 is outside 0..399 of the 400 classes "
                                            f"(1-based numbering?)"}
    assert any(m.startswith("warning: 1 video(s) give a label_index that looks 1-based against the kinetics400")
               for m in logs)


def test_frames_given_as_kinetics_and_back_get_a_hint(tmp_path):
    raw = tmp_path / "raw"
    (raw / "v").mkdir(parents=True)
    (raw / "v" / "v_000000000000_keypoints.json").write_text('{"people": []}')
    with pytest.raises(ConversionError, match="use --format frames"):
        convert_openpose([raw], tmp_path / "k.zarr", **RUN)
    (tmp_path / "kin").mkdir()
    (tmp_path / "kin" / "clip.json").write_text(kinetics_json([np.ones((1, 18, 3), np.float32)], image_size=(1, 1)))
    with pytest.raises(ConversionError, match="use --format kinetics"):
        convert_openpose([tmp_path / "kin"], tmp_path / "f.zarr", format="frames", normalize="none", **RUN)


# ----------------------------------------------------------------------------------------------------------------
# Issue 20, point 4: convert generic --axes sanity checks


def test_axes_problems_rules():
    from skeltools.convert_generic import axes_problems

    assert axes_problems({"a.npy": (50, 2, 25, 3)}, "TMVC", 2) == ([], "")
    warnings, fatal = axes_problems({"a.npy": (2, 109, 25, 3), "b.npy": (80, 2, 25, 3)}, "MTVC", 2)
    assert warnings == ["a.npy: 109 persons and 2 frames with --axes MTVC (more than --max-persons 2): likely "
                        "--axes TMVC"] and fatal == ""
    _, fatal = axes_problems({"a.npy": (2, 109, 25, 3), "b.npy": (1, 60, 25, 3)}, "MTVC", 16)
    assert fatal == ("the arrays do not look like --axes MTVC: a.npy reads as 2 frame(s) of 109 persons (T, M, V, C "
                     "= (2, 109, 25, 3)), and all 2 files have at most 2 frames; likely --axes TMVC")
    _, fatal = axes_problems({"a.npy": (2, 5, 25, 3), "b.npy": (1, 8, 25, 3)}, "TMVC", 16)
    assert "all 2 files have at most 2 frames; likely --axes MTVC" in fatal
    assert axes_problems({"a.npy": (1, 1, 25, 3), "b.npy": (2, 1, 25, 3)}, "TMVC", 2) == ([], "")


def test_wrong_axes_fail_naming_the_file(tmp_path):
    raw = tmp_path / "raw"
    write_generic_corpus(raw, 3, seed=1, fmt="npy", axes="TMVC")
    with pytest.raises(ConversionError, match=r"the arrays do not look like --axes MTVC: .*clip0000.npy reads as 2 "
                                              r"frame\(s\) of \d+ persons .*; likely --axes TMVC"):
        convert_generic([raw / "keypoints"], tmp_path / "g.zarr", layout="ntu25", labels=raw / "labels.csv",
                        axes="MTVC", **RUN)

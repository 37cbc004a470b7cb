"""The numba JSON path of the OpenPose / Kinetics readers against the json path, and the BODY_25B -> COCO-18 map."""
from __future__ import annotations

import json

import numpy as np
import pytest

from schemas.layouts import BODY25B, COCO18, TO_COCO18, joint_sources
from skeltools.convert import ConversionError
from skeltools.convert_openpose import convert_openpose
from skeltools.readers import jsonscan
from skeltools.readers.openpose import (OpenPoseError, _frame_from_json, _frame_from_tape, _kinetics_from_json,
                                        _kinetics_from_tape, _load, map_joints, read_kinetics_video,
                                        read_openpose_frame)
from skeltools.store import SkeletonStore

RUN = dict(workers=1, progress=False)


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, np.float32).view(np.uint32)


def _fast(path, kinetics: bool, num_joints: int):
    """The tape path alone: its result, or None where it hands the file to json."""
    raw = path.read_bytes()
    buf = np.frombuffer(raw, np.uint8)
    ok, count, *tape = jsonscan.scan(buf)
    if not ok:
        return None
    out = (_kinetics_from_tape if kinetics else _frame_from_tape)(buf, count, *tape, num_joints)
    return out if out[0] else None


def _assert_same_frame(path, num_joints: int, expect_fast: bool = True):
    reference = _frame_from_json(path, _load(path, path.read_bytes()), num_joints)
    fast = _fast(path, False, num_joints)
    assert (fast is not None) == expect_fast, path
    assert np.array_equal(_bits(read_openpose_frame(path, num_joints)), _bits(reference))
    if fast is not None:
        assert fast[1].shape == reference.shape and np.array_equal(_bits(fast[1]), _bits(reference))


def _assert_same_video(path, expect_fast: bool = True):
    reference = _kinetics_from_json(path, _load(path, path.read_bytes()), 18)
    assert (_fast(path, True, 18) is not None) == expect_fast, path
    video = read_kinetics_video(path)
    assert video.frame_index.tolist() == reference.frame_index.tolist()
    assert video.label_index == reference.label_index
    assert video.frames.counts.tolist() == reference.frames.counts.tolist()
    assert np.array_equal(_bits(video.frames.points), _bits(reference.frames.points))


# ----------------------------------------------------------------------------------------------------------------
# Genuine files: the fast path reads every one, bit for bit as json does


def test_genuine_files_fast_path_equals_json(fixtures):
    frames = sorted((fixtures / "openpose").rglob("*.json"))
    videos = [p for p in sorted((fixtures / "kinetics").glob("*.json")) if not p.name.endswith("_label.json")]
    if not frames or not videos:
        pytest.skip("OpenPose / Kinetics fixtures are missing")
    for path in frames:
        _assert_same_frame(path, 18 if "coco18" in path.parent.name else 25)
    for path in videos:
        _assert_same_video(path)


# ----------------------------------------------------------------------------------------------------------------
# Random synthetic files: number spellings, layouts, key orders


def _number(rng: np.random.Generator, x: float) -> str:
    """One of the spellings real producers use."""
    style = rng.integers(7)
    if style == 0:
        return repr(float(x))  # full precision (json.dumps), up to 17 digits
    if style == 1:
        return f"{x:.3f}"  # the Kinetics release
    if style == 2:
        return f"{x:.6g}"  # OpenPose's C++ output
    if style == 3:
        return repr(float(np.float32(x)))  # float32 values written as doubles
    if style == 4:
        return f"{x:.4e}"
    if style == 5:
        return str(int(x))
    return "-0.0" if rng.random() < 0.5 else "0"


def _array(rng, values) -> str:
    return "[" + ",".join(_number(rng, v) for v in values) + "]"


def _frame_text(rng, people: list[np.ndarray], pretty: bool) -> str:
    parts = []
    for person in people:
        key = "pose_keypoints" if rng.random() < 0.2 else "pose_keypoints_2d"
        members = [f'"{key}": {_array(rng, person.reshape(-1))}', '"face_keypoints_2d": []',
                   '"person_id": [-1]', '"hand_left_keypoints_2d": [1.5, 2]']
        rng.shuffle(members)
        parts.append("{" + ", ".join(members) + "}")
    sep = ",\n  " if pretty else ","
    return '{"version":1.3,\t"people": [' + sep.join(parts) + "]}" + ("\n" if pretty else "")


def _kinetics_text(rng, frames: list[np.ndarray], label) -> str:
    data = []
    for t, people in enumerate(frames):
        skeletons = [f'{{"pose": {_array(rng, p[:, :2].reshape(-1))}, "score": {_array(rng, p[:, 2])}}}'
                     for p in people]
        data.append(f'{{"skeleton": [{", ".join(skeletons)}], "frame_index": {t + 1}}}')
    return f'{{"label": "x y", "data": [\n{",".join(data)}], "label_index": {json.dumps(label)}}}'


def _people(rng, count: int, v: int) -> np.ndarray:
    scale = rng.choice([1.0, 1000.0, 1e-7])
    out = rng.random((count, v, 3)) * scale
    out[rng.random((count, v)) < 0.2] = 0.0
    return out


def test_random_files_fast_path_equals_json(tmp_path):
    rng = np.random.default_rng(6)
    for i in range(60):
        v = int(rng.choice([18, 25]))
        path = tmp_path / f"f{i}.json"
        path.write_text(_frame_text(rng, list(_people(rng, int(rng.integers(0, 4)), v)), pretty=i % 2 == 0))
        _assert_same_frame(path, v)
    for i in range(20):
        path = tmp_path / f"k{i}.json"
        frames = [_people(rng, int(rng.integers(0, 4)), 18) for _ in range(int(rng.integers(1, 12)))]
        path.write_text(_kinetics_text(rng, frames, [7, "12", "", None][i % 4]))
        _assert_same_video(path)


@pytest.mark.parametrize("text, fast", [
    ('{"people": [{"pose_keypoints_2d": [NaN' + ",0" * 53 + "]}]}", False),  # json extension: json reads it
    ('{"people": [{"pose_keypoints_2d": [0.12345678901234567890123' + ",0" * 53 + "]}]}", False),  # 23 digits
    ('{"people": [{"pose_keypoints_2d": [1e-40' + ",0" * 53 + "]}]}", False),  # float32 subnormal
    ('{"people": [{"pose_keypoints_2d": [true' + ",0" * 53 + "]}]}", False),  # numpy reads true as 1
    ('{"people": [], "people": [{"pose_keypoints_2d": [1' + ",0" * 53 + "]}]}", False),  # json keeps the last
    ('{"pe\\u006fple": [{"pose_keypoints_2d": [1' + ",0" * 53 + "]}]}", False),  # escaped key
    ('{"label": "caf\u00e9", "people": [{"pose_keypoints": [-0' + ",0" * 53 + "]}]}", False),  # not ASCII
    ('{"people": [{"pose_keypoints_2d": [-0' + ",-0.0" * 53 + '], "x": [[{"y": null}]]}]}', True),
])
def test_edge_cases_fall_back_or_match(tmp_path, text, fast):
    path = tmp_path / "e.json"
    path.write_text(text, encoding="utf-8")
    _assert_same_frame(path, 18, expect_fast=fast)


@pytest.mark.parametrize("text, message", [
    ('{"people": [', "not readable JSON (Expecting value: line 1 column 13"),
    ('{"people": [1,]}', "not readable JSON (Expecting value"),
    ('{"people": []} x', "not readable JSON (Extra data"),
    ('{"people": [{"pose_keypoints_2d": [01]}]}', "not readable JSON (Expecting ',' delimiter"),
    ('[]', "expected a JSON object at the top level"),
    ('{"people": [{"pose_keypoints_2d": [1, 2]}]}', "people[0].pose_keypoints_2d has 2 values, expected 54"),
    ('{"people": [{"pose_keypoints_2d": ["a"' + ",0" * 53 + "]}]}", "holds a value that is not a number"),
])
def test_malformed_files_get_json_errors(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(OpenPoseError) as info:
        read_openpose_frame(path, 18)
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value)


def test_kinetics_malformed_and_label_errors(tmp_path):
    path = tmp_path / "v.json"
    path.write_text('{"data": [{"frame_index": 1.0, "skeleton": []}]}')
    with pytest.raises(OpenPoseError, match=r"data\[0\] has no integer 'frame_index'"):
        read_kinetics_video(path)
    path.write_text('{"data": [{"frame_index": 1, "skeleton": []}], "label_index": "seven"}')
    assert _fast(path, True, 18) is not None  # read fast; the label is checked in Python all the same
    with pytest.raises(OpenPoseError, match="'label_index': label 'seven' is not an integer"):
        read_kinetics_video(path)


# ----------------------------------------------------------------------------------------------------------------
# BODY_25B -> COCO-18


def test_body25b_to_coco18_sources():
    expected = [(0,), (6, 5), (6,), (8,), (10,), (5,), (7,), (9,), (12,), (14,), (16,), (11,), (13,), (15,), (2,),
                (1,), (4,), (3,)]  # the spec's derivation, with the neck from the two shoulders
    assert list(TO_COCO18["body25b"]) == expected
    assert [BODY25B.joint_names[s[0]] for s in expected[2:]] == [
        "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow", "left_wrist", "right_hip",
        "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle", "right_eye", "left_eye", "right_ear",
        "left_ear"]
    with pytest.raises(ValueError, match="layout coco18 has no joint 'UpperNeck' for body25b joint 'upper_neck'"):
        joint_sources(COCO18, BODY25B)


def test_map_joints_midpoint_and_missing_shoulder():
    pose = np.zeros((2, 25, 3), np.float32)
    pose[:, 5] = [10, 20, 0.5]  # left shoulder
    pose[0, 6] = [30, 40, 0.25]  # right shoulder, missing in the second pose
    out = map_joints(pose, TO_COCO18["body25b"])
    assert out.shape == (2, 18, 3) and out.dtype == np.float32
    assert out[0, 1].tolist() == [20, 30, 0.25] and out[1, 1].tolist() == [0, 0, 0]
    assert out[1, 5].tolist() == [10, 20, 0.5]


def test_body25b_fixture_as_coco18(fixtures, tmp_path):
    folder = fixtures / "openpose" / "body25b_pose2sim"
    if not folder.is_dir():
        pytest.skip(f"{folder} is missing")
    convert_openpose([folder], tmp_path / "c.zarr", format="frames", model="body25b", as_coco18=True,
                     normalize="none", **RUN)
    store = SkeletonStore.open(tmp_path / "c.zarr")
    assert store.attrs["layout"] == "coco18" and "neck: midpoint of the shoulders" in store.attrs["preprocessing"][
        "joints"]
    x = store[0]
    assert x.shape == (1, 2, 18, 3)
    first, second = x[0, 0], x[0, 1]  # the full person scores higher, so it is slot 0
    # Values read by hand from cam01.0000.json (BODY_25B: 5 LShoulder, 6 RShoulder, 1 LEye, 12 RHip).
    np.testing.assert_allclose(first[1], [(521.038 + 384.303) / 2, (494.789 + 478.904) / 2, 0.666443], rtol=1e-6)
    np.testing.assert_allclose(first[0], [505.232, 431.63, 0.664216], rtol=1e-6)  # Nose
    np.testing.assert_allclose(first[2], [384.303, 478.904, 0.666443], rtol=1e-6)  # RShoulder
    np.testing.assert_allclose(first[15], [515.849, 410.613, 0.60741], rtol=1e-6)  # LEye
    np.testing.assert_allclose(first[8], [389.456, 725.953, 0.649799], rtol=1e-6)  # RHip
    assert second[1].tolist() == [0, 0, 0]  # the false positive has no right shoulder, so no neck
    np.testing.assert_allclose(second[5], [116.171, 394.615, 0.518987], rtol=1e-6)  # LShoulder
    assert second[[2, 8]].tolist() == [[0, 0, 0], [0, 0, 0]]  # RShoulder and RHip undetected


def test_as_coco18_needs_a_25_joint_model(tmp_path):
    with pytest.raises(ConversionError, match="--as-coco18 maps BODY_25 or BODY_25B output"):
        convert_openpose([tmp_path], tmp_path / "o.zarr", format="frames", as_coco18=True, normalize="none", **RUN)


# ----------------------------------------------------------------------------------------------------------------
# Person selection kernels against the numpy implementation they replaced


def _random_video(rng: np.random.Generator) -> list[np.ndarray]:
    """Walkers that appear, vanish and jitter, with a few duplicate detections and, sometimes, NaN or inf."""
    v, frames = int(rng.choice([18, 25])), int(rng.integers(1, 40))
    starts, steps = rng.uniform(0, 50, (4, 1, 2)), rng.normal(0, 1.5, (4, 1, 2))
    shape = rng.uniform(0, 10, (4, v, 2))
    out = []
    for t in range(frames):
        present = np.flatnonzero(rng.random(4) < 0.7)
        people = np.zeros((len(present), v, 3), np.float32)
        people[..., :2] = starts[present] + t * steps[present] + shape[present] + rng.normal(0, 1, (len(present), v, 2))
        people[..., 2] = np.round(rng.uniform(0.05, 1, (len(present), v)), 2)  # rounded: ties happen
        people[rng.random(people.shape[:2]) < 0.25] = 0
        if rng.random() < 0.05 and len(people):
            people[0, int(rng.integers(v)), int(rng.integers(3))] = rng.choice([np.nan, np.inf])
        out.append(people[rng.permutation(len(people))])
    return out


def test_selection_kernels_match_numpy_reference():
    from skeltools.readers.openpose import select_stgcn, select_tracked
    import openpose_reference as reference

    rng = np.random.default_rng(7)
    for _ in range(150):
        frames = _random_video(rng)
        if not any(len(p) for p in frames):
            continue
        for m in (1, 2, 3):
            with np.errstate(invalid="ignore", over="ignore"):  # NaN and inf costs, on purpose
                expected = reference.select_tracked(frames, m), reference.select_stgcn(frames, m)
            assert np.array_equal(_bits(select_tracked(frames, m)), _bits(expected[0]))
            assert np.array_equal(_bits(select_stgcn(frames, m)), _bits(expected[1]))


def test_video_of_frames_reads_fast_and_fallback_files_in_order(tmp_path):
    from skeltools.readers.openpose import read_openpose_video

    good = '{"people": [{"pose_keypoints_2d": [%s]}]}' % ",".join(["2.5"] * 54)
    texts = [good, '{"people": []}', good.replace("2.5", "NaN", 1), good]  # the third goes through json
    paths = []
    for i, text in enumerate(texts):
        paths.append(tmp_path / f"v_{i:012d}_keypoints.json")
        paths[-1].write_text(text)
    frames = read_openpose_video(paths, 18)
    assert frames.counts.tolist() == [1, 0, 1, 1]
    assert np.isnan(frames[2][0, 0, 0]) and (frames.points[[0, 2]] == 2.5).all()
    paths[1].write_text('{"people": [1]}')
    with pytest.raises(OpenPoseError, match=r"v_000000000001_keypoints.json: people\[0\] has no"):
        read_openpose_video(paths + [tmp_path / "missing.json"], 18)  # the earlier bad file is reported first
    with pytest.raises(OpenPoseError, match="missing.json: not readable JSON"):
        read_openpose_video(paths[:1] + [tmp_path / "missing.json"], 18)


def test_video_reader_records_stats_and_the_python_path_agrees(tmp_path, monkeypatch):
    import sys

    from skeltools.readers import smallfiles
    from skeltools.readers.openpose import read_openpose_video

    assert smallfiles.AVAILABLE or not sys.platform.startswith("linux")  # CI runs the numba reader
    person = "{\"pose_keypoints_2d\": [%s]}" % ",".join(["123.456789012345"] * 54)
    texts = ['{"people": [%s]}' % person, '{"people": []}', '{"people": [%s]}' % ",".join([person] * 80)]
    assert len(texts[2]) > smallfiles.SCRATCH_BYTES  # the scratch buffer grows
    paths = []
    for i, text in enumerate(texts):
        paths.append(tmp_path / f"v_{i:012d}_keypoints.json")
        paths[-1].write_text(text)
    stats = np.zeros((3, 2), np.int64)
    frames = read_openpose_video(paths, 18, stats)
    assert frames.counts.tolist() == [1, 0, 80] and (frames.points == np.float32(123.456789012345)).all()
    np.testing.assert_array_equal(stats, smallfiles.file_stats(paths))
    assert stats[2, 0] == len(texts[2]) and stats[0, 1] == paths[0].stat().st_mtime_ns
    in_folder = read_openpose_video([str(p) for p in paths], 18, folder=str(tmp_path))  # opened relative to it
    np.testing.assert_array_equal(in_folder.points, frames.points)
    np.testing.assert_array_equal(in_folder.counts, frames.counts)
    with_missing = paths[:1] + [tmp_path / "missing.json"] + paths[1:]
    stats = np.zeros((4, 2), np.int64)
    with pytest.raises(OpenPoseError, match="missing.json: not readable JSON"):
        read_openpose_video(with_missing, 18, stats)
    np.testing.assert_array_equal(stats, smallfiles.file_stats(with_missing))
    assert stats[1].tolist() == [-1, -1]

    monkeypatch.setattr(smallfiles, "AVAILABLE", False)
    python_stats = np.zeros((3, 2), np.int64)
    python_frames = read_openpose_video(paths, 18, python_stats)
    np.testing.assert_array_equal(python_frames.points, frames.points)
    np.testing.assert_array_equal(python_frames.counts, frames.counts)
    np.testing.assert_array_equal(python_stats, smallfiles.file_stats(paths))

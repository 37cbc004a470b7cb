"""OpenPose per-frame JSON and Kinetics-Skeleton conversion: genuine files, person handling, bad input."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from schemas.layouts import BODY25, BODY25_TO_COCO18, COCO18
from skeltools.convert import ConversionError
from skeltools.convert_openpose import convert_openpose, frame_items, json_folders, read_labels
from skeltools.readers.openpose import (read_kinetics_video, read_openpose_frame, select_stgcn, select_tracked,
                                        split_frame_name, timeline)
from skeltools.store import SkeletonStore
from skeltools.synth import kinetics_json, openpose_frame_json

RUN = dict(workers=1, progress=False)


def _fixture_folder(fixtures, name: str):
    path = fixtures / name
    if not path.is_dir():
        pytest.skip(f"{path} is missing")
    return path


@pytest.fixture(scope="module")
def openpose_dir(fixtures):
    return _fixture_folder(fixtures, "openpose")


@pytest.fixture(scope="module")
def kinetics_dir(fixtures):
    return _fixture_folder(fixtures, "kinetics")


def test_frame_names():
    assert split_frame_name("video_000000000003_keypoints.json") == ("video", 3)
    assert split_frame_name("my_clip_2_000000000012_keypoints.json") == ("my_clip_2", 12)
    assert split_frame_name("cam01.0037.json") == ("cam01", 37)
    assert split_frame_name("a_resized_keypoints.json") == ("a_resized", 0)


# ----------------------------------------------------------------------------------------------------------------
# Genuine files


def test_body25_sign_language(openpose_dir, tmp_path):
    folder = openpose_dir / "body25_sign_language"
    people = read_openpose_frame(folder / "video_000000000001_keypoints.json", 25)
    assert people.shape == (1, 25, 3)
    np.testing.assert_allclose(people[0, 0], [629.353, 245.37, 0.82532], rtol=1e-6)  # Nose
    np.testing.assert_allclose(people[0, 6], [899.77, 594.101, 0.646039], rtol=1e-6)  # LElbow
    assert not people[0, [8, 9, 10, 11, 12, 13, 14, 19, 20, 21, 22, 23, 24]].any()  # hips, legs, feet out of frame

    convert_openpose([folder], tmp_path / "b.zarr", format="frames", model="body25", normalize="none",
                     as_coco18=True, **RUN)
    store = SkeletonStore.open(tmp_path / "b.zarr")
    assert store.attrs["layout"] == "coco18" and store.attrs["coords"] == "xyc"
    assert store.index.to_pylist() == [{"sample_id": "video", "label": -1, "length": 2, "n_persons": 1}]
    x = store[0]
    assert x.shape == (2, 2, 18, 3) and not x[:, 1].any()
    np.testing.assert_allclose(x[0, 0, 0], [627.385, 245.392, 0.816087], rtol=1e-6)  # frame 0 first
    np.testing.assert_allclose(x[1, 0, 14], [605.91, 198.353, 0.883875], rtol=1e-6)  # REye = BODY_25 15
    assert not x[:, 0, 8].any()  # COCO-18 RHip = BODY_25 9, zero here (MidHip 8 is dropped)
    assert [COCO18.joint_names[k] for k in range(18)] == [BODY25.joint_names[i] for i in BODY25_TO_COCO18]


def test_coco18_without_person_id_and_legacy_key(openpose_dir, tmp_path):
    original = openpose_dir / "coco18_badgerfit" / "a_resized_keypoints.json"
    people = read_openpose_frame(original, 18)
    assert people.shape == (1, 18, 3)
    np.testing.assert_allclose(people[0, 0], [91.75, 37.8619, 0.896709], rtol=1e-6)
    np.testing.assert_allclose(people[0, 17], [108.98, 37.1117, 0.847165], rtol=1e-6)
    assert not people[0, [9, 10, 12, 13]].any() and people[0, [0, 1, 8, 11], 2].all()
    doc = json.loads(original.read_text())
    for person in doc["people"]:
        person["pose_keypoints"] = person.pop("pose_keypoints_2d")
    legacy = tmp_path / "a_resized_keypoints.json"
    legacy.write_text(json.dumps(doc, indent=2))
    np.testing.assert_array_equal(read_openpose_frame(legacy, 18), people)
    with pytest.raises(ValueError, match=r"a_resized_keypoints.json: people\[0\].pose_keypoints has 54 values, "
                                         r"expected 75 \(fits --model coco18\)"):
        read_openpose_frame(legacy, 25)


def test_body25b_two_people(openpose_dir, tmp_path):
    folder = openpose_dir / "body25b_pose2sim"
    people = read_openpose_frame(folder / "cam01.0000.json", 25)
    assert people.shape == (2, 25, 3)
    assert people[0, :, 2].min() == np.float32(0.133121) and people[0, :, 2].max() == np.float32(0.71398)
    assert np.flatnonzero(people[1, :, 2] == 0).tolist() == [6, 12, 24]
    convert_openpose([folder], tmp_path / "p.zarr", format="frames", model="body25b", image_size=(1920, 1080), **RUN)
    store = SkeletonStore.open(tmp_path / "p.zarr")
    assert store.attrs["layout"] == "body25b" and store.index.to_pylist()[0]["sample_id"] == "cam01"
    x = store[0]
    assert x.shape == (1, 2, 25, 3) and store.index.to_pylist()[0]["n_persons"] == 2
    np.testing.assert_allclose(x[0, 0, 0], [505.232 / 1920 - 0.5, 431.63 / 1080 - 0.5, 0.664216], rtol=1e-5)
    np.testing.assert_allclose(x[0, 1, 0], [79.3784 / 1920 - 0.5, 331.803 / 1080 - 0.5, 0.451137], rtol=1e-5)
    assert not x[0, 1, [6, 12, 24]].any()  # missed joints stay exactly zero after centring


@pytest.mark.parametrize("persons", ["track", "stgcn"])
def test_kinetics_file_with_empty_frames(kinetics_dir, tmp_path, persons):
    video = read_kinetics_video(kinetics_dir / "open_pose_skeleton.json")
    assert video.frame_index.tolist() == list(range(1, 151)) and video.label_index is None
    assert sum(len(p) == 0 for p in video.people) == 28 and {len(p) for p in video.people} == {0, 1}
    assert read_labels(kinetics_dir / "kinetics_test_label.json")["open_pose_skeleton"].label is None

    report = convert_openpose([kinetics_dir], tmp_path / "k.zarr", dataset="kinetics400", persons=persons, **RUN)
    assert report["notes"] == {"open_pose_skeleton": ["28 of 150 frames have nobody"]}
    store = SkeletonStore.open(tmp_path / "k.zarr")
    assert store.index.to_pylist() == [{"sample_id": "open_pose_skeleton", "label": -1, "length": 150, "n_persons": 1,
                                        "kinetics_train": False, "kinetics_test": True}]
    assert len(store.attrs["class_names"]) == 400 and store.attrs["class_names"][0] == "abseiling"
    x = store[0]
    # frame_index 1 is time 0: the first frame is kept. Neck (1) of the first frame, minus 0.5.
    np.testing.assert_allclose(x[0, 0, 1], [0.30625 - 0.5, 0.6416666666666667 - 0.5, 0.8066304326057434], rtol=1e-6)
    assert not x[0, 0, 0].any()  # undetected nose: score 0, so x and y are 0, not -0.5
    assert (x[..., 2].sum(axis=(1, 2)) == 0).sum() == 28 and not x[:, 1].any()


# ----------------------------------------------------------------------------------------------------------------
# Synthetic cases


def _stick(x: float, y: float, score: float, v: int = 18) -> np.ndarray:
    """A vertical stick figure of height 1 with its top at (x, y): ``(V, 3)``."""
    return np.stack([np.full(v, x), y + np.linspace(0, 1, v), np.full(v, score)], -1).astype(np.float32)


def test_tracking_keeps_identities_through_a_crossing():
    """A walks left to right, B right to left; B scores higher only while they pass, so the per-frame sort swaps."""
    frames = []
    for t in range(20):
        a, b = _stick(t * 0.5, 0, 0.8), _stick(9.5 - t * 0.5, 0.1, 0.9 if 8 <= t <= 11 else 0.5)
        frames.append(np.stack([b, a] if t % 2 else [a, b]))  # detection order is arbitrary too
    tracked = select_tracked(frames, 2)
    np.testing.assert_allclose(tracked[:, 0, 0, 0], np.arange(20) * 0.5)  # slot 0 is A throughout
    np.testing.assert_allclose(tracked[:, 1, 0, 0], 9.5 - np.arange(20) * 0.5)
    reference = select_stgcn(frames, 2)
    assert reference[8, 0, 0, 0] == 9.5 - 4 and reference[7, 0, 0, 0] == 3.5  # st-gcn: B takes slot 0 at t=8


def test_stgcn_reads_five_people_and_zero_fills():
    frames = [np.stack([_stick(k, 0, 0.1 * (k + 1)) for k in range(6)]), np.zeros((0, 18, 3), np.float32)]
    out = select_stgcn(frames, 2)
    assert out[0, :, 0, 0].tolist() == [4, 3] and not out[1].any()  # the 6th (best) person is never read


def test_tracking_keeps_top_tracks_by_total_score():
    frames = [np.stack([_stick(0, 0, 0.9), _stick(5, 0, 0.5)]), np.stack([_stick(0.1, 0, 0.9)]),
              np.stack([_stick(0.2, 0, 0.9), _stick(10, 0, 0.8), _stick(5, 0, 0.5)])]
    out = select_tracked(frames, 2)
    assert out[:, 0, 0, 0].tolist() == pytest.approx([0, 0.1, 0.2])
    assert out[:, 1, 0, 2].tolist() == [0.5, 0, 0.5]  # 2 frames x 0.5 beat 1 frame x 0.8; absent frame zero


def test_timeline_bases_and_gaps():
    people = [np.ones((1, 18, 3), np.float32) * k for k in (1, 2, 3)]
    for first in (0, 1, 7):
        out = timeline(np.array([first, first + 1, first + 3]), people, 18)
        assert len(out) == 4 and out[0][0, 0, 0] == 1 and len(out[2]) == 0 and out[3][0, 0, 0] == 3
    with pytest.raises(ValueError, match="frame number 2 appears twice"):
        timeline(np.array([1, 2, 2]), people, 18)


def test_zero_and_one_based_kinetics_give_the_same_store(tmp_path):
    rng = np.random.default_rng(0)
    frames = [rng.uniform(1, 100, (1, 18, 3)).astype(np.float32) for _ in range(320)]  # longer than 300
    frames[0] = np.zeros((0, 18, 3), np.float32)
    for base in (0, 1):
        (tmp_path / f"in{base}").mkdir()
        (tmp_path / f"in{base}" / "v.json").write_text(kinetics_json(frames, "x", 3, first_index=base,
                                                                      image_size=(100, 100)))
        convert_openpose([tmp_path / f"in{base}"], tmp_path / f"{base}.zarr", flip_y=True, **RUN)
    a, b = SkeletonStore.open(tmp_path / "0.zarr"), SkeletonStore.open(tmp_path / "1.zarr")
    assert a.index.to_pylist() == b.index.to_pylist() == [{"sample_id": "v", "label": 3, "length": 320,
                                                            "n_persons": 1}]
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[0][319, 0, 5, :2], [frames[319][0, 5, 0] / 100 - 0.5,
                                                     -(frames[319][0, 5, 1] / 100 - 0.5)], atol=6e-3)


def test_frames_folder_with_many_videos_labels_and_bad_files(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    person = np.stack([_stick(100, 50, 0.7)])
    for video in ("clipA", "clipB"):
        for t in (2, 0, 1):  # written out of order
            (raw / f"{video}_{t:012d}_keypoints.json").write_text(openpose_frame_json(person + t))
    (raw / "cam01.0000.json").write_text(openpose_frame_json(person, legacy=True))
    (raw / "cam01.0001.json").write_text('{"people": [')  # bad JSON
    (raw / "short_000000000000_keypoints.json").write_text(openpose_frame_json(person[:, :17]))
    (raw / "nokey_000000000000_keypoints.json").write_text('{"version": 1.3}')
    (raw / "noprs_000000000000_keypoints.json").write_text('{"people": [{"face_keypoints_2d": []}]}')
    (raw / "empty_000000000000_keypoints.json").write_text('{"people": []}')
    labels = tmp_path / "labels.csv"
    labels.write_text("video,label\nclipA,4\nclipB,\n")
    items = {i.sample_id: i for i in frame_items(json_folders(sorted(raw.iterdir())))}
    assert items["clipA"].numbers == (0, 1, 2) and items["clipA"].files[0].endswith("clipA_000000000000_keypoints.json")

    with pytest.raises(ConversionError, match="4 of 7 files failed"):
        convert_openpose([raw], tmp_path / "x.zarr", format="frames", labels=[labels], normalize="none", **RUN)
    report = convert_openpose([raw], tmp_path / "x.zarr", format="frames", labels=[labels], normalize="none",
                              keep_going=True, **RUN)
    failed = {f["file"].rsplit("/", 1)[1]: f["error"] for f in report["failed"]}
    assert sorted(failed) == ["cam01", "nokey", "noprs", "short"]
    assert "cam01.0001.json: not readable JSON" in failed["cam01"]
    assert "short_000000000000_keypoints.json: people[0].pose_keypoints_2d has 51 values, expected 54" in failed["short"]
    assert "(fits no model)" in failed["short"]
    assert failed["nokey"].endswith("nokey_000000000000_keypoints.json: missing key 'people'")
    assert "people[0] has no 'pose_keypoints_2d'" in failed["noprs"]
    assert [s["reason"] for s in report["skipped"]] == ["no person in any frame"]
    store = SkeletonStore.open(tmp_path / "x.zarr")
    assert [(r["sample_id"], r["label"], r["length"]) for r in store.index.to_pylist()] == [("clipA", 4, 3),
                                                                                             ("clipB", -1, 3)]
    np.testing.assert_allclose(store[0][:, 0, 0, 0], [100, 101, 102])  # ordered by frame number


def test_has_skeleton_false_is_skipped_and_string_labels(tmp_path):
    raw = tmp_path / "kinetics_val"
    raw.mkdir()
    frames = [np.stack([_stick(0.3, 0.1, 0.5)])] * 3
    for video in ("aaa", "bbb", "ccc"):
        (raw / f"{video}.json").write_text(kinetics_json(frames, "", "", image_size=(1, 1)))
    (tmp_path / "kinetics_val_label.json").write_text(json.dumps({
        "aaa": {"has_skeleton": True, "label": "abseiling", "label_index": "0"},
        "bbb": {"has_skeleton": False, "label": "air drumming", "label_index": 1}}))
    report = convert_openpose([raw], tmp_path / "k.zarr", labels=[tmp_path / "kinetics_val_label.json"],
                              dataset="kinetics400", persons="stgcn", **RUN)
    assert [(s["sample_id"], s["reason"]) for s in report["skipped"]] == [
        ("bbb", f"has_skeleton is false in {tmp_path / 'kinetics_val_label.json'}")]
    rows = SkeletonStore.open(tmp_path / "k.zarr").index.to_pylist()
    assert [(r["sample_id"], r["label"], r["kinetics_test"]) for r in rows] == [("aaa", 0, True), ("ccc", -1, False)]


def test_options_are_checked(tmp_path):
    with pytest.raises(ConversionError, match="--image-size"):
        convert_openpose([tmp_path], tmp_path / "o.zarr", format="frames", **RUN)
    with pytest.raises(ConversionError, match="--model coco18"):
        convert_openpose([tmp_path], tmp_path / "o.zarr", model="body25", **RUN)


def test_cli_convert_openpose_and_modalities(openpose_dir, tmp_path):
    from click.testing import CliRunner

    from skeltools.cli import main

    folder = tmp_path / "in"
    shutil.copytree(openpose_dir / "coco18_badgerfit", folder)
    result = CliRunner().invoke(main, ["convert", "openpose", str(folder), "-o", str(tmp_path / "c.zarr"), "--format",
                                       "frames", "--image-size", "200", "250", "--workers", "1", "-q"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["modalities", str(tmp_path / "c.zarr"), "--workers", "1"])
    assert result.exit_code == 0, result.output
    store = SkeletonStore.open(tmp_path / "c.zarr")
    joint, bone = store.read(0, "joint"), store.read(0, "bone")
    parents = list(COCO18.bone_parents)
    np.testing.assert_allclose(bone[..., :2], joint[..., :2] - joint[:, :, parents, :2], atol=1e-6)
    np.testing.assert_allclose(bone[..., 2], (joint[..., 2] + joint[:, :, parents, 2]) / 2, atol=1e-6)
    np.testing.assert_allclose(joint[0, 0, 1], [92.7751 / 200 - 0.5, 87.1424 / 250 - 0.5, 0.831039], rtol=1e-5)


@pytest.mark.parametrize("fmt", ["frames", "kinetics"])
def test_synthetic_corpus_round_trip(tmp_path, fmt):
    from skeltools.synth import write_openpose_corpus

    paths = write_openpose_corpus(tmp_path / "raw", 5, seed=1, format=fmt, model="coco18", num_classes=3)
    labels = [tmp_path / "raw" / "labels.csv"] if fmt == "frames" else []
    report = convert_openpose([tmp_path / "raw"], tmp_path / "s.zarr", format=fmt, labels=labels,
                              image_size=(1920, 1080) if fmt == "frames" else None, **RUN)
    assert report["counts"]["converted"] == 5 and not report["failed"]
    videos = [f for p in paths for f in (p.iterdir() if p.is_dir() else [p])]
    assert report["counts"]["input_bytes"] == sum(f.stat().st_size for f in videos)
    rows = {r["sample_id"]: r for r in SkeletonStore.open(tmp_path / "s.zarr").index.to_pylist()}
    names = [p.stem if fmt == "kinetics" else p.name for p in paths]
    assert sorted(rows) == sorted(names)
    assert all(rows[n]["label"] == int(n[-3:]) - 1 for n in names)


def test_resume_redoes_a_video_whose_frame_file_changed(tmp_path, monkeypatch, kill_at_group):
    import skeltools.convert as convert_mod
    from skeltools.synth import write_openpose_corpus

    write_openpose_corpus(tmp_path / "raw", 4, seed=2, format="frames", frames=20)
    monkeypatch.setattr(convert_mod, "GROUP_INPUT_FILES", 20)  # one video a group
    kill_at_group(3)
    options = dict(format="frames", image_size=(1920, 1080), **RUN)
    with pytest.raises(KeyboardInterrupt):
        convert_openpose([tmp_path / "raw"], tmp_path / "s.zarr", **options)
    kill_at_group(None)
    first_video = sorted(p for p in (tmp_path / "raw").iterdir() if p.is_dir())[0]
    frame = sorted(first_video.iterdir())[3]
    frame.write_text(openpose_frame_json(np.full((1, 18, 3), 0.25, np.float32)))  # same name, new content
    logs = []
    convert_openpose([tmp_path / "raw"], tmp_path / "s.zarr", log=logs.append, **options)
    assert any("resuming: 1 of 4 groups" in m for m in logs)  # video 0 changed, video 2 never finished
    convert_openpose([tmp_path / "raw"], tmp_path / "fresh.zarr", **options)
    a, b = SkeletonStore.open(tmp_path / "s.zarr"), SkeletonStore.open(tmp_path / "fresh.zarr")
    assert a.array("joint")[:].tobytes() == b.array("joint")[:].tobytes()
    assert a.index.equals(b.index)


def test_resume_starts_over_when_a_label_file_changed(tmp_path, monkeypatch, kill_at_group):
    import skeltools.convert as convert_mod
    from skeltools.synth import write_openpose_corpus

    names = [p.name for p in write_openpose_corpus(tmp_path / "raw", 3, seed=4, format="frames", frames=20)]
    labels = tmp_path / "raw" / "labels.csv"
    monkeypatch.setattr(convert_mod, "GROUP_INPUT_FILES", 20)
    kill_at_group(2)
    options = dict(format="frames", image_size=(1920, 1080), labels=[labels], **RUN)
    with pytest.raises(KeyboardInterrupt):
        convert_openpose([tmp_path / "raw"], tmp_path / "s.zarr", **options)
    kill_at_group(None)
    labels.write_text("video,label\n" + "".join(f"{n},{7 + i}\n" for i, n in enumerate(sorted(names))))
    logs = []
    convert_openpose([tmp_path / "raw"], tmp_path / "s.zarr", log=logs.append, **options)
    assert not any("resuming" in m for m in logs)
    index = SkeletonStore.open(tmp_path / "s.zarr").index
    assert index.column("label").to_pylist() == [7, 8, 9]


@pytest.mark.parametrize("names", [
    [f"clip_{t:012d}_keypoints.json" for t in (3, 0, 12, 1)],  # one OpenPose video (the vectorized case)
    [f"_{t:012d}_keypoints.json" for t in (1, 0)],  # empty prefix
    [f"a_{t:012d}_keypoints.json" for t in (0, 1)] + [f"b_{t:012d}_keypoints.json" for t in (1, 0)],  # two videos
    ["clip_000000000001_keypoints.json", "clip_00000000000x_keypoints.json"],  # not a number: other rules
    ["clip_000000000001_keypoints.json", "clip_0000000000001_keypoints.json"],  # 13 digits
    ["clip_000000000001_keypoints.json", "clip_\u0661\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660"
                                         "_keypoints.json"],  # Unicode digits: as the regex and int() read them
    ["cam01.0002.json", "cam01.0000.json", "cam01.10.json", "still_keypoints.json"],
    ["x\n_000000000001_keypoints.json", "y_000000000001_keypoints.json"],
])
def test_folder_videos_match_the_name_rules(names):
    from collections import defaultdict

    from skeltools.readers.openpose import folder_videos

    expected = defaultdict(list)
    for name in names:
        prefix, number = split_frame_name(name)
        expected[prefix].append((number, name))
    got = folder_videos(names)
    assert {p: list(zip(*v)) for p, v in got.items()} == {p: sorted(f) for p, f in expected.items()}


def test_one_openpose_video_takes_the_vectorized_path():
    from skeltools.readers.openpose import _one_openpose_video

    names = sorted(f"clip_{t:012d}_keypoints.json" for t in (3, 0, 12))
    assert _one_openpose_video(names) == {"clip": ([0, 3, 12], names)}
    assert _one_openpose_video(sorted(names + ["clip_000000000001_keypoints.jsn"])) is None
    assert _one_openpose_video(sorted(names + ["clop_000000000001_keypoints.json"])) is None

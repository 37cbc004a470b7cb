"""convert mmpose: both JSON forms, 0/1/3 people per frame with tracking, layouts from the keypoint count, image size
from meta_info, labels and splits, and bad files."""
from __future__ import annotations

import json

import numpy as np
import pytest

from skeltools.convert import ConversionError
from skeltools.convert_mmpose import convert_mmpose
from skeltools.readers.mmpose import MMPoseError, parse_mmpose
from skeltools.store import SkeletonStore

RUN = {"workers": 1, "progress": False}
SCORES = {"a": 0.9, "b": 0.8, "c": 0.1}
X = {"a": 100.0, "b": 300.0, "c": 500.0}


def _person(who: str, t: int, v: int = 17) -> dict:
    xy = [[X[who] + 2 * j + t, 50.0 + 10 * j] for j in range(v)]
    return {"keypoints": xy, "keypoint_scores": [SCORES[who]] * v, "bbox": [[X[who] - 20, 40, X[who] + 60, 220]],
            "bbox_score": 0.99}


# frame 0: nobody; frame 1: a; frames 2 and 3: a, b and c (c listed first)
PEOPLE = [[], ["a"], ["c", "a", "b"], ["c", "b", "a"]]


def _frames(v: int = 17, first: int = 1) -> list[dict]:
    return [{"frame_id": first + t, "instances": [_person(w, t, v) for w in who]} for t, who in enumerate(PEOPLE)]


def _meta(v: int = 17, name: str = "coco", **extra) -> dict:
    return {"dataset_name": name, "num_keypoints": v, "keypoint_id2name": {str(i): f"k{i}" for i in range(v)}} | extra


def _write(path, doc):
    path.write_text(json.dumps(doc))
    return path


def _expected(v: int = 17, size=(1000.0, 500.0)) -> np.ndarray:
    """(T, 2, V, 3): a in slot 0 (highest total score), b in slot 1, c dropped; st-gcn normalised."""
    out = np.zeros((4, 2, v, 3), np.float32)
    for t, who in enumerate(PEOPLE):
        for slot, w in enumerate(("a", "b")):
            if w in who:
                p = _person(w, t, v)
                xy = np.asarray(p["keypoints"], np.float32) / np.asarray(size, np.float32) - np.float32(0.5)
                out[t, slot] = np.concatenate([xy, np.full((v, 1), SCORES[w], np.float32)], axis=1)
    return out


def _data(path, i: int = 0) -> np.ndarray:
    store = SkeletonStore.open(path)
    return np.asarray(store.array("joint")[int(store.offsets[i]):int(store.offsets[i + 1])])


def test_wrapper_and_plain_list_forms_with_zero_one_and_three_people(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    _write(src / "demo.json", {"meta_info": _meta(), "instance_info": _frames(first=1)})
    _write(src / "inferencer.json", _frames(first=0))
    report = convert_mmpose([src], tmp_path / "m.zarr", image_size=(1000, 500), **RUN)
    store = SkeletonStore.open(tmp_path / "m.zarr")
    assert store.attrs["layout"] == "coco17" and store.attrs["coords"] == "xyc" and store.attrs["persons"] == 2
    index = store.index.to_pydict()
    assert index["sample_id"] == ["demo", "inferencer"] and index["label"] == [-1, -1]
    assert index["length"] == [4, 4] and index["n_persons"] == [2, 2]
    for i in range(2):
        assert np.allclose(_data(tmp_path / "m.zarr", i), _expected(), atol=1e-6)
    assert report["notes"]["demo"] == ["1 of 4 frames have nobody"]


def test_stgcn_persons_sort_each_frame_by_score(tmp_path):
    _write(tmp_path / "v.json", {"meta_info": _meta(), "instance_info": _frames()})
    convert_mmpose([tmp_path / "v.json"], tmp_path / "s.zarr", persons="stgcn", normalize="none", **RUN)
    data = _data(tmp_path / "s.zarr")
    assert np.allclose(data[:, :, 0, 2], [[0, 0], [0.9, 0], [0.9, 0.8], [0.9, 0.8]])
    assert np.allclose(data[2, 1, 0, :2], [X["b"] + 2, 50.0])  # pixels kept


def test_image_size_from_meta_info_wins(tmp_path):
    _write(tmp_path / "v.json", {"meta_info": _meta(img_shape=[500, 1000]), "instance_info": _frames()})
    report = convert_mmpose([tmp_path / "v.json"], tmp_path / "i.zarr", image_size=(10, 10), **RUN)
    assert np.allclose(_data(tmp_path / "i.zarr"), _expected(), atol=1e-6)
    assert "image size 1000x500 from meta_info" in report["notes"]["v"]


@pytest.mark.parametrize("v, layout", [(26, "halpe26"), (133, "wholebody133")])
def test_layout_from_keypoint_count_whole_or_body(tmp_path, v, layout):
    _write(tmp_path / "v.json", {"meta_info": _meta(v, "halpe26" if v == 26 else "coco_wholebody"),
                                 "instance_info": _frames(v)})
    convert_mmpose([tmp_path / "v.json"], tmp_path / "w.zarr", image_size=(1000, 500), **RUN)
    store = SkeletonStore.open(tmp_path / "w.zarr")
    assert store.attrs["layout"] == layout and store.array("joint").shape == (4, 2, v, 3)
    assert np.allclose(_data(tmp_path / "w.zarr"), _expected(v), atol=1e-6)
    convert_mmpose([tmp_path / "v.json"], tmp_path / "b.zarr", keep="body", image_size=(1000, 500), **RUN)
    assert SkeletonStore.open(tmp_path / "b.zarr").attrs["layout"] == "coco17"
    assert np.allclose(_data(tmp_path / "b.zarr"), _expected(v)[..., :17, :], atol=1e-6)


def test_other_keypoint_counts_need_a_layout(tmp_path):
    _write(tmp_path / "v.json", _frames(21))
    with pytest.raises(ConversionError, match="21 keypoints: give --layout"):
        convert_mmpose([tmp_path / "v.json"], tmp_path / "x.zarr", **RUN)


def test_labels_splits_and_bad_files(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("clip1", "clip2", "clip3"):
        _write(src / f"{name}.json", {"meta_info": _meta(), "instance_info": _frames()})
    _write(src / "nobody.json", [{"frame_id": 0, "instances": []}, {"frame_id": 1, "instances": []}])
    broken = _frames()
    for key in ("keypoints", "keypoint_scores"):
        broken[2]["instances"][1][key] = broken[2]["instances"][1][key][:16]
    _write(src / "short.json", {"meta_info": _meta(), "instance_info": broken})
    (src / "cut.json").write_text(json.dumps(_frames())[:200])
    (tmp_path / "labels_train.csv").write_text("video,label\nclip1,2\nclip2,0\n")
    (tmp_path / "labels_val.csv").write_text("video,label\nclip3,1\n")
    labels = [tmp_path / "labels_train.csv", tmp_path / "labels_val.csv"]
    with pytest.raises(ConversionError, match="2 of 6 files failed"):
        convert_mmpose([src], tmp_path / "l.zarr", labels=labels, image_size=(1000, 500), **RUN)
    report = convert_mmpose([src], tmp_path / "l.zarr", labels=labels, image_size=(1000, 500), keep_going=True,
                            **RUN)
    store = SkeletonStore.open(tmp_path / "l.zarr")
    index = store.index.to_pydict()
    assert index["sample_id"] == ["clip1", "clip2", "clip3"] and index["label"] == [2, 0, 1]
    assert index["split_train"] == [True, True, False] and index["split_test"] == [False, False, True]
    assert store.attrs["class_names"] == ["0", "1", "2"]
    errors = sorted(f["error"] for f in report["failed"])
    assert "cut.json: not readable JSON" in errors[0]
    assert "short.json: frame 3 instance 1: 16 keypoints, expected 17" in errors[1]
    assert report["skipped"] == [{"file": str(src / "nobody.json"), "sample_id": "nobody",
                                  "reason": "no person in any frame"}]


def test_pixels_without_an_image_size_fail_the_file(tmp_path):
    _write(tmp_path / "v.json", {"meta_info": _meta(), "instance_info": _frames()})
    with pytest.raises(ConversionError, match="meta_info has no image size: give --image-size W H"):
        convert_mmpose([tmp_path / "v.json"], tmp_path / "p.zarr", **RUN)
    assert not (tmp_path / "p.zarr").exists()


def test_reader_rejects_3d_and_unknown_objects():
    frame = {"frame_id": 0, "instances": [{"keypoints": [[1, 2, 3]] * 17, "keypoint_scores": [1] * 17}]}
    with pytest.raises(MMPoseError, match=r"keypoints shape \(17, 3\) .*expected \(V, 2\)"):
        parse_mmpose([frame], "f.json")
    with pytest.raises(MMPoseError, match="needs 'instance_info'"):
        parse_mmpose({"predictions": []}, "g.json")
    image = parse_mmpose({"meta_info": _meta(), "instance_info": [_person("a", 0)]}, "img.json")
    assert image.numbers.tolist() == [0] and image.people[0].shape == (1, 17, 3)


def test_cli_converts_and_summarises(tmp_path):
    from click.testing import CliRunner

    from skeltools.cli import main

    _write(tmp_path / "v.json", {"meta_info": _meta(26, "halpe26"), "instance_info": _frames(26)})
    result = CliRunner().invoke(main, ["convert", "mmpose", str(tmp_path / "v.json"), "-o", str(tmp_path / "c.zarr"),
                                       "--keep", "body", "--image-size", "1000", "500", "--workers", "1", "-q"])
    assert result.exit_code == 0, result.output
    assert "1 samples, 4 frames (mmpose); 0 skipped, 0 failed" in result.output
    assert np.allclose(_data(tmp_path / "c.zarr"), _expected(26)[..., :17, :], atol=1e-6)

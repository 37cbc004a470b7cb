"""convert pyskl: every pickle form, layouts and coords, splits, kpfiles, the round trip through export, hostile and
broken pickles, and a file as pyskl's own tools/data/ntu_preproc.py writes it from the real NTU fixtures."""
from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from skeltools.cli import main
from skeltools.convert import ConversionError
from skeltools.convert_pyskl import convert_pyskl, split_column
from skeltools.readers.pyskl import PysklError, decompress_skeletons, load_pickle
from skeltools.store import SkeletonStore

RUN = {"workers": 1, "progress": False}


def _ann(name, label, m, t, v=25, c=3, dtype=np.float16, seed=0, score=False):
    rng = np.random.default_rng(seed)
    ann = {"frame_dir": name, "label": label, "total_frames": t,
           "keypoint": (rng.standard_normal((m, t, v, c)) * 100).astype(dtype)}
    if score:
        ann |= {"keypoint_score": rng.uniform(0, 1, (m, t, v)).astype(dtype), "img_shape": (480, 640),
                "original_shape": (480, 640)}
    return ann


def _dump(path: Path, obj, protocol=pickle.HIGHEST_PROTOCOL) -> Path:
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


def _frames(store: SkeletonStore, i: int) -> np.ndarray:
    return np.asarray(store.array("joint")[int(store.offsets[i]):int(store.offsets[i + 1])])


def _columns(store: SkeletonStore) -> dict:
    return store.index.to_pydict()


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_dict_form_3d_keeps_values_labels_and_splits(tmp_path, dtype):
    anns = [_ann("clip0", 2, 1, 5, dtype=dtype, seed=1), _ann("clip1", 0, 2, 7, dtype=dtype, seed=2),
            _ann("clip2", 1, 3, 4, dtype=dtype, seed=3)]
    split = {"xsub_train": ["clip0", "clip1"], "xsub_val": ["clip2"]}  # clip... ids: no NTU columns
    pkl = _dump(tmp_path / "a.pkl", {"split": split, "annotations": anns})
    report = convert_pyskl([pkl], tmp_path / "a.zarr", **RUN)
    store = SkeletonStore.open(tmp_path / "a.zarr")
    assert store.attrs["layout"] == "ntu25" and store.attrs["coords"] == "xyz" and store.attrs["persons"] == 2
    assert store.attrs["class_names"] == ["0", "1", "2"] and store.attrs["dataset"] == "pyskl"
    index = _columns(store)
    assert index["sample_id"] == ["clip0", "clip1", "clip2"] and index["label"] == [2, 0, 1]
    assert index["length"] == [5, 7, 4] and index["n_persons"] == [1, 2, 2]
    assert index["xsub_train"] == [True, True, False] and index["xsub_test"] == [False, False, True]
    assert "setup" not in index
    for i, ann in enumerate(anns):
        expected = ann["keypoint"].astype(np.float32).transpose(1, 0, 2, 3)[:, :2]
        got = _frames(store, i)
        assert got.dtype == np.float32 and np.array_equal(got[:, :expected.shape[1]], expected)
        assert not got[:, expected.shape[1]:].any()
    assert report["notes"] == {"clip2": ["3 person slots, kept the first 2"]}
    assert report["splits"] == {"xsub_train": "xsub_train", "xsub_val": "xsub_test"}


def test_2d_score_becomes_third_channel_and_samples_outside_splits_are_kept(tmp_path):
    anns = [_ann(f"v{i}", i % 2, 2, 6, v=17, c=2, dtype=np.float32, seed=i, score=True) for i in range(3)]
    pkl = _dump(tmp_path / "b.pkl", {"split": {"train1": ["v0"], "test1": ["v1"]}, "annotations": anns})
    convert_pyskl([pkl], tmp_path / "b.zarr", dataset="hmdb51", **RUN)
    store = SkeletonStore.open(tmp_path / "b.zarr")
    assert store.attrs["layout"] == "coco17" and store.attrs["coords"] == "xyc" and store.attrs["dataset"] == "hmdb51"
    assert len(store.attrs["class_names"]) == 51 and store.attrs["class_names"][0] == "brush_hair"
    got = _frames(store, 1)
    assert np.array_equal(got[..., :2], anns[1]["keypoint"].transpose(1, 0, 2, 3))
    assert np.array_equal(got[..., 2], anns[1]["keypoint_score"].transpose(1, 0, 2))
    index = _columns(store)
    assert index["split1_train"] == [True, False, False] and index["split1_test"] == [False, True, False]


def test_plain_list_and_one_annotation_per_file_give_the_same_store(tmp_path):
    anns = [_ann(f"s{i}", i, 1, 3 + i, seed=i) for i in range(3)]
    listed = _dump(tmp_path / "list.pkl", anns, protocol=2)
    folder = tmp_path / "per_file"
    folder.mkdir()
    for ann in anns:
        _dump(folder / f"{ann['frame_dir']}.pkl", ann)
    convert_pyskl([listed], tmp_path / "l.zarr", **RUN)
    convert_pyskl([folder], tmp_path / "f.zarr", **RUN)
    a, b = SkeletonStore.open(tmp_path / "l.zarr"), SkeletonStore.open(tmp_path / "f.zarr")
    assert np.array_equal(a.array("joint")[:], b.array("joint")[:]) and a.index.equals(b.index)
    assert _columns(a)["sample_id"] == ["s0", "s1", "s2"] and not a.split_columns


def test_ntu_names_pick_the_dataset_and_fill_the_name_columns(tmp_path):
    anns = [_ann("S001C002P003R002A013", 12, 1, 4), _ann("S018C001P045R001A061", 60, 1, 4, seed=5)]
    pkl = _dump(tmp_path / "n.pkl", {"split": {"xset_train": ["S018C001P045R001A061"]}, "annotations": anns})
    convert_pyskl([pkl], tmp_path / "n.zarr", **RUN)
    store = SkeletonStore.open(tmp_path / "n.zarr")
    index = _columns(store)
    assert store.attrs["dataset"] == "ntu120" and len(store.attrs["class_names"]) == 120
    assert index["setup"] == [1, 18] and index["camera"] == [2, 1] and index["subject"] == [3, 45]
    assert index["action"] == [13, 61] and index["xset_train"] == [False, True]


def test_split_naming_rule():
    names = ["xsub_train", "xsub_val", "cs_val", "cs_test", "train1", "test1", "train", "val"]
    assert [split_column(n, names) for n in names] == [
        ("xsub", "train"), ("xsub", "test"), ("cs", "val"), ("cs", "test"), ("split1", "train"),
        ("split1", "test"), ("split", "train"), ("split", "test")]
    with pytest.raises(ConversionError, match="split 'holdout'"):
        split_column("holdout", ["holdout"])


def test_other_joint_counts_need_a_layout(tmp_path):
    anns = [_ann("h0", 0, 1, 3, v=26, c=2, score=True)]
    pkl = _dump(tmp_path / "h.pkl", anns)
    with pytest.raises(ConversionError, match="26 joints .*--layout"):
        convert_pyskl([pkl], tmp_path / "h.zarr", **RUN)
    assert not (tmp_path / "h.zarr").exists()
    convert_pyskl([pkl], tmp_path / "h.zarr", layout="halpe26", **RUN)
    assert SkeletonStore.open(tmp_path / "h.zarr").array("joint").shape == (3, 2, 26, 3)


def test_pyskl_prenormalize_2d(tmp_path):
    ann = {"frame_dir": "p", "label": 0, "total_frames": 1, "img_shape": (480, 640),
           "keypoint": np.array([[[[320.0, 240.0], [640.0, 0.0]] + [[1.0, 1.0]] * 15]], np.float32),
           "keypoint_score": np.array([[[0.9, 0.5] + [0.005] * 15]], np.float32)}
    convert_pyskl([_dump(tmp_path / "p.pkl", [ann])], tmp_path / "p.zarr", normalize="pyskl", **RUN)
    got = _frames(SkeletonStore.open(tmp_path / "p.zarr"), 0)[0, 0]
    assert np.allclose(got[:2], [[0, 0, 0.9], [1, -1, 0.5]]) and not got[2:, :2].any()


def _kinetics_toc(tmp_path):
    rng = np.random.default_rng(7)
    kp_a = rng.uniform(1, 100, (5, 17, 3)).astype(np.float16)  # frames 3, 3, 7, 9, 9
    kp_b = rng.uniform(1, 100, (2, 17, 3)).astype(np.float16)
    kp_c = rng.uniform(1, 100, (1, 17, 3)).astype(np.float16)
    kpdir = tmp_path / "kpfiles"
    kpdir.mkdir()
    _dump(kpdir / "part_0.pkl", {"vid_a": {"keypoint": kp_a}, "vid_b": {"keypoint": kp_b}})
    _dump(kpdir / "part_1.pkl", {"vid_c": {"keypoint": kp_c}})
    toc = [
        {"frame_dir": "vid_a", "label": 3, "total_frames": 10, "raw_file": "/data/k400/kpfiles/part_0.pkl",
         "frame_inds": np.array([3, 3, 7, 9, 9]), "box_score": np.array([0.9, 0.4, 0.8, 0.7, 0.95]),
         "img_shape": (340, 256), "original_shape": (340, 256), "valid": {0.5: 3}},
        {"frame_dir": "vid_b", "label": 1, "total_frames": 4, "raw_file": "/data/k400/kpfiles/part_0.pkl",
         "frame_inds": np.array([0, 2]), "box_score": np.array([0.9, 0.9])},
        {"frame_dir": "vid_c", "label": 0, "total_frames": 2, "raw_file": "/data/k400/kpfiles/part_1.pkl",
         "frame_inds": np.array([1]), "box_score": np.array([0.9])},
        {"frame_dir": "vid_gone", "label": 0, "total_frames": 2, "raw_file": "/data/k400/kpfiles/part_1.pkl",
         "frame_inds": np.array([1]), "box_score": np.array([0.9])},
    ]
    pkl = _dump(tmp_path / "k400_hrnet.pkl", {"split": {"train": ["vid_a", "vid_c"], "val": ["vid_b"]},
                                               "annotations": toc})
    return pkl, kpdir, kp_a, kp_b


@pytest.mark.parametrize("stream", [False, True])
def test_kpfiles_are_read_once_and_decompressed_as_pyskl(tmp_path, monkeypatch, stream):
    import skeltools.convert_pyskl as module

    pkl, kpdir, kp_a, kp_b = _kinetics_toc(tmp_path)
    loads = []
    monkeypatch.setattr(module, "load_pickle", lambda p: loads.append(Path(p).name) or load_pickle(p))
    report = convert_pyskl([pkl], tmp_path / "k.zarr", kpfiles=kpdir, dataset="kinetics400",
                           stream_bytes=0 if stream else 1 << 30, **RUN)
    toc = [] if stream else ["k400_hrnet.pkl"]  # streamed, the table of contents is not loaded whole
    assert sorted(loads) == toc + ["part_0.pkl", "part_1.pkl"]  # each file read once
    store = SkeletonStore.open(tmp_path / "k.zarr")
    index = _columns(store)
    assert index["sample_id"] == ["vid_a", "vid_b", "vid_c"] and index["label"] == [3, 1, 0]
    assert index["length"] == [3, 2, 1] and index["n_persons"] == [2, 1, 1]
    assert index["split_train"] == [True, False, True] and index["split_test"] == [False, True, False]
    a = _frames(store, 0)  # frames 3, 7, 9 (squeezed); frame 3 holds skeletons 0, 1 in file order
    assert np.array_equal(a[0], kp_a[[0, 1]].astype(np.float32)) and np.array_equal(a[1, 0], kp_a[2])
    assert not a[1, 1].any() and np.array_equal(a[2], kp_a[[3, 4]])
    assert np.array_equal(_frames(store, 1)[:, 0], kp_b.astype(np.float32))
    assert report["notes"]["part_1"] == ["vid_gone: failed: no 'keypoint' for it in the kpfile"]
    # box threshold: skeletons with box_score < 0.5 dropped
    convert_pyskl([pkl], tmp_path / "kb.zarr", kpfiles=kpdir, box_thr=0.5, **RUN)
    a = _frames(SkeletonStore.open(tmp_path / "kb.zarr"), 0)
    assert np.array_equal(a[0, 0], kp_a[0]) and not a[0, 1].any()


def test_kpfiles_missing_folder_is_reported(tmp_path):
    pkl, _, _, _ = _kinetics_toc(tmp_path)
    with pytest.raises(ConversionError, match="no such kpfile .*--kpfiles DIR"):
        convert_pyskl([pkl], tmp_path / "k.zarr", **RUN)


def test_decompress_sorts_by_score_only_above_ten_people():
    kp = np.zeros((12, 2, 3), np.float32)
    kp[:, :, 2] = np.arange(12)[:, None] / 20  # later skeletons score higher
    out = decompress_skeletons(kp, np.zeros(12, int), 2)
    assert np.allclose(out[0, :, 0, 2], [11 / 20, 10 / 20])
    out = decompress_skeletons(kp[:10], np.zeros(10, int), 2)
    assert np.allclose(out[0, :, 0, 2], [0, 1 / 20])


def test_round_trip_through_export(tmp_path):
    raw = tmp_path / "raw"
    assert CliRunner().invoke(main, ["synth", "ntu", str(raw), "--samples", "12"]).exit_code == 0
    from skeltools.convert import convert_ntu
    from skeltools.export import export_store

    convert_ntu([raw], tmp_path / "a.zarr", **RUN)
    export_store(tmp_path / "a.zarr", "pyskl", tmp_path / "a.pkl", progress=False)
    convert_pyskl([tmp_path / "a.pkl"], tmp_path / "b.zarr", **RUN)
    a, b = SkeletonStore.open(tmp_path / "a.zarr"), SkeletonStore.open(tmp_path / "b.zarr")
    assert np.array_equal(a.array("joint")[:], b.array("joint")[:])
    assert a.index.equals(b.index) and a.attrs["class_names"] == b.attrs["class_names"]
    # 2D with scores: a store from a 2D pickle exports and converts back to the same store
    anns = [_ann(f"v{i}", i, 1 + i % 3, 4 + i, v=17, c=2, score=True, seed=i) for i in range(5)]
    _dump(tmp_path / "c.pkl", {"split": {"train": ["v0", "v1", "v2"], "val": ["v3"]}, "annotations": anns})
    convert_pyskl([tmp_path / "c.pkl"], tmp_path / "c.zarr", **RUN)
    export_store(tmp_path / "c.zarr", "pyskl", tmp_path / "d.pkl", progress=False)
    convert_pyskl([tmp_path / "d.pkl"], tmp_path / "d.zarr", **RUN)
    c, d = SkeletonStore.open(tmp_path / "c.zarr"), SkeletonStore.open(tmp_path / "d.zarr")
    assert np.array_equal(c.array("joint")[:], d.array("joint")[:]) and c.index.equals(d.index)
    assert list(c.split_columns) == ["split_train", "split_test"]


class _Hostile:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_hostile_pickle_is_refused_naming_the_global_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    _Hostile.marker = marker
    pkl = _dump(tmp_path / "evil.pkl", {"split": {}, "annotations": [_Hostile()]})
    with pytest.raises(PysklError, match=r"evil\.pkl: refused: .*global posix\.system"):
        load_pickle(pkl)
    result = CliRunner().invoke(main, ["convert", "pyskl", str(pkl), "-o", str(tmp_path / "e.zarr"), "-q",
                                       "--workers", "1"])
    assert result.exit_code == 1 and "refused: the pickle asks for the global posix.system" in result.output
    assert not marker.exists() and not (tmp_path / "e.zarr").exists()
    (tmp_path / "eval.pkl").write_bytes(b"\x80\x02cbuiltins\neval\nX\x03\x00\x00\x001+1\x85R.")
    with pytest.raises(PysklError, match="global builtins.eval"):
        load_pickle(tmp_path / "eval.pkl")


def test_truncated_pickle_fails_that_file_only(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    _dump(folder / "good.pkl", [_ann("g0", 0, 1, 3), _ann("g1", 1, 1, 4, seed=1)])
    data = pickle.dumps([_ann("t0", 0, 1, 30)], protocol=2)
    (folder / "cut.pkl").write_bytes(data[:len(data) // 2])
    with pytest.raises(PysklError, match=r"cut\.pkl: not a readable pickle \(truncated\)"):
        load_pickle(folder / "cut.pkl")
    with pytest.raises(ConversionError, match="1 of 3 files failed"):
        convert_pyskl([folder], tmp_path / "t.zarr", **RUN)
    report = convert_pyskl([folder], tmp_path / "t.zarr", keep_going=True, **RUN)
    assert report["counts"]["converted"] == 2 and report["failed"][0]["file"].endswith("cut.pkl")
    assert _columns(SkeletonStore.open(tmp_path / "t.zarr"))["sample_id"] == ["g0", "g1"]


def test_bad_annotations_are_per_sample_failures(tmp_path):
    nan = _ann("nan", 0, 1, 3, seed=2)
    nan["keypoint"][0, 1, 4, 0] = np.nan
    no_kp = {"frame_dir": "nokp", "label": 0, "total_frames": 3}
    anns = [_ann("ok0", 0, 1, 3), _ann("wrongv", 1, 1, 3, v=24), nan, no_kp, _ann("ok1", 2, 2, 5, seed=3),
            {**_ann("badlabel", 0, 1, 3), "label": "x"}, {**_ann("frames", 0, 1, 3), "total_frames": 9}, None]
    pkl = _dump(tmp_path / "bad.pkl", {"split": {}, "annotations": anns})
    report = convert_pyskl([pkl], tmp_path / "bad.zarr", keep_going=True, **RUN)
    errors = {f["file"].split("[")[-1].rstrip("]"): f["error"] for f in report["failed"]}
    assert sorted(errors) == ["1", "2", "3", "5", "6", "7"]
    assert "(wrongv): 'keypoint' shape (1, 3, 24, 3): 24 joints, the layout has 25" in errors["1"]
    assert "(nan): 1 NaN/inf values" in errors["2"] and "(nokp): no 'keypoint'" in errors["3"]
    assert "label 'x'" in errors["5"] and "total_frames 9 differs from the 3 frames" in errors["6"]
    assert "(#7): expected an annotation dict, got NoneType" in errors["7"]
    assert _columns(SkeletonStore.open(tmp_path / "bad.zarr"))["sample_id"] == ["ok0", "ok1"]
    saved = json.loads((tmp_path / "bad.zarr" / "report.json").read_text())
    assert saved["counts"]["failed"] == 6 and saved["counts"]["converted"] == 2


def test_label_beyond_the_dataset_classes_fails_the_sample(tmp_path):
    pkl = _dump(tmp_path / "l.pkl", [_ann("a", 59, 1, 3), _ann("b", 60, 1, 3)])
    report = convert_pyskl([pkl], tmp_path / "l.zarr", dataset="ntu60", keep_going=True, **RUN)
    assert [f["error"] for f in report["failed"]] == [f"{pkl}[1] (b): label 60 is not below the 60 classes"]


# pyskl tools/data/ntu_preproc.py (kennymckormick/pyskl@3f6795f, mmcv.dump = pickle protocol 2) run on the three NTU
# fixtures wrote ntu60_3danno.pkl (45,484 bytes; S001C002P006R001A008 is on its missing list). The NTU recordings
# may not be copied into the project, so the test rebuilds that file with skeltools' reproduction of the script's
# body selection and checks it against this digest of the genuine file's content (split, every annotation's fields
# and float16 keypoint bytes).
GENUINE_NTU60_3DANNO = "a91d7177d9084cc6174fe19f19f808297e0b8d95755fe9d136a22661a47c6e89"


def _content_digest(doc) -> str:
    h = hashlib.sha256()
    h.update(repr(doc["split"]).encode())
    for a in doc["annotations"]:
        h.update(repr(sorted((k, v) for k, v in a.items() if k != "keypoint")).encode())
        h.update(repr((a["keypoint"].shape, a["keypoint"].dtype.str)).encode())
        h.update(a["keypoint"].tobytes())
    return h.hexdigest()


def test_file_written_by_pyskl_ntu_preproc_converts_exactly(tmp_path, ntu_fixtures):
    from schemas.datasets import NTU120_XSUB_TRAIN_SUBJECTS, read_sample_list
    from skeltools.readers.ntu import read_skeleton
    from skeltools.select import select_pyskl

    missing = read_sample_list(ntu_fixtures / "NTU_RGBD120_samples_with_missing_skeletons.txt")
    names = sorted(p.name.split(".")[0] for p in ntu_fixtures.glob("*.skeleton"))
    names = [n for n in names if n not in missing and int(n.split("A")[-1]) <= 60]
    annotations = []
    for name in names:
        keypoint = select_pyskl(read_skeleton(ntu_fixtures / f"{name}.skeleton"))[0].astype(np.float16)
        annotations.append(dict(frame_dir=name, label=int(name.split("A")[-1]) - 1, keypoint=keypoint,
                                total_frames=keypoint.shape[1]))
    xsub = [n for n in names if int(n.split("P")[1][:3]) in NTU120_XSUB_TRAIN_SUBJECTS]
    split = dict(xsub_train=xsub, xsub_val=[n for n in names if n not in xsub],
                 xview_train=[n for n in names if "C001" not in n], xview_val=[n for n in names if "C001" in n])
    doc = dict(split=split, annotations=annotations)
    assert _content_digest(doc) == GENUINE_NTU60_3DANNO
    pkl = _dump(tmp_path / "ntu60_3danno.pkl", doc, protocol=2)
    convert_pyskl([pkl], tmp_path / "g.zarr", **RUN)
    store = SkeletonStore.open(tmp_path / "g.zarr")
    index = _columns(store)
    assert store.attrs["dataset"] == "ntu60" and index["sample_id"] == names
    assert index["label"] == [10, 57] and index["length"] == [82, 70] and index["n_persons"] == [1, 2]
    assert index["xview_train"] == [False, True] and index["xview_test"] == [True, False]
    assert index["xsub_train"] == [True, True] and index["xsub_test"] == [False, False]
    for i, ann in enumerate(annotations):
        expected = ann["keypoint"].astype(np.float32).transpose(1, 0, 2, 3)
        got = _frames(store, i)
        assert np.array_equal(got[:, :expected.shape[1]], expected) and not got[:, expected.shape[1]:].any()


def test_streamed_pickles_give_the_same_store_and_leave_no_stage(tmp_path):
    anns = [_ann(f"v{i}", i % 4, 1 + i % 3, 3 + i % 5, v=17, c=2, score=True, seed=i) for i in range(150)]
    anns[7]["keypoint"] = anns[7]["keypoint"][:, :, :16]  # a bad one, in the middle of a chunk
    pkl = _dump(tmp_path / "s.pkl", {"split": {"train": [a["frame_dir"] for a in anns[:100]]}, "annotations": anns},
                protocol=2)
    whole = convert_pyskl([pkl], tmp_path / "w.zarr", keep_going=True, **RUN)
    streamed = convert_pyskl([pkl], tmp_path / "s.zarr", keep_going=True, stream_bytes=0, **RUN)
    a, b = SkeletonStore.open(tmp_path / "w.zarr"), SkeletonStore.open(tmp_path / "s.zarr")
    assert np.array_equal(a.array("joint")[:], b.array("joint")[:]) and a.index.equals(b.index)
    assert len(a) == 149 and whole["failed"] == streamed["failed"] and "v7" in streamed["failed"][0]["error"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.pkl", "s.zarr", "w.zarr"]  # stage files removed


def test_streaming_memory_holds_a_batch_not_the_file(tmp_path):
    import tracemalloc

    from skeltools.readers.pyskl import stream_pickle

    anns = [_ann(f"v{i}", 0, 2, 60, v=17, c=2, score=True, seed=i) for i in range(3000)]
    pkl = _dump(tmp_path / "big.pkl", {"split": {"all": [a["frame_dir"] for a in anns]}, "annotations": anns})
    del anns
    seen = []
    tracemalloc.start()
    try:
        doc = stream_pickle(pkl, lambda ann: seen.append(ann["frame_dir"]))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(seen) == 3000 and seen[-1] == "v2999" and doc["annotations"] == [] and len(doc["split"]["all"]) == 3000
    assert peak < pkl.stat().st_size / 2, (peak, pkl.stat().st_size)


def test_streamed_hostile_and_truncated_pickles_are_refused(tmp_path):
    from skeltools.readers.pyskl import stream_pickle

    _Hostile.marker = tmp_path / "pwned"
    evil = _dump(tmp_path / "evil.pkl", [_ann("a", 0, 1, 3), _Hostile()])
    with pytest.raises(PysklError, match="global posix.system"):
        stream_pickle(evil, lambda ann: None)
    assert not _Hostile.marker.exists()
    data = pickle.dumps([_ann(f"t{i}", 0, 1, 30) for i in range(3)], protocol=2)
    (tmp_path / "cut.pkl").write_bytes(data[:len(data) // 2])
    with pytest.raises(PysklError, match=r"cut\.pkl: not a readable pickle \(truncated\)"):
        stream_pickle(tmp_path / "cut.pkl", lambda ann: None)
    # the annotations streamed before the cut do not convert: the file fails as a whole
    many = pickle.dumps([_ann(f"t{i}", 0, 1, 30, seed=i) for i in range(1500)], protocol=2)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "cut.pkl").write_bytes(many[:len(many) * 4 // 5])
    _dump(tmp_path / "in" / "good.pkl", [_ann("g", 0, 1, 3)])
    report = convert_pyskl([tmp_path / "in"], tmp_path / "c.zarr", keep_going=True, stream_bytes=0, **RUN)
    assert report["counts"]["converted"] == 1 and report["failed"][0]["file"] == str(tmp_path / "in" / "cut.pkl")
    assert _columns(SkeletonStore.open(tmp_path / "c.zarr"))["sample_id"] == ["g"]


def test_cli_converts_and_summarises(tmp_path):
    pkl = _dump(tmp_path / "u.pkl", {"split": {"train1": ["u0"], "test1": ["u1"]},
                                     "annotations": [_ann(f"u{i}", 100 - i, 1, 5, v=17, c=2, score=True, seed=i)
                                                     for i in range(2)]})
    result = CliRunner().invoke(main, ["convert", "pyskl", str(pkl), "-o", str(tmp_path / "u.zarr"), "--dataset",
                                       "ucf101", "--workers", "1", "-q"])
    assert result.exit_code == 0, result.output
    assert "2 samples, 10 frames (ucf101); 0 skipped, 0 failed" in result.output
    store = SkeletonStore.open(tmp_path / "u.zarr")
    assert store.attrs["class_names"][100] == "YoYo" and _columns(store)["label"] == [100, 99]

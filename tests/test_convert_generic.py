"""convert generic: the keypoint reader (each axis order and file type), label tables and splits, per-file errors,
and a store with a custom layout through modalities, info, train and test."""
from __future__ import annotations

import csv
import importlib.util

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from schemas.layouts import load_layout
from skeltools.cli import main
from skeltools.convert import ConversionError
from skeltools.convert_generic import (class_labels, convert_generic, keep_persons, random_split, read_label_table,
                                       split_parts)
from skeltools.readers.generic import GenericInputError, keypoint_shape, read_keypoints, to_tmvc
from skeltools.store import SkeletonStore

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "upper_body13.toml"
TINY = {"name": "tiny", "joints": ["hip", "spine", "head", "arm"], "parents": ["hip", "hip", "spine", "spine"]}


def coded(t: int, m: int, v: int = 4, c: int = 3) -> np.ndarray:
    """(T, M, V, C) with value 1000 t + 100 m + 10 v + c + 1 at [t, m, v, c]: every entry says where it is."""
    grid = np.indices((t, m, v, c))
    return (1000 * grid[0] + 100 * grid[1] + 10 * grid[2] + grid[3] + 1).astype(np.float32)


def write_sample(path: Path, data: np.ndarray, axes: str) -> Path:
    """Write (T, M, V, C) ``data`` as ``path`` (.npy / .npz in ``axes`` order, or long-format .csv)."""
    array = {"TMVC": data, "MTVC": data.transpose(1, 0, 2, 3), "TVC": data[:, 0]}[axes]
    if path.suffix == ".npy":
        np.save(path, array)
    elif path.suffix == ".npz":
        np.savez(path, keypoints=array)
    else:
        rows = ["frame,person,joint,x,y,z"] + [f"{t},{m},{v}," + ",".join(map(str, data[t, m, v]))
                                              for t, m, v in np.ndindex(data.shape[:3])]
        path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".csv"])
@pytest.mark.parametrize("axes", ["TVC", "TMVC", "MTVC"])
def test_reader_each_axis_order_and_file_type(tmp_path, suffix, axes):
    data = coded(5, 1 if axes == "TVC" else 3)
    path = write_sample(tmp_path / f"clip{suffix}", data, axes)
    out = read_keypoints(path, axes, joint_names=TINY["joints"], channels=3)
    assert out.shape == data.shape and out.dtype == np.float32
    t, m = 4, data.shape[1] - 1
    assert out[t, m, 2, 1] == 1000 * 4 + 100 * m + 10 * 2 + 1 + 1  # hand-checked: frame 4, last person, head, y
    assert out[0, 0, 0, 0] == 1.0 and out[1, 0, 3, 2] == 1033.0
    assert keypoint_shape(path, axes, joint_names=TINY["joints"]) == data.shape


def test_csv_rows_by_joint_name_and_missing_keypoints(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("frame,person,joint,x,y\n2,1,head,1.5,-2\n0,0,0,3,4\n\n")
    out = read_keypoints(path, joint_names=TINY["joints"], channels=2)
    assert out.shape == (3, 2, 4, 2) and np.count_nonzero(out) == 4
    assert out[2, 1, 2].tolist() == [1.5, -2.0] and out[0, 0, 0].tolist() == [3.0, 4.0]
    cases = {
        "frame,person,x,y\n": "line 1: expected the header frame,person,joint",
        "frame,person,joint,x,y\n0,0,nose,1,2\n": "line 2: joint 'nose' is not a joint index 0..3 or name",
        "frame,person,joint,x,y\n0,0,1,1\n": "line 2: 4 values, the header has 5",
        "frame,person,joint,x,y\n0,a,1,1,2\n": "line 2: frame and person must be integers",
        "frame,person,joint,x,y\n0,0,1,1,z\n": "line 2: channel values must be numbers",
        "frame,person,joint,x,y\n0,0,1,1,2\n0,0,spine,1,2\n": "line 3: frame 0, person 0, joint 1 is given twice",
        "frame,person,joint,x,y\n": "no keypoint rows after the header",
    }
    for text, message in cases.items():
        path.write_text(text)
        with pytest.raises(GenericInputError, match=message):
            read_keypoints(path, joint_names=TINY["joints"], channels=2)


def test_reader_errors_name_the_file(tmp_path):
    np.save(tmp_path / "v.npy", np.zeros((4, 5, 3), np.float32))
    with pytest.raises(GenericInputError, match=r"v.npy: 5 joints .*the layout has 4"):
        read_keypoints(tmp_path / "v.npy", "TVC", joint_names=TINY["joints"])
    with pytest.raises(GenericInputError, match=r"v.npy: 3 channels per joint, expected 2"):
        read_keypoints(tmp_path / "v.npy", "TVC", channels=2)
    with pytest.raises(GenericInputError, match=r"v.npy: 3 dimensions \(4, 5, 3\), but axes TMVC needs 4"):
        read_keypoints(tmp_path / "v.npy", "TMVC")
    np.savez(tmp_path / "two.npz", a=np.zeros((2, 4, 3)), b=np.zeros((2, 4, 3)))
    with pytest.raises(GenericInputError, match=r"two.npz: holds 2 arrays \(a, b\); name the one"):
        read_keypoints(tmp_path / "two.npz", "TVC")
    assert read_keypoints(tmp_path / "two.npz", "TVC", npz_key="b").shape == (2, 1, 4, 3)
    assert keypoint_shape(tmp_path / "two.npz", "TVC", npz_key="b") == (2, 1, 4, 3)
    with pytest.raises(GenericInputError, match=r"two.npz: no array 'c'"):
        keypoint_shape(tmp_path / "two.npz", "TVC", npz_key="c")
    (tmp_path / "junk.npy").write_bytes(b"not an array")
    with pytest.raises(GenericInputError, match=r"junk.npy: cannot be read"):
        read_keypoints(tmp_path / "junk.npy", "TVC")
    with pytest.raises(ValueError, match="unknown axes 'VTC'"):
        to_tmvc(np.zeros((1, 2, 3)), "VTC")


def test_label_tables_and_class_numbers(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("sample_id,label,fold1,fold2_train,fold2_test\na,wave,train,1,0\nb,clap,test,no,YES\n"
                    "c,wave,,0,0\nd,nod,val,true,false\n")
    rows = read_label_table(path)
    assert [(r.sample_id, r.label, r.where) for r in rows][:2] == [("a", "wave", "line 2"), ("b", "clap", "line 3")]
    names, mapping = class_labels([r.label for r in rows])
    assert names == ("clap", "nod", "wave") and mapping == {"clap": 0, "nod": 1, "wave": 2}
    protocol_parts, parts = split_parts(rows)
    assert protocol_parts == {"fold1": ("train", "val", "test"), "fold2": ("train", "test")}
    assert parts == {"a": {"fold1": "train", "fold2": "train"}, "b": {"fold1": "test", "fold2": "test"}, "c": {},
                     "d": {"fold1": "val", "fold2": "train"}}
    assert class_labels(["3", "0", "1", ""])[0] == ("0", "1", "2", "3")
    assert class_labels(["b", "0"], ["a", "b"])[1] == {"0": 0, "b": 1}
    with pytest.raises(ConversionError, match="label 'c' is neither one of the 2 class names nor a number below 2"):
        class_labels(["c"], ["a", "b"])
    (tmp_path / "l.json").write_text(json.dumps({"x": 3, "y": {"label": "2", "cv_test": True}}))
    rows = read_label_table(tmp_path / "l.json")
    assert [(r.sample_id, r.label, r.splits) for r in rows] == [("x", "3", {}), ("y", "2", {"cv_test": "true"})]
    bad = {"sample_id,label,fold_train\na,1,maybe\n": "line 2: column 'fold_train' takes 1/0/true/false/yes/no",
           "sample_id,label,fold\na,1,dev\n": "line 2: column 'fold' takes train/val/test",
           "sample_id,label,f_train,f_test\na,1,1,1\n": "line 2: sample 'a' is in both f_train and f_test",
           "id,class\na,1\n": "line 1: expected the header sample_id,label",
           "sample_id,label\na,1,2\n": "line 2: 3 values, the header has 2"}
    for text, message in bad.items():
        path.write_text(text)
        with pytest.raises(ConversionError, match=f"{path}: {message}"):
            split_parts(read_label_table(path), str(path))


def test_random_split_is_seeded_stratified_disjoint_and_complete():
    labels = {f"s{i:03d}": i % 3 for i in range(50)} | {"lonely": 3}
    split = random_split(labels, 0.8, 0)
    assert set(split) == set(labels) and set(split.values()) == {"train", "test"}
    assert split == random_split(dict(reversed(list(labels.items()))), 0.8, 0)  # order of listing is irrelevant
    assert split != random_split(labels, 0.8, 1)
    train = Counter(labels[s] for s, part in split.items() if part == "train")
    assert train == {0: 14, 1: 14, 2: 13, 3: 1}  # 17, 17, 16 samples: round(0.8 * 17) = 14, round(12.8) = 13; a lone
    # sample trains
    with pytest.raises(ConversionError, match="between 0 and 1"):
        random_split(labels, 1.0, 0)


def test_keep_persons_keeps_the_most_present():
    data = np.zeros((4, 3, 2, 3), np.float32)
    data[:1, 0] = 1
    data[:, 1] = 2
    data[:3, 2] = 3
    kept = keep_persons(data, 2)
    assert kept.shape == (4, 2, 2, 3) and (kept[:, 0] == data[:, 1]).all() and (kept[:, 1] == data[:, 2]).all()
    assert (keep_persons(data[:, :1], 2)[:, 1] == 0).all()


@pytest.mark.parametrize("suffix,axes", [(".npy", "TVC"), (".npz", "MTVC"), (".csv", None)])
def test_convert_each_format_with_hand_checked_values(tmp_path, suffix, axes):
    raw = tmp_path / "raw"
    raw.mkdir()
    persons = 1 if axes == "TVC" else 2
    for i, frames in enumerate((6, 9, 7, 8)):
        data = coded(frames, persons) + 10000 * i
        if persons == 2 and i == 1:
            data[:, 1] = 0  # one person only: the second slot stays zero
        write_sample(raw / f"s{i}{suffix}", data, axes or "TMVC")
    labels = tmp_path / "labels.csv"
    labels.write_text("sample_id,label\ns0,1\ns1,0\ns2,1\ns3,0\nunused,2\n")
    report = convert_generic([raw], tmp_path / "g.zarr", layout=TINY, labels=labels, axes=axes, workers=1,
                             progress=False)
    assert report["counts"]["converted"] == 4 and report["counts"]["failed"] == 0
    store = SkeletonStore.open(tmp_path / "g.zarr")
    assert store.attrs["persons"] == persons and store.attrs["class_names"] == ["0", "1", "2"]
    assert store.index.column("sample_id").to_pylist() == ["s0", "s1", "s2", "s3"]
    assert store.index.column("label").to_pylist() == [1, 0, 1, 0] and store.lengths.tolist() == [6, 9, 7, 8]
    assert store.index.column("n_persons").to_pylist() == [persons, 1, persons, persons]
    sample = store[2]
    assert sample.shape == (7, persons, 4, 3)
    assert sample[5, persons - 1, 3, 2] == 20000 + 5000 + 100 * (persons - 1) + 30 + 2 + 1
    assert store.layout == load_layout_dict(TINY) and store.attrs["layout_definition"]["joints"] == TINY["joints"]
    assert store.split_columns == ["generic_train", "generic_test"]


def load_layout_dict(d):
    from schemas.layouts import Layout

    return Layout.from_dict(d)


def test_split_columns_from_the_label_file_and_train_split_name(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for i in range(6):
        np.save(raw / f"c{i}.npy", coded(5, 1)[:, 0] + i)
    labels = tmp_path / "labels.csv"
    labels.write_text("sample_id,label,fold\n" + "".join(f"c{i},{'ab'[i % 2]},{['train', 'val', 'test'][i % 3]}\n"
                                                        for i in range(6)))
    convert_generic([raw], tmp_path / "a.zarr", layout=TINY, labels=labels, axes="TVC", workers=1, progress=False)
    store = SkeletonStore.open(tmp_path / "a.zarr")
    assert store.split_columns == ["fold_train", "fold_val", "fold_test"]
    assert store.rows("fold_val").tolist() == [1, 4] and store.rows("fold_test").tolist() == [2, 5]
    assert "split columns of" in store.attrs["preprocessing"]["split"]
    convert_generic([raw], tmp_path / "b.zarr", layout=TINY, labels=labels, axes="TVC", split_ratio=0.5, seed=3,
                    workers=1, progress=False)
    both = SkeletonStore.open(tmp_path / "b.zarr")
    assert both.split_columns == ["fold_train", "fold_val", "fold_test", "generic_train", "generic_test"]
    train, test = both.rows("generic_train"), both.rows("generic_test")
    assert len(train) == 4 and len(test) == 2 and not set(train) & set(test)  # per class: 3 -> round(1.5) = 2
    again = convert_generic([raw], tmp_path / "c.zarr", layout=TINY, labels=labels, axes="TVC", split_ratio=0.5,
                            seed=3, workers=1, progress=False)
    assert again["counts"]["converted"] == 6
    assert (SkeletonStore.open(tmp_path / "c.zarr").rows("generic_train") == train).all()


def test_append_equals_one_shot_of_the_union(tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("sample_id,label,fold\n" + "".join(f"c{i},{'ab'[i % 2]},{['train', 'test'][i % 3 == 0]}\n"
                                                        for i in range(6)))
    for name, ids in (("first", range(4)), ("second", range(4, 6)), ("all", range(6))):
        (tmp_path / name).mkdir()
        for i in ids:
            np.save(tmp_path / name / f"c{i}.npy", coded(5 + i, 1 + i % 2) - i)
    common = dict(layout=TINY, labels=labels, axes="TMVC", max_persons=2, workers=1, progress=False)
    convert_generic([tmp_path / "all"], tmp_path / "one.zarr", **common)
    convert_generic([tmp_path / "first"], tmp_path / "inc.zarr", **common)
    report = convert_generic([tmp_path / "first", tmp_path / "second"], tmp_path / "inc.zarr", append=True, **common)
    assert report["counts"]["converted"] == 2 and report["counts"]["duplicates"] == 4
    one, inc = SkeletonStore.open(tmp_path / "one.zarr"), SkeletonStore.open(tmp_path / "inc.zarr")
    np.testing.assert_array_equal(inc.array("joint")[:], one.array("joint")[:])
    assert inc.index.equals(one.index) and (inc.offsets == one.offsets).all()
    assert inc.rows("fold_test").tolist() == [0, 3]


def test_bad_files_are_per_file_errors(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    good = coded(6, 2)
    np.save(raw / "good.npy", good)
    nan = good.copy()
    nan[2, 1, 3, 0] = np.nan
    np.save(raw / "nan.npy", nan)
    np.save(raw / "ndim.npy", good[:, 0])
    np.save(raw / "joints.npy", coded(6, 2, v=5))
    np.save(raw / "channels.npy", coded(6, 2, c=2))
    (raw / "junk.npy").write_bytes(b"\x93NUMPY garbage")
    np.save(raw / "nolabel.npy", good)
    np.save(raw / "empty.npy", np.zeros((6, 2, 4, 3), np.float32))
    (raw / "rows.csv").write_text("frame,person,joint,x,y,z\n0,0,9,1,2,3\n")
    labels = tmp_path / "labels.csv"
    labels.write_text("sample_id,label\n" + "".join(f"{s},a\n" for s in
                                                    ("good", "nan", "ndim", "joints", "channels", "junk", "empty",
                                                     "rows")) + "nolabel,\n")
    with pytest.raises(ConversionError, match="6 of 9 files failed; no store was written"):
        convert_generic([raw], tmp_path / "g.zarr", layout=TINY, labels=labels, axes="TMVC", workers=1,
                        progress=False)
    assert not (tmp_path / "g.zarr").exists()
    report = convert_generic([raw], tmp_path / "g.zarr", layout=TINY, labels=labels, axes="TMVC", workers=1,
                             progress=False, keep_going=True)
    errors = {Path(f["file"]).stem: f["error"] for f in report["failed"]}
    assert set(errors) == {"ndim", "joints", "channels", "junk", "nolabel", "rows"}
    assert "3 dimensions" in errors["ndim"] and "5 joints" in errors["joints"] and "2 channels" in errors["channels"]
    assert "cannot be read" in errors["junk"] and f"no label for sample 'nolabel' in {labels}" in errors["nolabel"]
    assert "line 2: joint '9'" in errors["rows"] and all(e.startswith(str(raw)) for e in errors.values())
    assert report["skipped"] == [{"file": str(raw / "empty.npy"), "sample_id": "empty",
                                  "reason": "no person in any frame (all zero)"}]
    assert report["nonfinite_body_frames"] == {"nan": 1} and report["counts"]["converted"] == 2
    store = SkeletonStore.open(tmp_path / "g.zarr")
    sample = store[store.index.column("sample_id").to_pylist().index("nan")]
    assert (sample[2, 1] == 0).all() and (sample[2, 0] == good[2, 0]).all() and (sample[3] == good[3]).all()


def test_whole_run_errors(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    np.save(raw / "a.npy", coded(3, 1))
    labels = tmp_path / "labels.csv"
    labels.write_text("sample_id,label\na,x\na,y\n")
    with pytest.raises(ConversionError, match=r"line 3: sample 'a' is listed twice \(also line 2\)"):
        convert_generic([raw], tmp_path / "g.zarr", layout=TINY, labels=labels, axes="TMVC", workers=1,
                        progress=False)
    labels.write_text("sample_id,label\na,x\n")
    with pytest.raises(ConversionError, match="give --axes"):
        convert_generic([raw], tmp_path / "g.zarr", layout=TINY, labels=labels, workers=1, progress=False)
    with pytest.raises(ValueError, match="unknown layout 'ntu26'"):
        convert_generic([raw], tmp_path / "g.zarr", layout="ntu26", labels=labels, axes="TMVC", progress=False)


@pytest.fixture(scope="module")
def upper_store(tmp_path_factory):
    """24 synthetic clips of 3 classes with the example 13-joint layout, via the CLI, with bones."""
    root = tmp_path_factory.mktemp("generic")
    runner = CliRunner()
    result = runner.invoke(main, ["synth", "generic", str(root / "raw"), "--samples", "24", "--upper-body",
                                  "--format", "npz", "--axes", "MTVC"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["convert", "generic", str(root / "raw" / "keypoints"), "-o", str(root / "s.zarr"),
                                  "--layout", str(EXAMPLE), "--axes", "MTVC", "--labels",
                                  str(root / "raw" / "labels.csv"), "--split-ratio", "0.75", "--workers", "1", "-q"])
    assert result.exit_code == 0, result.output
    assert "24 samples" in result.output
    result = runner.invoke(main, ["modalities", str(root / "s.zarr"), "--feats", "b", "-q", "--workers", "1"])
    assert result.exit_code == 0, result.output
    return root / "s.zarr"


def test_custom_layout_store_bones_and_info(upper_store):
    store = SkeletonStore.open(upper_store)
    layout = load_layout(EXAMPLE)
    assert store.layout == layout and store.attrs["layout"] == "upper_body13"
    joints, bones = store.read(3), store.read(3, "bone")
    assert joints.shape[2] == 13
    parents = np.array(layout.bone_parents)
    np.testing.assert_array_equal(bones, joints - joints[:, :, parents])
    assert (bones[:, :, 2] == 0).all()  # the root (spine_shoulder) is its own parent
    np.testing.assert_array_equal(bones[:, :, 8], joints[:, :, 8] - joints[:, :, 7])  # left hand from left wrist
    result = CliRunner().invoke(main, ["info", str(upper_store)])
    assert result.exit_code == 0, result.output
    assert "layout      upper_body13 (custom, 13 joints), coords xyz, 2 person slots" in result.output
    assert "generic_train 18, generic_test 6" in result.output


@pytest.mark.parametrize("arch", ["stgcn", "dgstgcn"])
def test_train_and_test_on_a_custom_layout(upper_store, tmp_path, arch):
    runner = CliRunner()
    out = tmp_path / arch
    result = runner.invoke(main, ["train", "--arch", arch, "--store", str(upper_store), "--split", "generic",
                                  "--modality", "j", "-o", str(out), "--epochs", "1", "--batch-size", "6",
                                  "--clip-len", "12", "--set", "test_clips=1", "--workers", "0"])
    assert result.exit_code == 0, result.output
    run = json.loads((out / "run.json").read_text())
    assert run["layout"] == "upper_body13" and run["layout_definition"] == load_layout(EXAMPLE).to_dict()
    assert run["class_names"] == SkeletonStore.open(upper_store).class_names and run["train_samples"] == 17
    result = runner.invoke(main, ["test", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "test.json").read_text())
    assert report["num_samples"] == 6 and 0 <= report["top1"] <= 1

    # predict on the raw keypoint files (label table beside them ignored) = predict on their converted store
    from trainer.predict import load_predictor, predict_store

    store = SkeletonStore.open(upper_store)
    expected = predict_store(load_predictor(out), store, log=lambda _: None)
    result = runner.invoke(main, ["predict", str(out), str(upper_store.parent / "raw"), "--top-k", "3",
                                  "-o", str(tmp_path / "p.csv")])
    assert result.exit_code == 0, result.output
    with open(tmp_path / "p.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["rank"] == "1"]
    assert [r["sample"] for r in rows] == expected.sample_ids and len(rows) == 24
    np.testing.assert_allclose([float(r["prob"]) for r in rows], expected.probs.max(1), atol=2e-6)
    assert [int(r["end"]) for r in rows] == store.lengths.tolist()

    if arch == "stgcn" and importlib.util.find_spec("onnx") and importlib.util.find_spec("onnxscript"):
        import onnx  # the exported model carries the custom layout too

        result = runner.invoke(main, ["export-model", str(out), "--onnx", str(tmp_path / "m.onnx")])
        assert result.exit_code == 0, result.output
        meta = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
        assert meta["layout"] == "upper_body13"
        assert json.loads(meta["layout_definition"]) == load_layout(EXAMPLE).to_dict()


def test_merge_refuses_another_definition_under_the_same_layout_name(tmp_path):
    from skeltools.reshape import merge_stores
    from skeltools.store import StoreError

    labels = tmp_path / "labels.csv"
    labels.write_text("sample_id,label\na,0\nb,1\n")
    for name, sample, parents in (("one", "a", TINY["parents"]), ("two", "b", ["hip", "hip", "spine", "head"])):
        (tmp_path / name).mkdir()
        np.save(tmp_path / name / f"{sample}.npy", coded(4, 1))
        convert_generic([tmp_path / name], tmp_path / f"{name}.zarr", layout={**TINY, "parents": parents},
                        labels=labels, axes="TMVC", class_names=["0", "1"], workers=1, progress=False)
    with pytest.raises(StoreError, match="their layout_definition differ"):
        merge_stores([tmp_path / "one.zarr", tmp_path / "two.zarr"], tmp_path / "m.zarr")

"""`skeltools export`: pyskl annotation pickle and MS-G3D-style arrays, read back and compared with the store."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
from click.testing import CliRunner
from test_kernels import numpy_bones, numpy_motion
from test_modalities import random_store

from schemas.layouts import LAYOUTS
from skeltools.cli import main
from skeltools.export import export_store
from skeltools.store import SkeletonStore, StoreError

LENGTHS = [5, 1, 30, 12, 7, 301]


def pad_persons(keypoint, persons=2):
    """pyskl (M', T, V, C) back to the store's (T, M, V, C)."""
    out = np.zeros((keypoint.shape[1], persons, *keypoint.shape[2:]), np.float32)
    out[:, :len(keypoint)] = keypoint.transpose(1, 0, 2, 3)
    return out


@pytest.mark.parametrize("layout,coords", [("ntu25", "xyz"), ("coco18", "xyc")])
def test_pyskl_round_trip(tmp_path, layout, coords):
    frames, offsets = random_store(tmp_path / "s.zarr", LENGTHS, layout=layout, coords=coords)
    export_store(tmp_path / "s.zarr", "pyskl", tmp_path / "ann.pkl", progress=False)
    with open(tmp_path / "ann.pkl", "rb") as fh:
        data = pickle.load(fh)
    assert data["split"] == {"xsub_train": ["s000", "s002", "s004"], "xsub_val": ["s001", "s003", "s005"]}
    assert [a["frame_dir"] for a in data["annotations"]] == [f"s{i:03d}" for i in range(len(LENGTHS))]
    for i, ann in enumerate(data["annotations"]):
        sample = frames[offsets[i]:offsets[i + 1]]
        assert ann["label"] == i % 3 and ann["total_frames"] == len(sample)
        assert len(ann["keypoint"]) == (1 if i % 2 == 0 else 2)  # empty trailing person slots are dropped
        keypoint = ann["keypoint"]
        if coords == "xyc":
            assert keypoint.shape[-1] == 2 and ann["keypoint_score"].shape == keypoint.shape[:-1]
            keypoint = np.concatenate([keypoint, ann["keypoint_score"][..., None]], axis=-1)
        assert keypoint.dtype == np.float32
        np.testing.assert_array_equal(pad_persons(keypoint), sample)


def test_npy_round_trip_with_derived_features(tmp_path):
    frames, offsets = random_store(tmp_path / "s.zarr", LENGTHS)
    out = export_store(tmp_path / "s.zarr", "npy", tmp_path / "npy", features="j,bm", progress=False)
    bone_motion = numpy_motion(numpy_bones(frames, LAYOUTS["ntu25"].bone_parents, False), offsets, False)
    for part, rows in (("train", [0, 2, 4]), ("val", [1, 3, 5])):
        with open(out / "xsub" / f"{part}_label.pkl", "rb") as fh:
            names, labels = pickle.load(fh)
        assert names == [f"s{r:03d}" for r in rows] and labels == [r % 3 for r in rows]
        for feature, source in (("joint", frames), ("bone_motion", bone_motion)):
            data = np.load(out / "xsub" / f"{part}_data_{feature}.npy")
            assert data.shape == (3, 3, 301, 25, 2) and data.dtype == np.float32  # longest sample > 300
            for k, r in enumerate(rows):
                t = offsets[r + 1] - offsets[r]
                np.testing.assert_array_equal(data[k, :, :t].transpose(1, 3, 2, 0), source[offsets[r]:offsets[r + 1]])
                assert not data[k, :, t:].any()  # zero padding


def test_npy_loop_padding_fixed_length_and_no_splits(tmp_path):
    frames, offsets = random_store(tmp_path / "s.zarr", [5, 8], splits=False)
    out = export_store(tmp_path / "s.zarr", "npy", tmp_path / "npy", frames=12, pad="loop", progress=False)
    data = np.load(out / "all_data_joint.npy")
    assert data.shape == (2, 3, 12, 25, 2)
    np.testing.assert_array_equal(data[0].transpose(1, 3, 2, 0), frames[np.arange(12) % 5])
    with open(out / "all_label.pkl", "rb") as fh:
        assert pickle.load(fh) == (["s000", "s001"], [0, 1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["npy", "s.zarr"]  # no partial output left


def test_existing_output_and_cli(tmp_path):
    random_store(tmp_path / "s.zarr", [4, 6])
    (tmp_path / "ann.pkl").write_text("keep me")
    with pytest.raises(StoreError, match="already exists"):
        export_store(tmp_path / "s.zarr", "pyskl", tmp_path / "ann.pkl", progress=False)
    assert (tmp_path / "ann.pkl").read_text() == "keep me"
    runner = CliRunner()
    result = runner.invoke(main, ["export", str(tmp_path / "s.zarr"), "--format", "pyskl", "-o",
                                  str(tmp_path / "ann.pkl"), "--overwrite", "-q"])
    assert result.exit_code == 0, result.output
    with open(tmp_path / "ann.pkl", "rb") as fh:
        assert len(pickle.load(fh)["annotations"]) == len(SkeletonStore.open(tmp_path / "s.zarr"))
    result = runner.invoke(main, ["export", str(tmp_path / "s.zarr"), "--format", "npy", "--feats", "q", "-o",
                                  str(tmp_path / "npy")])
    assert result.exit_code == 1 and "unknown modality 'q'" in result.output

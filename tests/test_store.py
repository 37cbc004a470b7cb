"""The store: atomic build and publish, shard-owned writes, the reader API, schema checks."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from schemas import store as schema
from skeltools.store import (SkeletonStore, StoreBuilder, StoreError, shard_ranges, work_dir_for,
                             write_frames)


def build_store(path, lengths, *, shard=64, chunk=16, seed=0, overwrite=False):
    """A small store with random frames; returns the frames it holds."""
    rng = np.random.default_rng(seed)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    frames = rng.normal(size=(int(offsets[-1]), 2, 25, 3)).astype(np.float32)
    builder = StoreBuilder(path, work_dir_for(path), len(frames), (2, 25, 3), shard, chunk)
    builder.create({
        "schema": schema.SCHEMA_VERSION, "dataset": "ntu60", "layout": "ntu25", "coords": "xyz", "persons": 2,
        "num_samples": len(lengths), "num_frames": len(frames), "preset": "none", "preprocessing": {},
        "class_names": ["a", "b", "c"], "source": "test", "created": "2026-01-01T00:00:00Z",
        "skeltools_version": "0",
    })
    for start, stop in shard_ranges(len(frames), shard):
        write_frames(builder.array_path(), start, frames[start:stop])
    n = len(lengths)
    index = pa.Table.from_pydict(
        {"sample_id": [f"s{i}" for i in range(n)], "label": [i % 3 for i in range(n)], "length": list(lengths),
         "n_persons": [1] * n, "xsub_train": [i % 2 == 0 for i in range(n)],
         "xsub_test": [i % 2 == 1 for i in range(n)]},
        schema=schema.index_schema({}, ["xsub_train", "xsub_test"], {"dataset": "ntu60"}))
    builder.publish(offsets, index, {"counts": {"converted": n}}, overwrite=overwrite)
    return frames, offsets


def test_round_trip_and_reader_api(tmp_path):
    lengths = [5, 130, 1, 77, 40]
    frames, offsets = build_store(tmp_path / "s.zarr", lengths)
    store = SkeletonStore.open(tmp_path / "s.zarr")
    assert len(store) == 5 and store.lengths.tolist() == lengths
    for i in range(5):
        sample = store[i]
        assert sample.shape == (lengths[i], 2, 25, 3) and sample.dtype == np.float32
        np.testing.assert_array_equal(sample, frames[offsets[i]:offsets[i + 1]])
    np.testing.assert_array_equal(store[-1], store.read(4, "joint"))
    assert store.rows("xsub_train").tolist() == [0, 2, 4] and store.rows().tolist() == [0, 1, 2, 3, 4]
    assert store.split_columns == ["xsub_train", "xsub_test"]
    assert store.index.column("sample_id").to_pylist()[1] == "s1"
    assert store.modalities == ("joint",) and store.report == {"counts": {"converted": 5}}
    joint = store.array("joint")
    assert joint.chunks == (16, 2, 25, 3) and joint.shards == (64, 2, 25, 3)
    assert store.load().array("joint") is store.array("joint")  # numpy after load
    np.testing.assert_array_equal(store[3], frames[offsets[3]:offsets[4]])
    with pytest.raises(IndexError):
        store[5]
    with pytest.raises(StoreError, match="no split 'xview_train'"):
        store.rows("xview_train")
    with pytest.raises(StoreError, match="skeltools modalities"):
        store.read(0, "bone")
    assert not work_dir_for(tmp_path / "s.zarr").exists()  # work directory removed after publish


def test_checksummed_zstd_shards(tmp_path):
    build_store(tmp_path / "s.zarr", [70, 70])
    meta = json.loads((tmp_path / "s.zarr" / "joint" / "zarr.json").read_text())
    inner = meta["codecs"][0]["configuration"]["codecs"]
    assert [c["name"] for c in inner] == ["bytes", "zstd", "crc32c"]
    assert meta["dimension_names"] == list(schema.FRAME_DIMS)
    assert len(list((tmp_path / "s.zarr" / "joint" / "c").iterdir())) == 3  # 140 frames / 64-frame shards


def test_publish_refuses_existing_target_unless_overwrite(tmp_path):
    build_store(tmp_path / "s.zarr", [3])
    with pytest.raises(StoreError, match="already exists"):
        build_store(tmp_path / "s.zarr", [4])
    assert len(SkeletonStore.open(tmp_path / "s.zarr")) == 1  # untouched
    build_store(tmp_path / "s.zarr", [4, 4], overwrite=True)
    assert len(SkeletonStore.open(tmp_path / "s.zarr")) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]


def test_unfinished_store_is_never_at_the_target(tmp_path):
    target = tmp_path / "s.zarr"
    builder = StoreBuilder(target, work_dir_for(target), 10, (2, 25, 3), 64, 16)
    builder.create({"schema": 1})
    write_frames(builder.array_path(), 0, np.ones((10, 2, 25, 3), np.float32))
    assert not target.exists()
    with pytest.raises(StoreError, match="interrupted conversion"):
        SkeletonStore.open(target)


def test_open_rejects_broken_stores(tmp_path):
    build_store(tmp_path / "s.zarr", [3, 4])
    (tmp_path / "s.zarr" / "index.parquet").unlink()
    with pytest.raises(StoreError, match="index.parquet is missing"):
        SkeletonStore.open(tmp_path / "s.zarr")
    with pytest.raises(StoreError, match="not a skeltools store"):
        SkeletonStore.open(tmp_path)
    build_store(tmp_path / "t.zarr", [3, 4])
    meta_path = tmp_path / "t.zarr" / "zarr.json"
    meta = json.loads(meta_path.read_text())
    meta["attributes"]["num_samples"] = 5
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(StoreError, match="2 rows, attrs say 5"):
        SkeletonStore.open(tmp_path / "t.zarr")

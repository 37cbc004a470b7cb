"""The direct shard reader returns exactly zarr's bytes, checks crc32c, and never turns a missing file into zeros."""
from __future__ import annotations

import numpy as np
import pytest

from skeltools.shardread import ShardReader, ShardReadError
from skeltools.shards import write_shards
from skeltools.store import StoreBuilder


def _array(tmp_path, frames: int = 200):
    """An array of ``frames`` frames (shards of 64, chunks of 16): zero and -0.0 chunks, NaN/inf, a partial last
    shard; written by the direct encoder (byte-identical to zarr's files)."""
    rng = np.random.default_rng(3)
    block = np.round(rng.normal(size=(frames, 2, 5, 3)), 3).astype(np.float32)
    block[16:32] = 0.0  # an all-zero chunk: absent from its shard
    block[32:48] = -0.0  # kept (bits differ from the fill value)
    block[70, 0, 1] = np.nan
    block[75:77, 1] = np.inf
    builder = StoreBuilder(tmp_path / "s.zarr", tmp_path, frames, (2, 5, 3), shard_frames=64, chunk_frames=16)
    builder.create({})
    assert write_shards(builder.array_path(), 0, block)
    return builder.array_path(), block


def test_reads_equal_zarr_reads(tmp_path):
    import zarr

    path, block = _array(tmp_path)
    reader = ShardReader.open(path, cache_bytes=3 * 16 * 30 * 4)  # three chunks cached: evictions happen
    theirs = zarr.open_array(str(path), mode="r")
    ranges = [(0, 200), (10, 20), (16, 32), (60, 70), (50, 140), (190, 200), (199, 200), (120, 130), (0, 1), (5, 5)]
    rng = np.random.default_rng(0)
    ranges += [tuple(sorted(rng.integers(0, 201, 2))) for _ in range(40)]
    for start, stop in ranges:
        ours = reader.read(start, stop)
        assert ours.dtype == np.float32 and ours.shape == (stop - start, 2, 5, 3)
        assert ours.tobytes() == np.asarray(theirs[start:stop]).tobytes(), (start, stop)
    assert reader.read(60, 70).tobytes() == block[60:70].tobytes()  # spans shards 0 and 1
    assert np.signbit(reader.read(32, 48)).all() and not np.signbit(reader.read(16, 32)).any()
    assert len(reader._chunks) == 3


def test_store_lazy_read_uses_the_reader_and_matches_zarr(tmp_path):
    import pyarrow as pa
    import zarr

    from schemas import store as schema
    from skeltools.store import SkeletonStore, work_dir_for

    frames = 200
    block = np.random.default_rng(1).normal(size=(frames, 2, 25, 3)).astype(np.float32)
    block[100:140] = 0.0
    path = tmp_path / "store.zarr"
    builder = StoreBuilder(path, work_dir_for(path), frames, (2, 25, 3), shard_frames=64, chunk_frames=16)
    builder.create({"schema": 1, "dataset": "t", "layout": "ntu25", "coords": "xyz", "persons": 2,
                    "num_samples": 3, "num_frames": frames, "preset": "none", "preprocessing": {},
                    "class_names": ["a"], "source": "t", "created": "", "skeltools_version": ""})
    assert write_shards(builder.array_path(), 0, block)
    offsets = np.array([0, 50, 130, 200])  # sample 1 spans shards 0-2, sample 2 ends in the partial last shard
    index = pa.Table.from_pydict({"sample_id": ["a", "b", "c"], "label": [0, 0, 0], "length": [50, 80, 70],
                                  "n_persons": [2, 2, 2]}, schema=schema.index_schema({}, []))
    builder.publish(offsets, index, {})
    store = SkeletonStore.open(path)
    assert store.reader("joint") is not None
    theirs = zarr.open_array(str(path / "joint"), mode="r")
    for i in range(3):
        assert store.read(i).tobytes() == np.asarray(theirs[offsets[i]:offsets[i + 1]]).tobytes()
    with pytest.raises(Exception, match="no 'bone' array"):
        store.read(0, "bone")


def test_missing_shard_file_is_an_error_not_zeros(tmp_path):
    path, _ = _array(tmp_path)
    (path / "c" / "1" / "0" / "0" / "0").unlink()
    reader = ShardReader.open(path)
    assert reader.read(0, 64).shape == (64, 2, 5, 3)
    with pytest.raises(ShardReadError, match=r"c/1/0/0/0: shard file missing \(frames 64 on\)"):
        reader.read(60, 70)


def test_checksums_are_verified(tmp_path):
    path, _ = _array(tmp_path)
    shard = path / "c" / "0" / "0" / "0" / "0"
    data = bytearray(shard.read_bytes())
    data[5] ^= 0xFF  # inside the first chunk's compressed bytes
    shard.write_bytes(bytes(data))
    reader = ShardReader.open(path)
    with pytest.raises(ShardReadError, match="crc32c mismatch in chunk 0"):
        reader.read(0, 4)
    data[-1] ^= 0xFF  # the index checksum
    shard.write_bytes(bytes(data))
    with pytest.raises(ShardReadError, match="crc32c mismatch in the shard index"):
        ShardReader.open(path).read(0, 4)
    shard.write_bytes(bytes(data[:100]))
    with pytest.raises(ShardReadError, match="crc32c mismatch|shorter than its"):
        ShardReader.open(path).read(0, 4)


def test_reader_pickles_by_path_and_other_layouts_are_not_read(tmp_path):
    import pickle

    import zarr

    path, block = _array(tmp_path)
    reader = ShardReader.open(path)
    reader.read(0, 10)
    copy = pickle.loads(pickle.dumps(reader))
    assert not copy._chunks and copy.read(0, 200).tobytes() == block.tobytes()
    other = zarr.open_array(str(tmp_path / "plain.zarr"), mode="w", shape=(10, 3), chunks=(5, 3), dtype="float32")
    assert ShardReader.open(tmp_path / "plain.zarr") is None and other.shape == (10, 3)

"""The direct shard encoder writes exactly the files zarr writes, and zarr reads them back."""
from __future__ import annotations

import numpy as np
import pytest

from skeltools.shards import shard_layout, write_shards
from skeltools.store import StoreBuilder


def _files(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _block(frames: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    block = np.round(rng.normal(size=(frames, 2, 5, 3)), 3).astype(np.float32)
    block[:, 1] = 0.0  # a second person mostly absent, as in real data
    block[16:32] = 0.0  # a whole zero chunk: skipped
    block[32:48] = -0.0  # bits differ from the fill value: kept
    block[50, 0, 0] = np.nan
    block[52:56, 0] = np.inf
    block[100:116] = 0.0
    return block


@pytest.mark.parametrize("frames", [64, 100, 200, 260])  # one shard, a partial one, several with a partial last
def test_direct_shards_equal_zarr_shards(tmp_path, frames):
    import zarr

    block = _block(frames)
    paths = {}
    for name in ("zarr", "direct"):
        builder = StoreBuilder(tmp_path / name / "s.zarr", tmp_path / name, frames, (2, 5, 3), shard_frames=64,
                               chunk_frames=16)
        builder.create({})
        paths[name] = builder.array_path()
    zarr.open_array(str(paths["zarr"]), mode="r+")[:] = block
    assert write_shards(paths["direct"], 0, block)
    ours, theirs = _files(paths["direct"]), _files(paths["zarr"])
    assert ours.keys() == theirs.keys() and ours == theirs
    back = zarr.open_array(str(paths["direct"]), mode="r")[:]
    np.testing.assert_array_equal(back, block)
    assert np.signbit(back[32:48]).all()


def test_an_all_zero_shard_has_no_file_and_partial_writes_go_to_zarr(tmp_path):
    builder = StoreBuilder(tmp_path / "s.zarr", tmp_path, 200, (2, 5, 3), shard_frames=64, chunk_frames=16)
    builder.create({})
    path = builder.array_path()
    layout = shard_layout(path)
    assert (layout.shard_frames, layout.chunk_frames, layout.shape) == (64, 16, (200, 2, 5, 3))
    block = _block(128)
    block[64:] = 0.0
    assert write_shards(path, 0, block)
    assert layout.shard_path(path, 0).exists() and not layout.shard_path(path, 1).exists()
    assert not write_shards(path, 32, block[:64])  # not a shard's start
    assert not write_shards(path, 64, block[:70])  # ends inside a shard that is not the array's last
    assert not write_shards(path, 0, block.astype(np.float64))
    assert write_shards(path, 192, block[:8])  # the array's last shard, partial


def test_other_layouts_are_not_encoded(tmp_path):
    import zarr

    array = zarr.create_array(str(tmp_path / "a.zarr"), shape=(64, 2), chunks=(16, 2), shards=(64, 2), dtype="float32",
                              fill_value=0.0)  # zarr's default codecs: not the store's
    assert shard_layout(tmp_path / "a.zarr") is None
    assert not write_shards(tmp_path / "a.zarr", 0, np.ones((64, 2), np.float32))
    assert array.shape == (64, 2)

"""`subset` and `merge` preserve data exactly and refuse what cannot be combined."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from skeltools.cli import main
from skeltools.modalities import write_modalities
from skeltools.reshape import merge_stores, subset_store
from skeltools.store import SkeletonStore, StoreError
from test_store import build_store


@pytest.fixture
def stores(tmp_path):
    build_store(tmp_path / "a.zarr", [40, 90, 7, 130, 5, 64], shard=64, chunk=16, seed=1)
    build_store(tmp_path / "b.zarr", [33, 70], shard=64, chunk=16, seed=2)
    index = pq.read_table(tmp_path / "b.zarr" / "index.parquet")
    ids = pa.array(["t0", "t1"])
    pq.write_table(index.set_column(0, "sample_id", ids), tmp_path / "b.zarr" / "index.parquet")
    write_modalities(tmp_path / "a.zarr", ["bone"])
    return tmp_path / "a.zarr", tmp_path / "b.zarr"


def test_subset_by_split_class_and_count(stores, tmp_path):
    a = SkeletonStore.open(stores[0])
    result = CliRunner().invoke(main, ["subset", str(stores[0]), "-o", str(tmp_path / "s.zarr"), "--split",
                                       "xsub_train", "--classes", "0,b", "--max-per-class", "1"])
    assert result.exit_code == 0, result.output
    s = SkeletonStore.open(tmp_path / "s.zarr")
    # xsub_train = rows 0, 2, 4 with labels 0, 2, 1 -> classes {0, 1}: rows 0 and 4
    assert s.index.column("sample_id").to_pylist() == ["s0", "s4"]
    assert s.modalities == ("joint", "bone")
    for new, old in enumerate((0, 4)):
        for m in ("joint", "bone"):
            np.testing.assert_array_equal(s.read(new, m), a.read(old, m))
    assert s.attrs["num_samples"] == 2 and s.report["source"] == "subset"
    with pytest.raises(StoreError, match="no class 'zebra'"):
        subset_store(stores[0], tmp_path / "t.zarr", classes=["zebra"])


def test_merge_preserves_every_frame(stores, tmp_path):
    assert merge_stores(stores, tmp_path / "m.zarr") == 8
    m, a, b = (SkeletonStore.open(p) for p in (tmp_path / "m.zarr", *stores))
    assert m.modalities == ("joint",)  # bone only in a
    assert m.index.column("sample_id").to_pylist() == [f"s{i}" for i in range(6)] + ["t0", "t1"]
    assert m.lengths.tolist() == a.lengths.tolist() + b.lengths.tolist()
    expected = np.concatenate([a.array("joint")[:], b.array("joint")[:]])
    assert m.array("joint")[:].tobytes() == expected.tobytes()


def test_merge_refuses_duplicates_and_other_layouts(stores, tmp_path):
    with pytest.raises(StoreError, match="6 sample ids occur in more than one store"):
        merge_stores([stores[0], stores[0]], tmp_path / "m.zarr")
    import zarr

    zarr.open_group(str(stores[1]), mode="r+").attrs["layout"] = "body25"  # 25 joints too: only merge objects
    result = CliRunner().invoke(main, ["merge", *map(str, stores), "-o", str(tmp_path / "m.zarr")])
    assert result.exit_code == 1 and "their layout differ" in result.output

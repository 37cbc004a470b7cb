"""`convert --engine dask`: the same shard-aligned tasks on a 2-process Dask cluster give the local pool's store;
clear errors when the scheduler cannot be reached or Dask is not installed."""
from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner

from skeltools.cli import main
from skeltools.convert import ConversionError, convert_ntu
from skeltools.store import SkeletonStore
from skeltools.synth import write_ntu_corpus

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes of one thread; the nanny spawns them (no fork after OpenMP, see ecosystem notes)."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as local:
        yield local


def test_dask_store_is_identical_to_the_local_pool(cluster, tmp_path):
    raw = tmp_path / "raw"
    write_ntu_corpus(raw, 40, seed=11)
    small = {"shard_frames": 512, "chunk_frames": 128, "progress": False}
    local = convert_ntu([raw], tmp_path / "local.zarr", workers=2, **small)
    remote = convert_ntu([raw], tmp_path / "dask.zarr", engine="dask", scheduler=cluster.scheduler_address, **small)
    assert remote["workers"] == 2 and local["counts"] == remote["counts"]
    a, b = SkeletonStore.open(tmp_path / "local.zarr"), SkeletonStore.open(tmp_path / "dask.zarr")
    assert a.offsets[-1] > 2 * 512  # several shards, so both workers write some
    assert a.array("joint")[:].tobytes() == b.array("joint")[:].tobytes()
    assert a.offsets.tobytes() == b.offsets.tobytes()
    assert a.index.equals(b.index)
    index_file = "index.parquet"
    assert (tmp_path / "local.zarr" / index_file).read_bytes() == (tmp_path / "dask.zarr" / index_file).read_bytes()


def test_cli_dask_engine_needs_a_reachable_scheduler(tmp_path, monkeypatch):
    import dask

    raw = tmp_path / "raw"
    write_ntu_corpus(raw, 2, seed=1)
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        result = CliRunner().invoke(main, ["convert", "ntu", str(raw), "-o", str(tmp_path / "s.zarr"), "-q",
                                           "--engine", "dask", "--scheduler", "tcp://127.0.0.1:9"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.startswith("error: cannot reach the Dask scheduler at tcp://127.0.0.1:9")
    assert not (tmp_path / "s.zarr").exists()
    result = CliRunner().invoke(main, ["convert", "ntu", str(raw), "-o", str(tmp_path / "s.zarr"), "--engine", "dask"])
    assert result.exit_code == 1 and "--engine dask needs --scheduler ADDRESS" in result.output
    with pytest.raises(ConversionError, match="absolute input paths"):
        convert_ntu(["raw"], tmp_path / "s.zarr", engine="dask", scheduler="tcp://127.0.0.1:9")


def test_dask_engine_without_dask_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    raw = tmp_path / "raw"
    write_ntu_corpus(raw, 2, seed=1)
    with pytest.raises(ConversionError, match=r"pip install skeltools\[dask\]"):
        convert_ntu([raw], tmp_path / "s.zarr", engine="dask", scheduler="tcp://127.0.0.1:9", progress=False)

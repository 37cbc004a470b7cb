"""`skeltools modalities`: values against numpy, layout of the new arrays, idempotence, interruption safety."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner
from test_kernels import CASES, numpy_bones, numpy_motion, random_frames

import skeltools.modalities as modalities_mod
from schemas import store as schema
from schemas.layouts import LAYOUTS
from skeltools.cli import main
from skeltools.kernels import BONE, MOTION
from skeltools.modalities import FeaturePlan, modalities_work_dir, parse_features, write_modalities
from skeltools.store import SkeletonStore, StoreBuilder, shard_ranges, work_dir_for, write_frames


def random_store(path, lengths, *, layout="ntu25", coords="xyz", shard=64, chunk=16, seed=0, splits=True):
    """A store of ``random_frames``; labels i % 3, ``xsub_train`` on even samples and ``xsub_test`` on odd
    ones (with ``splits``). Returns (frames, offsets)."""
    frames, offsets = random_frames(lengths, LAYOUTS[layout].num_joints, coords, seed=seed)
    n = len(lengths)
    builder = StoreBuilder(path, work_dir_for(path), len(frames), frames.shape[1:], shard, chunk)
    builder.create({
        "schema": schema.SCHEMA_VERSION, "dataset": "test", "layout": layout, "coords": coords, "persons": 2,
        "num_samples": n, "num_frames": len(frames), "preset": "none", "preprocessing": {},
        "class_names": ["a", "b", "c"], "source": "test", "created": "2026-01-01T00:00:00Z",
        "skeltools_version": "0",
    })
    for start, stop in shard_ranges(len(frames), shard):
        write_frames(builder.array_path(), start, frames[start:stop])
    columns = {"sample_id": [f"s{i:03d}" for i in range(n)], "label": [i % 3 for i in range(n)],
               "length": list(lengths), "n_persons": [1 + i % 2 for i in range(n)]}
    split_names = ["xsub_train", "xsub_test"] if splits else []
    if splits:
        columns |= {"xsub_train": [i % 2 == 0 for i in range(n)], "xsub_test": [i % 2 == 1 for i in range(n)]}
    index = pa.Table.from_pydict(columns, schema=schema.index_schema({}, split_names))
    builder.publish(offsets, index, {})
    return frames, offsets


LENGTHS = [1, 7, 130, 2, 40, 1, 9, 64]  # 254 frames: four 64-frame shards, samples across shard edges


@pytest.mark.parametrize("layout,coords", CASES)
def test_written_modalities_match_numpy(tmp_path, layout, coords):
    frames, offsets = random_store(tmp_path / "s.zarr", LENGTHS, layout=layout, coords=coords)
    summary = write_modalities(tmp_path / "s.zarr", workers=1, progress=False)
    assert summary["written"] == ["bone", "joint_motion", "bone_motion"] and summary["shards"] == 4
    store = SkeletonStore.open(tmp_path / "s.zarr")
    assert store.modalities == schema.MODALITIES
    score = coords == "xyc"
    bone = numpy_bones(frames, LAYOUTS[layout].bone_parents, score)
    expect = {"bone": bone, "joint_motion": numpy_motion(frames, offsets, score),
              "bone_motion": numpy_motion(bone, offsets, score)}
    joint = store.array("joint")
    for name, values in expect.items():
        array = store.array(name)
        np.testing.assert_array_equal(array[:], values)
        assert (array.shape, array.chunks, array.shards) == (joint.shape, joint.chunks, joint.shards)
        assert ("mean" in array.attrs["rule"]) == score
    assert not modalities_work_dir(tmp_path / "s.zarr").exists()


def test_worker_pool_gives_the_same_arrays(tmp_path):
    random_store(tmp_path / "a.zarr", LENGTHS)
    random_store(tmp_path / "b.zarr", LENGTHS)
    write_modalities(tmp_path / "a.zarr", workers=1, progress=False)
    write_modalities(tmp_path / "b.zarr", workers=2, progress=False)  # forkserver pool, serial kernels
    a, b = SkeletonStore.open(tmp_path / "a.zarr"), SkeletonStore.open(tmp_path / "b.zarr")
    for name in ("bone", "joint_motion", "bone_motion"):
        np.testing.assert_array_equal(a.array(name)[:], b.array(name)[:])


def _shard_files(path):
    files = {p: p.stat().st_mtime_ns for p in (path / "c").rglob("*") if p.is_file()}
    assert files
    return files


def test_rerun_is_idempotent_and_overwrite_recomputes(tmp_path):
    path = tmp_path / "s.zarr"
    random_store(path, LENGTHS)
    write_modalities(path, ["b"], workers=1, progress=False)
    before = _shard_files(path / "bone")
    summary = write_modalities(path, ["b", "jm"], workers=1, progress=False)
    assert summary["written"] == ["joint_motion"] and summary["kept"] == ["bone"]
    assert _shard_files(path / "bone") == before  # untouched
    bone = SkeletonStore.open(path).array("bone")[:]
    summary = write_modalities(path, ["b"], overwrite=True, workers=1, progress=False)
    assert summary["written"] == ["bone"] and _shard_files(path / "bone") != before
    np.testing.assert_array_equal(SkeletonStore.open(path).array("bone")[:], bone)
    with pytest.raises(ValueError, match="joint is the source"):
        write_modalities(path, ["j"], progress=False)


def test_interrupted_run_leaves_the_store_as_it_was(tmp_path, monkeypatch):
    path = tmp_path / "s.zarr"
    frames, offsets = random_store(path, LENGTHS)
    real_write_shard = modalities_mod.write_shard
    calls = []

    def dies_on_third_shard(task):
        calls.append(SkeletonStore.open(path).modalities)  # the store opens while shards are being written
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_write_shard(task)

    monkeypatch.setattr(modalities_mod, "write_shard", dies_on_third_shard)
    with pytest.raises(KeyboardInterrupt):
        write_modalities(path, workers=1, progress=False)
    assert calls == [("joint",)] * 3
    assert SkeletonStore.open(path).modalities == ("joint",) and modalities_work_dir(path).exists()

    monkeypatch.setattr(modalities_mod, "write_shard", real_write_shard)
    write_modalities(path, workers=1, progress=False)  # starts afresh
    motion = SkeletonStore.open(path).array("joint_motion")[:]
    np.testing.assert_array_equal(motion, numpy_motion(frames, offsets, False))
    assert not modalities_work_dir(path).exists()


def test_store_stays_openable_while_arrays_are_swapped(tmp_path, monkeypatch):
    path = tmp_path / "s.zarr"
    random_store(path, LENGTHS)
    write_modalities(path, workers=1, progress=False)
    real_swap = modalities_mod._swap_in
    seen = []

    def watched_swap(built, target, old):
        seen.append(SkeletonStore.open(path).modalities)
        real_swap(built, target, old)
        seen.append(SkeletonStore.open(path).modalities)

    monkeypatch.setattr(modalities_mod, "_swap_in", watched_swap)
    write_modalities(path, ["bm", "b"], overwrite=True, workers=1, progress=False)
    assert seen == [schema.MODALITIES] * 4
    assert not any(p.name.endswith(".old") for p in tmp_path.rglob("*"))


def test_feature_plan_reads_stored_arrays_and_derives_the_rest():
    assert parse_features("j+bm") == ("joint", "bone_motion") == parse_features(["joint", "bm"])
    plan = FeaturePlan.make("j+b+jm+bm")
    assert plan.steps == (("joint", 0), ("joint", BONE), ("joint", MOTION), ("joint", BONE | MOTION))
    assert plan.sources == ("joint",)
    plan = FeaturePlan.make("bm+jm", stored=("joint", "bone"))
    assert plan.steps == (("bone", MOTION), ("joint", MOTION)) and plan.sources == ("bone", "joint")
    assert FeaturePlan.make("b", stored=schema.MODALITIES).steps == (("bone", 0),)
    with pytest.raises(ValueError, match="unknown modality 'x'"):
        parse_features("j+x")
    with pytest.raises(ValueError, match="twice"):
        parse_features("j+joint")


def test_cli_modalities_and_info(tmp_path):
    random_store(tmp_path / "s.zarr", LENGTHS)
    runner = CliRunner()
    result = runner.invoke(main, ["modalities", str(tmp_path / "s.zarr"), "--feats", "b", "-q"])
    assert result.exit_code == 0, result.output
    assert "wrote bone" in result.output
    result = runner.invoke(main, ["modalities", str(tmp_path / "s.zarr"), "-q"])
    assert "wrote joint_motion, bone_motion" in result.output and "kept bone" in result.output
    info = runner.invoke(main, ["info", str(tmp_path / "s.zarr")]).output
    assert "bone_motion (254, 2, 25, 3)" in info
    result = runner.invoke(main, ["modalities", str(tmp_path / "s.zarr"), "--feats", "b,x"])
    assert result.exit_code == 1 and "unknown modality 'x'" in result.output and "Traceback" not in result.output



def _shard_bytes(path):
    return {p.relative_to(path): p.read_bytes() for p in sorted((path / "c").rglob("*")) if p.is_file()}


def test_shard_files_are_zarrs_bytes_whatever_the_thread_count(tmp_path):
    """Direct reads + the direct encoder write the files zarr writes for the same values, on 1 or 3 threads."""
    import zarr

    from skeltools.store import create_frame_array

    written = {}
    for threads in (1, 3):
        frames, offsets = random_store(tmp_path / f"{threads}.zarr", LENGTHS)
        write_modalities(tmp_path / f"{threads}.zarr", workers=threads, progress=False)
        written[threads] = tmp_path / f"{threads}.zarr"
    bone = numpy_bones(frames, LAYOUTS["ntu25"].bone_parents, False)
    expect = {"bone": bone, "joint_motion": numpy_motion(frames, offsets, False),
              "bone_motion": numpy_motion(bone, offsets, False)}
    group = zarr.open_group(str(tmp_path / "plain.zarr"), mode="w-")
    for name, values in expect.items():
        create_frame_array(group, name, values.shape, 64, 16)[:] = values
        theirs = _shard_bytes(tmp_path / "plain.zarr" / name)
        assert len(theirs) == 4
        assert _shard_bytes(written[1] / name) == theirs and _shard_bytes(written[3] / name) == theirs, name

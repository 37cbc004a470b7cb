"""`convert ... --append`: same store as a one-shot conversion of the union, duplicates skipped, option
mismatches refused, an interrupted append leaves the old store valid and the rerun completes."""
from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

import skeltools.convert as convert_mod
from skeltools.cli import main
from skeltools.convert import ConversionError, convert_ntu
from skeltools.modalities import write_modalities
from skeltools.store import SkeletonStore, StoreError, work_dir_for
from skeltools.synth import write_ntu_corpus
from skeltools.synth_sets import write_smarthome_corpus
from skeltools.validate import validate_store

SMALL = {"shard_frames": 256, "chunk_frames": 64}  # several shards, the last one partial


def split_corpus(paths, root, first: int):
    """Copy files into ``root/a`` (the ``first`` by sorted name), ``root/b`` (the rest) and ``root/all``."""
    paths = sorted(paths, key=lambda p: p.name)
    for name, part in (("a", paths[:first]), ("b", paths[first:]), ("all", paths)):
        (root / name).mkdir(parents=True)
        for p in part:
            shutil.copy(p, root / name / p.name)
    return root / "a", root / "b", root / "all"


def tree_digest(path) -> str:
    """Hash of every file's relative path and bytes under ``path``."""
    digest = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(f.relative_to(path)).encode() + b"\0" + f.read_bytes())
    return digest.hexdigest()


def assert_same_store(path, expected_path):
    """Arrays (every modality), offsets, index and attrs but the creation time are identical."""
    store, expected = SkeletonStore.open(path), SkeletonStore.open(expected_path)
    assert store.modalities == expected.modalities
    for name in expected.modalities:
        assert store.array(name)[:].tobytes() == expected.array(name)[:].tobytes(), name
    assert store.offsets.tobytes() == expected.offsets.tobytes()
    assert store.index.equals(expected.index)
    drop = ("created",)
    assert {k: v for k, v in store.attrs.items() if k not in drop} == \
           {k: v for k, v in expected.attrs.items() if k not in drop}
    report = validate_store(path)
    assert report.ok, report.text()


@pytest.fixture(scope="module")
def ntu(tmp_path_factory):
    """An NTU corpus split into a (first 14 ids), b (the other 10) and all; one-shot stores of a and of all."""
    root = tmp_path_factory.mktemp("ntu")
    paths = write_ntu_corpus(root / "raw", 24, seed=5)
    a, b, union = split_corpus(paths, root, 14)
    convert_ntu([union], root / "union.zarr", workers=1, progress=False, **SMALL)
    write_modalities(root / "union.zarr", workers=1, progress=False)
    return a, b, union, root / "union.zarr"


def test_ntu_append_equals_one_shot_and_skips_duplicates(ntu, tmp_path):
    a, b, union, expected = ntu
    out = tmp_path / "s.zarr"
    convert_ntu([a], out, workers=1, progress=False, **SMALL)
    write_modalities(out, workers=1, progress=False)
    before = SkeletonStore.open(out)
    assert before.offsets[-1] > 256 and before.offsets[-1] % 256  # full shards and a partial last one
    first_shard = out / "joint" / "c" / "0" / "0" / "0" / "0"
    inode = first_shard.stat().st_ino

    # The union folder: a's files are already in the store and are reported as duplicates.
    report = convert_ntu([union], out, append=True, workers=2, progress=False)
    n_a, n_b = len(list(a.iterdir())), len(list(b.iterdir()))
    assert report["counts"]["converted"] == n_b and report["counts"]["duplicates"] == n_a
    assert sorted(d["sample_id"] for d in report["duplicates"]) == sorted(p.stem for p in a.iterdir())
    assert_same_store(out, expected)
    assert first_shard.stat().st_ino == inode  # a full shard was kept (linked), not rewritten
    stored = SkeletonStore.open(out).report
    assert stored["counts"]["converted"] == n_a + n_b and stored["counts"]["duplicates"] == n_a
    assert len(stored["appends"]) == 1 and stored["appends"][0]["counts"]["converted"] == n_b
    assert not work_dir_for(out).exists()

    # Appending the same files again changes nothing.
    digest = tree_digest(out)
    report = convert_ntu([union], out, append=True, workers=1, progress=False)
    assert report["counts"]["converted"] == 0 and report["counts"]["duplicates"] == n_a + n_b
    assert tree_digest(out) == digest


def test_interrupted_append_keeps_the_old_store_and_rerun_completes(ntu, tmp_path, monkeypatch):
    a, b, _, expected = ntu
    out = tmp_path / "s.zarr"
    convert_ntu([a], out, workers=1, progress=False, **SMALL)
    write_modalities(out, workers=1, progress=False)
    digest = tree_digest(out)
    calls = []
    real = convert_mod.write_shard

    def crash_after_one(task):
        if calls:
            raise RuntimeError("simulated crash while writing shards")
        calls.append(task)
        return real(task)

    monkeypatch.setattr(convert_mod, "write_shard", crash_after_one)
    with pytest.raises(RuntimeError, match="simulated crash"):
        convert_ntu([b], out, append=True, workers=1, progress=False)
    assert calls and work_dir_for(out).exists()
    assert tree_digest(out) == digest
    report = validate_store(out)
    assert report.ok, report.text()

    monkeypatch.setattr(convert_mod, "write_shard", real)
    convert_ntu([b], out, append=True, workers=1, progress=False)
    assert_same_store(out, expected)


def test_append_order_is_store_order_when_new_ids_sort_first(ntu, tmp_path):
    a, b, _, expected_path = ntu
    out = tmp_path / "s.zarr"
    convert_ntu([b], out, workers=1, progress=False, **SMALL)
    convert_ntu([a], out, append=True, workers=1, progress=False)
    store, expected = SkeletonStore.open(out), SkeletonStore.open(expected_path)
    ids = store.index.column("sample_id").to_pylist()
    assert ids == sorted(p.stem for p in b.iterdir()) + sorted(p.stem for p in a.iterdir())
    where = {sample_id: i for i, sample_id in enumerate(expected.index.column("sample_id").to_pylist())}
    for i, sample_id in enumerate(ids):  # each sample's frames and row are those of the one-shot store
        assert store[i].tobytes() == expected[where[sample_id]].tobytes(), sample_id
        assert store.index.slice(i, 1).to_pylist() == expected.index.slice(where[sample_id], 1).to_pylist()
    assert validate_store(out).ok


def test_append_refuses_other_options_and_bad_targets(ntu, tmp_path):
    a, b, _, _ = ntu
    out = tmp_path / "s.zarr"
    convert_ntu([a], out, workers=1, progress=False, **SMALL)
    with pytest.raises(ConversionError, match=r"cannot append, the options differ.*preset: store \"clean\", "
                                              r"this run \"none\""):
        convert_ntu([b], out, preset="none", append=True, workers=1, progress=False)
    with pytest.raises(ConversionError, match="dataset: store \"ntu60\", this run \"ntu120\""):
        convert_ntu([b], out, dataset="ntu120", append=True, workers=1, progress=False)
    with pytest.raises(StoreError, match="no store to append to"):
        convert_ntu([b], tmp_path / "missing.zarr", append=True, workers=1, progress=False)
    with pytest.raises(ConversionError, match="choose one"):
        convert_ntu([b], out, append=True, overwrite=True, workers=1, progress=False)
    assert len(SkeletonStore.open(out)) == len(list(a.iterdir()))


def test_smarthome_append_via_cli_equals_one_shot(tmp_path):
    paths = write_smarthome_corpus(tmp_path / "raw", 12, seed=2, frames_range=(100, 200))
    a, b, union = split_corpus(paths, tmp_path, 7)
    runner = CliRunner()
    common = ["--workers", "1", "-q"]
    for args in (["convert", "smarthome", str(union), "-o", str(tmp_path / "union.zarr"), *common],
                 ["convert", "smarthome", str(a), "-o", str(tmp_path / "s.zarr"), *common],
                 ["convert", "smarthome", str(b), "-o", str(tmp_path / "s.zarr"), "--append", *common]):
        result = runner.invoke(main, args)
        assert result.exit_code == 0, result.output
    assert f"appended {len(paths) - 7} samples" in result.output and "0 already in the store" in result.output
    assert_same_store(tmp_path / "s.zarr", tmp_path / "union.zarr")
    result = runner.invoke(main, ["validate", str(tmp_path / "s.zarr")])
    assert result.exit_code == 0, result.output

    result = runner.invoke(main, ["convert", "smarthome", str(a), "-o", str(tmp_path / "s.zarr"), "--append", *common])
    assert result.exit_code == 0 and "nothing new to append, 7 sample(s) already in the store" in result.output
    result = runner.invoke(main, ["convert", "smarthome", str(b), "-o", str(tmp_path / "s.zarr"), "--append",
                                  "--coords", "xy", *common])
    assert result.exit_code == 1 and "cannot append, the options differ" in result.output and "coords" in result.output
    assert json.loads((tmp_path / "s.zarr" / "report.json").read_text())["counts"]["converted"] == len(paths)

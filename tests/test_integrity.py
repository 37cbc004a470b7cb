"""Stores under faults (issue 14, points 1, 2, 3, 7 and the publish/append guards): one writer per target, missing
or short shards and edited offsets/index caught, a killed pool worker ends the run, an invalid store is neither
published nor appended to. Concurrency and worker deaths use real processes and real signals."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zarr
from click.testing import CliRunner

from schemas import store as schema
from skeltools.cli import main
from skeltools.convert import ConversionError, convert_ntu
from skeltools.modalities import write_modalities
from skeltools.reshape import subset_store
from skeltools.store import SkeletonStore, StoreError, lock_path_for, target_lock, work_dir_for
from skeltools.synth import write_ntu_corpus
from skeltools.validate import validate_store
from test_append import assert_same_store
from test_store import build_store

SHARD = ["--shard-frames", "512"]


def skeltools(*args: str) -> list[str]:
    return [sys.executable, "-m", "skeltools", *args]


def wait_for(condition, what: str, timeout: float = 120.0):
    """Poll ``condition()`` until it returns a true value; fail naming ``what`` after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def lock_holder(target: Path):
    """The pid in ``target``'s lock file once its holder has written it, else None."""
    try:
        return json.loads(lock_path_for(target).read_text())["pid"]
    except (OSError, ValueError, KeyError):
        return None


def child_pids(pid: int) -> list[int]:
    """The live children of process ``pid`` (from /proc)."""
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(entry))
    return children


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """200 NTU files (4 groups of work) and their clean one-worker conversion."""
    root = tmp_path_factory.mktemp("integrity")
    write_ntu_corpus(root / "raw", 200, seed=11)
    subprocess.run(skeltools("convert", "ntu", str(root / "raw"), "-o", str(root / "clean.zarr"), "--workers", "1",
                             "-q", *SHARD), check=True)
    return root / "raw", root / "clean.zarr"


# ----------------------------------------------------------------------------------------------------------------
# Point 1: one writer per target


def test_second_conversion_fails_at_once_naming_the_running_one(corpus, tmp_path):
    raw, clean = corpus
    out = tmp_path / "s.zarr"
    first = subprocess.Popen(skeltools("convert", "ntu", str(raw), "-o", str(out), "--workers", "1", "-q", *SHARD))
    try:
        assert wait_for(lambda: lock_holder(out), "the first run's lock") == first.pid
        first.send_signal(signal.SIGSTOP)  # holds the lock, makes no progress: the second run surely overlaps
        for extra in ([], ["--overwrite"]):
            second = subprocess.run(skeltools("convert", "ntu", str(raw), "-o", str(out), "--workers", "1", "-q",
                                              *SHARD, *extra), capture_output=True, text=True, timeout=120)
            assert second.returncode == 1, second.stderr
            lines = second.stderr.strip().splitlines()
            assert len(lines) == 1, second.stderr
            assert f"{out} is being written by another run (convert, pid {first.pid} on host " in lines[0]
            assert "started 20" in lines[0]
        first.send_signal(signal.SIGCONT)
        assert first.wait(timeout=300) == 0
    finally:
        first.kill()
    assert not lock_path_for(out).exists() and not work_dir_for(out).exists()
    assert_same_store(out, clean)


def test_lock_of_a_killed_run_is_taken_over(corpus, tmp_path):
    raw, clean = corpus
    out = tmp_path / "s.zarr"
    command = skeltools("convert", "ntu", str(raw), "-o", str(out), "--workers", "1", "-q", *SHARD)
    first = subprocess.Popen(command)
    dead = wait_for(lambda: lock_holder(out), "the first run's lock")
    first.kill()
    first.wait(timeout=60)
    assert lock_holder(out) == dead  # its lock file stays behind
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert_same_store(out, clean)


def test_modalities_and_subset_hold_the_target_lock(tmp_path):
    build_store(tmp_path / "s.zarr", [40, 90], shard=64, chunk=16)
    with target_lock(tmp_path / "s.zarr", "test"):
        with pytest.raises(StoreError, match=f"being written by another run \\(test, pid {os.getpid()} "):
            write_modalities(tmp_path / "s.zarr", ["bone"], workers=1, progress=False)
    with target_lock(tmp_path / "sub.zarr", "test"):
        with pytest.raises(StoreError, match="being written by another run"):
            subset_store(tmp_path / "s.zarr", tmp_path / "sub.zarr")
    assert not (tmp_path / "sub.zarr").exists() and "bone" not in SkeletonStore.open(tmp_path / "s.zarr").modalities


# ----------------------------------------------------------------------------------------------------------------
# Point 2: missing and short shards


def shard_file(store: Path, name: str = "joint", shard: int = 0) -> Path:
    return store / name / "c" / str(shard) / "0" / "0" / "0"


def test_missing_and_emptied_shards_are_named_and_never_read_as_zeros(tmp_path):
    store = tmp_path / "s.zarr"
    build_store(store, [40, 90, 7, 130], shard=64, chunk=16)
    write_modalities(store, ["bone"], workers=1, progress=False)
    opened = SkeletonStore.open(store)  # before the damage: reads must still refuse
    assert opened.array("joint").attrs[schema.SHARDS_ATTR] == {
        f"c/{i}/0/0/0": shard_file(store, shard=i).stat().st_size for i in range(5)}

    sizes = opened.array("joint").attrs[schema.SHARDS_ATTR]
    shard_file(store, shard=1).unlink()
    shard_file(store, shard=2).write_bytes(shard_file(store, shard=2).read_bytes()[:-100])
    shard_file(store, shard=3).write_bytes(b"")
    shard_file(store, "bone", 4).unlink()
    expected = ["array 'joint', shard 1 (joint/c/1/0/0/0) is missing",
                f"array 'joint', shard 2 (joint/c/2/0/0/0) has {sizes['c/2/0/0/0'] - 100} bytes, "
                f"{sizes['c/2/0/0/0']} when published",
                f"array 'joint', shard 3 (joint/c/3/0/0/0) has 0 bytes, {sizes['c/3/0/0/0']} when published",
                "array 'bone', shard 4 (bone/c/4/0/0/0) is missing"]
    assert validate_store(store, deep=False).problems == expected
    deep = validate_store(store).problems  # and what decoding finds in the truncated shard 2
    assert [p for p in deep if p in expected] == expected and any("shard 2, chunk" in p for p in deep), deep
    result = CliRunner().invoke(main, ["validate", "--quick", str(store)])
    assert result.exit_code == 1 and expected[0] in result.output

    with pytest.raises(StoreError, match=r"4 shard file\(s\) differ from the published store: array 'joint', shard 1 "
                                         r".* and 1 more; run `skeltools validate "):
        SkeletonStore.open(store)
    with pytest.raises(StoreError, match="joint/c/1/0/0/0: shard file missing"):
        opened[1]  # frames 40..130
    with pytest.raises(StoreError, match=r"joint/c/[23]/0/0/0: (0 bytes|crc32c mismatch)"):
        opened.read(3)  # frames 137..267
    with pytest.raises(StoreError, match="bone/c/4/0/0/0: shard file missing"):
        opened.read(3, "bone")
    assert opened.read(0).shape == (40, 2, 25, 3)  # shard 0 is intact

    extra = shard_file(store, shard=9)  # a file that was not there at publish
    extra.parent.mkdir(parents=True)
    extra.write_bytes(shard_file(store, shard=0).read_bytes())
    assert ("array 'joint', shard 9 (joint/c/9/0/0/0) was not in the store when it was published"
            in validate_store(store, deep=False).problems)


def test_store_without_shard_lists_opens_and_validate_says_what_it_cannot_prove(tmp_path):
    store = tmp_path / "s.zarr"
    frames, _ = build_store(store, [40, 90], shard=64, chunk=16)
    del zarr.open_array(str(store / "joint"), mode="r+").attrs[schema.SHARDS_ATTR]
    del zarr.open_group(str(store), mode="r+").attrs[schema.INTEGRITY_ATTR]
    np.testing.assert_array_equal(SkeletonStore.open(store)[1], frames[40:130])
    report = validate_store(store)
    assert report.ok, report.text()
    assert any("array 'joint': no shard list" in w and "reads as zeros" in w for w in report.warnings)
    assert any("no digests of offsets and index.parquet" in w for w in report.warnings)
    assert "WARN  array 'joint': no shard list" in report.text()


# ----------------------------------------------------------------------------------------------------------------
# Point 3: offsets and index digests


def test_consistent_edits_of_offsets_and_index_are_caught(tmp_path):
    store = tmp_path / "s.zarr"
    build_store(store, [40, 90, 7, 130], shard=64, chunk=16)
    assert validate_store(store, deep=False).ok

    set_index_column(store, "label", [1, 2, 2, 0])  # labels 0, 1, 2, 0 before: still valid ones
    problems = validate_store(store, deep=False).problems
    assert len(problems) == 1, problems
    assert problems[0].startswith("index.parquet: sha256 ") and "recorded at publish (changed since)" in problems[0]

    build_store(store, [40, 90, 7, 130], shard=64, chunk=16, overwrite=True)
    zarr.open_array(str(store / "offsets"), mode="r+")[1] = 41
    set_index_column(store, "length", [41, 89, 7, 130])  # consistent with the offsets: only the digests tell
    problems = validate_store(store, deep=False).problems
    assert [p.split(":")[0] for p in problems] == ["offsets", "index.parquet"], problems


def set_index_column(store: Path, name: str, values: list) -> None:
    """Rewrite ``index.parquet`` with column ``name`` replaced by ``values`` (same type)."""
    index = pq.read_table(store / "index.parquet")
    column = index.schema.get_field_index(name)
    pq.write_table(index.set_column(column, name, pa.array(values, index.schema.field(name).type)),
                   store / "index.parquet")


# ----------------------------------------------------------------------------------------------------------------
# Point 7: a killed pool worker


def test_killed_worker_ends_the_run_and_the_rerun_resumes(corpus, tmp_path):
    raw, clean = corpus
    out = tmp_path / "s.zarr"
    command = skeltools("convert", "ntu", str(raw), "-o", str(out), "--workers", "2", "-q", *SHARD)
    run = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        # The pool's workers are the children of the forkserver, itself a child of the run.
        workers = wait_for(lambda: [w for c in child_pids(run.pid) for w in child_pids(c)], "the pool's workers")
        run.send_signal(signal.SIGSTOP)
        os.kill(workers[0], signal.SIGKILL)
        run.send_signal(signal.SIGCONT)
        _, stderr = run.communicate(timeout=120)
    finally:
        run.kill()
    assert run.returncode == 1, stderr
    assert "error: a worker process died (killed by a signal or for lack of memory) during " in stderr, stderr
    assert f"Finished work is kept in {work_dir_for(out)}: rerun the same command to resume" in stderr
    assert not out.exists() and work_dir_for(out).is_dir()
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert_same_store(out, clean)


def report_pid_and_wait(task: tuple[str, Path]) -> str:
    """A pool task: the ``victim`` writes its worker's pid to its file and waits to be killed; others return."""
    name, pid_file = task
    if name == "victim":
        pid_file.write_text(str(os.getpid()))
        time.sleep(120)
    return name


def test_dead_worker_names_the_task_it_was_running(tmp_path):
    from skeltools.convert import WorkerDied, _Executor

    pid_file = tmp_path / "victim.pid"

    def kill_victim() -> None:
        while not (pid_file.exists() and pid_file.read_text()):
            time.sleep(0.05)
        os.kill(int(pid_file.read_text()), signal.SIGKILL)

    tasks = [("quick", pid_file), ("victim", pid_file), ("quick", pid_file)]
    with _Executor(2, progress=False) as executor:
        killer = threading.Thread(target=kill_victim, daemon=True)
        killer.start()
        with pytest.raises(WorkerDied, match=r"a worker process died \(killed by a signal or for lack of memory\) "
                                             r"during testing, running (.* or )?the victim task"):
            list(executor.map(report_pid_and_wait, tasks, "testing", label=lambda task: f"the {task[0]} task"))
        killer.join(timeout=60)


# ----------------------------------------------------------------------------------------------------------------
# Publish and append guards


def test_invalid_store_is_never_published(tmp_path):
    source = tmp_path / "s.zarr"
    build_store(source, [40, 90], shard=64, chunk=16)
    set_index_column(source, "label", [0, 3])  # 3 classes
    with pytest.raises(StoreError, match=r"fails validation and is not published \(index: 1 labels outside -1..2 "
                                         r"\(first: row 1, label 3\)\)"):
        subset_store(source, tmp_path / "labels.zarr")
    assert not (tmp_path / "labels.zarr").exists()

    build_store(source, [40, 90], shard=64, chunk=16, overwrite=True)
    del zarr.open_array(str(source / "joint"), mode="r+").attrs[schema.SHARDS_ATTR]
    zarr.open_array(str(source / "joint"), mode="r+")[70] = np.nan
    with pytest.raises(StoreError, match=r"frames 64..128 hold 150 NaN or infinite values"):
        subset_store(source, tmp_path / "nan.zarr")
    assert not (tmp_path / "nan.zarr").exists()


def test_append_refuses_a_store_that_fails_validation(tmp_path):
    raw_a, raw_b = tmp_path / "a", tmp_path / "b"
    paths = sorted(write_ntu_corpus(tmp_path / "all", 12, seed=3), key=lambda p: p.name)
    for folder, part in ((raw_a, paths[:8]), (raw_b, paths[8:])):
        folder.mkdir()
        for p in part:
            (folder / p.name).write_bytes(p.read_bytes())
    out = tmp_path / "s.zarr"
    convert_ntu([raw_a], out, workers=1, progress=False, shard_frames=512)

    index = pq.read_table(out / "index.parquet")  # edited after publishing: the digest differs
    pq.write_table(index.replace_schema_metadata(None), out / "index.parquet")
    before = (out / "index.parquet").read_bytes()
    with pytest.raises(ConversionError, match=r"cannot append to a store that fails validation \(1 problem\(s\), "
                                              r"first: index.parquet: sha256"):
        convert_ntu([raw_b], out, append=True, workers=1, progress=False)
    assert (out / "index.parquet").read_bytes() == before and len(SkeletonStore.open(out)) == 8

    # A store published before shard lists existed is decoded in full first: NaN values are refused.
    convert_ntu([raw_a], out, overwrite=True, workers=1, progress=False, shard_frames=512)
    del zarr.open_array(str(out / "joint"), mode="r+").attrs[schema.SHARDS_ATTR]
    zarr.open_array(str(out / "joint"), mode="r+")[3] = np.inf
    with pytest.raises(ConversionError, match=r"first: array 'joint': 150 NaN or infinite values"):
        convert_ntu([raw_b], out, append=True, workers=1, progress=False)
    assert len(SkeletonStore.open(out)) == 8

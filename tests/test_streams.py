"""Streams trained side by side (the demo's two processes): results in order, log lines named, and a failing or
killed stream ends the call at once with its name, never a hang."""
from __future__ import annotations

import multiprocessing
import os
import signal

import pytest

from trainer.recipes import resolve_recipe
from trainer.streams import StreamJob, run_parallel
from trainer.train import RunConfig

TINY = dict(epochs=1, batch_size=4, lr=0.05, clip_len=8, test_clips=1, schedule="cosine", milestones="")


def _jobs(store, out, modalities=("j", "b")) -> list[StreamJob]:
    recipe = resolve_recipe("stgcn", overrides=TINY)
    return [StreamJob({"j": "joint", "b": "bone"}[m], RunConfig(arch="stgcn", store=str(store),
                                                                  out_dir=str(out / m), modality=m, workers=0,
                                                                  progress=False), recipe)
            for m in modalities]


def test_streams_train_and_test_side_by_side(ntu_train_store, tmp_path):
    from skeltools.store import SkeletonStore
    from trainer.evaluate import read_scores

    lines = []
    results = run_parallel(_jobs(ntu_train_store, tmp_path), log=lines.append)
    test_rows = len(SkeletonStore.open(ntu_train_store).rows("xsub_test"))
    assert [r.summary["modality"] for r in results] == ["j", "b"]  # in the order of the jobs
    for modality, r in zip("jb", results):
        scores = read_scores(tmp_path / modality / "scores.parquet")
        assert r.test["num_samples"] == test_rows == len(scores.labels)
        assert r.test["top1"] == pytest.approx(float((scores.probs.argmax(1) == scores.labels).mean()))
        assert (tmp_path / modality / "best.pt").is_file() and r.train_seconds > 0 and r.test_seconds > 0
    assert any(line.startswith("joint  epoch 1/1") for line in lines)
    assert any(line.startswith("bone   epoch 1/1") for line in lines)


def test_a_failing_stream_is_named(ntu_train_store, tmp_path):
    jobs = _jobs(ntu_train_store, tmp_path)
    absent = RunConfig(arch="stgcn", store=str(tmp_path / "absent.zarr"), out_dir=str(tmp_path / "b"), workers=0,
                       progress=False)
    jobs[1] = StreamJob("bone", absent, jobs[1].recipe)
    with pytest.raises(RuntimeError, match=r"the bone stream failed: .*absent\.zarr"):
        run_parallel(jobs, log=lambda _: None)


def test_a_killed_stream_process_ends_the_call(ntu_train_store, tmp_path):
    killed = []

    def kill_on_first_line(line: str) -> None:
        if not killed:
            for child in multiprocessing.active_children():  # the stream processes (the forkserver is not one)
                os.kill(child.pid, signal.SIGKILL)
                killed.append(child.pid)

    with pytest.raises(RuntimeError, match=r"stream's process died \(exit code -9\) before it finished"):
        run_parallel(_jobs(ntu_train_store, tmp_path), log=kill_on_first_line)
    assert len(killed) == 2
    assert not multiprocessing.active_children()

"""Derived modalities: which array and kernel op gives each feature, and ``skeltools modalities``.

Features: ``j`` joint, ``b`` bone, ``jm`` joint motion, ``bm`` bone motion (rules in ``skeltools.kernels``).
A feature is read from the store when the store holds it, else derived on the fly from the closest stored
array (bone motion from a stored bone array, else from the joints).

Writing (``write_modalities``): the new arrays are built in a hidden sibling work directory
(``.NAME.modalities/``), with the joint array's shape, chunks and shards, one whole shard per task (motion reads
one frame past the shard end), tasks on ``workers`` threads (the serial kernels, zstd, crc32c and file I/O all
release the GIL: no process pool to start; one shard at a time runs the parallel kernels instead). Joint shards
are read by ``skeltools.shardread`` and the new ones encoded by ``skeltools.shards`` (zarr's bytes). Only when
every shard is written is each array directory renamed into the store; an older copy is renamed out first and
deleted after. A zarr v3 array is a self-contained directory and
the group's metadata does not list its members, so the store stays valid and openable at every moment: an
interrupted run leaves it exactly as it was, and rerunning starts the work afresh.
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Collection, Mapping, Sequence

import numpy as np

from schemas import store as schema
from schemas.layouts import layout_from_attrs
from skeltools import kernels
from skeltools.kernels import BONE, MOTION, PairRule

FEATURES = {"j": "joint", "b": "bone", "jm": "joint_motion", "bm": "bone_motion"}
DERIVED = ("bone", "joint_motion", "bone_motion")
_OPS = {"joint": ("joint", 0), "bone": ("joint", BONE), "joint_motion": ("joint", MOTION),
        "bone_motion": ("joint", BONE | MOTION)}
_RULES = {
    "bone": "x[v] - x[parent[v]] over the layout's bone parents (a self-parented joint gives 0)",
    "joint_motion": "x[t+1] - x[t] inside each sample; the last frame of each sample is 0",
    "bone_motion": "bone[t+1] - bone[t] inside each sample; the last frame of each sample is 0",
}
_SCORE_RULE = "the confidence channel is the mean of the two values instead of their difference (pyskl)"


def parse_features(spec: str | Sequence[str], sep: str = "+") -> tuple[str, ...]:
    """``"j+b"`` (or a list of codes / array names) -> ("joint", "bone"), in the given order."""
    items = spec.split(sep) if isinstance(spec, str) else list(spec)
    names = []
    for item in (i.strip() for i in items):
        name = FEATURES.get(item, item)
        if name not in schema.MODALITIES:
            raise ValueError(f"unknown modality {item!r}; use {', '.join(FEATURES)} "
                             f"(or {', '.join(schema.MODALITIES)})")
        if name in names:
            raise ValueError(f"modality {item!r} is given twice in {spec!r}")
        names.append(name)
    if not names:
        raise ValueError("no modality given")
    return tuple(names)


def pair_rule(attrs: Mapping) -> PairRule:
    """The pair rule of a store from its attrs (layout and coords)."""
    coords = attrs["coords"]
    return PairRule.make(layout_from_attrs(attrs).bone_parents, schema.COORDS[coords], score=coords == "xyc")


@dataclass(frozen=True)
class FeaturePlan:
    """How to produce features (concatenated along C in this order): per feature, (source array, kernel op)."""

    features: tuple[str, ...]
    steps: tuple[tuple[str, int], ...]

    @classmethod
    def make(cls, modality: str | Sequence[str], stored: Collection[str] = ("joint",)) -> "FeaturePlan":
        """Read what ``stored`` holds; derive the rest (bone motion from a stored bone array when there is one)."""
        features = parse_features(modality)
        steps = []
        for name in features:
            if name in stored:
                steps.append((name, 0))
            elif name == "bone_motion" and "bone" in stored:
                steps.append(("bone", MOTION))
            else:
                steps.append(_OPS[name])
        return cls(features, tuple(steps))

    @property
    def derived(self) -> tuple[str, ...]:
        """The features computed on the fly (not stored in the store as themselves)."""
        return tuple(f for f, (src, _) in zip(self.features, self.steps) if src != f)

    @property
    def sources(self) -> tuple[str, ...]:
        """The store arrays this plan reads, in first-use order."""
        return tuple(dict.fromkeys(src for src, _ in self.steps))

    def clip(self, arrays: Mapping[str, np.ndarray], inds: np.ndarray, rule: PairRule, out: np.ndarray) -> np.ndarray:
        """Fill ``out`` (M', K, V, C * len(features)) from one sample's ``arrays`` {source: (T, M, V, C)}."""
        c = rule.channels
        for g, (src, op) in enumerate(self.steps):
            kernels.gather_clip(arrays[src], inds, op, rule, out[..., g * c:(g + 1) * c])
        return out


def read_samples(array, offsets: np.ndarray, rows: Sequence[int], window: int = 32768):
    """Yield samples ``rows`` (ascending) of a frame array (zarr or numpy), each (T, M, V, C), in order.

    Neighbouring samples are read together in windows of about ``window`` frames: one zarr call per window
    instead of one per sample (each call costs about a millisecond).
    """
    rows = np.asarray(rows, np.int64)
    starts, stops = offsets[rows], offsets[rows + 1]
    i = 0
    while i < len(rows):
        j = i
        while j + 1 < len(rows) and stops[j + 1] - starts[i] <= window:
            j += 1
        block = np.asarray(array[starts[i]:stops[j]])
        for k in range(i, j + 1):
            yield block[starts[k] - starts[i]:stops[k] - starts[i]]
        i = j + 1


# ----------------------------------------------------------------------------------------------------------------
# Writing derived arrays into a store


def modalities_work_dir(store: Path) -> Path:
    """The hidden sibling directory where new modality arrays are built before they are swapped in."""
    store = Path(store)
    return store.parent / f".{store.name}.modalities"


def compute_block(joint: np.ndarray, last: np.ndarray, features: Collection[str], rule: PairRule,
                  parallel: bool = True) -> dict[str, np.ndarray]:
    """Derived ``features`` of a block of frames.

    ``joint`` (F or F + 1, M, V, C): the block, plus the next frame when the block does not end the array;
    ``last`` (F,) bool: frames that end a sample. Returns {name: (F, M, V, C)}.
    """
    frames = len(last)
    out = {}
    bone = kernels.bones(joint, rule, parallel=parallel) if {"bone", "bone_motion"} & set(features) else None
    if "bone" in features:
        out["bone"] = bone[:frames]
    if "joint_motion" in features:
        out["joint_motion"] = kernels.motion(joint, last, rule, parallel=parallel)
    if "bone_motion" in features:
        out["bone_motion"] = kernels.motion(bone, last, rule, parallel=parallel)
    return out


def write_shard(task: tuple) -> float:
    """Compute and write frames [start, stop) of each feature; the task owns those whole shards."""
    from skeltools.shardread import ShardReader, read_frames
    from skeltools.store import write_frames

    store_path, work_path, start, stop, features, rule, last, parallel = task
    t0 = time.perf_counter()
    joint_path = Path(store_path) / "joint"
    joint = ShardReader.open(joint_path, cache_bytes=0)
    if joint is None:
        import zarr

        joint = zarr.open_array(str(joint_path), mode="r")
    block = read_frames(joint, start, stop + 1)  # one frame past the end: motion's next frame
    for name, data in compute_block(block, last, features, rule, parallel).items():
        write_frames(Path(work_path) / name, start, data)  # whole shards: skeltools.shards' direct encoder
    return time.perf_counter() - t0


def write_modalities(path, features: Sequence[str] = DERIVED, *, overwrite: bool = False, workers: int | None = None,
                     progress: bool = True, log: Callable[[str], None] = lambda _: None) -> dict:
    """Write the derived ``features`` (array names or codes) into the store at ``path``; return a summary.

    Features the store already has are kept unless ``overwrite``. Idempotent and interruption-safe (module doc);
    one writer of a store at a time (``store.target_lock``).
    """
    from skeltools.store import target_lock

    with target_lock(Path(path), "modalities"):
        return _write_modalities(path, features, overwrite, workers, progress, log)


def _write_modalities(path, features: Sequence[str], overwrite: bool, workers: int | None, progress: bool,
                      log: Callable[[str], None]) -> dict:
    import zarr

    from skeltools import __version__
    from skeltools.convert import _progress
    from skeltools.store import SkeletonStore, create_frame_array, seal_array, shard_ranges

    t_start = time.perf_counter()
    path = Path(path)
    store = SkeletonStore.open(path)
    wanted = parse_features(features)
    if "joint" in wanted:
        raise ValueError("joint is the source of every modality; ask for b, jm and/or bm")
    todo = [name for name in wanted if overwrite or name not in store.modalities]
    summary = {"written": todo, "kept": [n for n in wanted if n not in todo], "frames": int(store.offsets[-1])}
    if not todo:
        return summary | {"seconds": time.perf_counter() - t_start}

    joint = store.array("joint")
    shard_frames = joint.shards[0] if joint.shards else joint.chunks[0]
    rule = pair_rule(store.attrs)
    work = modalities_work_dir(path)
    shutil.rmtree(work, ignore_errors=True)  # an interrupted run's leftovers: start afresh
    group = zarr.open_group(str(work), mode="w-")
    for name in todo:
        create_frame_array(group, name, joint.shape, shard_frames, joint.chunks[0])
    workers = max(1, workers or os.cpu_count() or 1)
    ranges = shard_ranges(joint.shape[0], shard_frames)
    parallel = workers == 1 or len(ranges) == 1  # one shard at a time: parallel kernels; else a thread per shard
    tasks = [(str(path), str(work), s, e, tuple(todo), rule, kernels.last_frames(store.offsets, s, e), parallel)
             for s, e in ranges]
    log(f"{path}: writing {', '.join(todo)} over {len(tasks)} shard(s) on {min(workers, len(tasks))} worker(s)")
    cpu = sum(_progress(_thread_map(write_shard, tasks, workers), len(tasks), "modalities", progress))

    for name in todo:
        rule_text = _RULES[name] + ("; " + _SCORE_RULE if store.attrs["coords"] == "xyc" else "")
        group[name].attrs.update({"derived_from": "joint", "rule": rule_text, "skeltools_version": __version__})
        seal_array(work / name)  # its shard list moves into the store with it
    for name in todo:
        _swap_in(work / name, path / name, work / f"{name}.old")
    shutil.rmtree(work, ignore_errors=True)
    return summary | {"seconds": time.perf_counter() - t_start, "cpu_seconds": cpu, "shards": len(tasks)}


def _thread_map(func, tasks: list, threads: int):
    """``func(task)`` for every task, in order, on up to ``threads`` threads (inline for one). On an error or an
    interrupt the tasks not yet started are cancelled; the running ones finish."""
    from concurrent.futures import ThreadPoolExecutor

    if threads <= 1 or len(tasks) <= 1:
        yield from map(func, tasks)
        return
    pool = ThreadPoolExecutor(min(threads, len(tasks)))
    try:
        yield from pool.map(func, tasks)
    finally:
        pool.shutdown(cancel_futures=True)


def _swap_in(built: Path, target: Path, old: Path) -> None:
    """Rename ``built`` to ``target``; an existing ``target`` is moved to ``old`` first and then deleted."""
    if target.exists():
        os.replace(target, old)
    os.replace(built, target)
    shutil.rmtree(old, ignore_errors=True)

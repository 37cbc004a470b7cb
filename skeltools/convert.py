"""Raw files -> store, over a worker pool, with a per-file error report, atomic publish and resume.

Two phases, both parallel and both independent of the worker count:

1. **Process** contiguous groups of files (sorted by sample id): parse, select bodies, normalize. Each group's
   frames go to one spill file in the work directory (``.OUT.partial/spill``), its per-file results to a JSON
   file written after it; only small results travel back to the parent.
2. **Write** the store shard by shard: every task owns one whole shard, copying its frames from the spill files.

Then the parent writes offsets, ``report.json`` and ``index.parquet`` and renames the store into place. A killed
run leaves the work directory behind; rerunning the same command reuses every finished group.

Both phases' tasks go to an executor: the local forkserver pool, or a Dask cluster (``--engine dask``) whose
workers read and write the same paths on a shared filesystem; the store is identical either way.

Appending (``--append``) runs phase 1 on the new files, drops samples whose id the store already has, and builds
the next version of the store in the work directory: full shards are hard-linked from the store, the last partial
shard and the new frames are written (modality arrays too), and offsets, index and report are rewritten. The
store itself is only read; the new version replaces it by an atomic exchange of the two directories, so a crash at
any point leaves the old store complete and readable, and a rerun resumes.
"""
from __future__ import annotations

import fnmatch
import hashlib
import itertools
import json
import multiprocessing
import os
import shutil
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Iterator, Sequence

import numpy as np

from schemas import store as schema
from schemas.datasets import get_dataset, ntu_missing_samples, parse_ntu_name, read_sample_list
from skeltools.readers.smallfiles import file_stats, stats_digest
from skeltools.store import (SkeletonStore, StoreBuilder, StoreError, shard_ranges, target_lock, work_dir_for,
                             write_frames)

GROUP_FILES = 64  # work items per group at most
GROUP_INPUT_FILES = 2048  # input files per group at most (a per-frame video is one item of hundreds of files)
FORMAT_VERSION = 2  # bump when processing changes, so stale spill files are never reused


class ConversionError(RuntimeError):
    """A conversion that cannot publish a store (failed files without --keep-going, nothing to convert, ...)."""


@dataclass(frozen=True)
class NtuOptions:
    """NTU's per-file processing, and what it contributes to the store attrs, report and index.

    Other sources plug into the same pipeline with an options class offering the same members: ``source``,
    ``frame_shape``, ``process(path)``, ``report_fields()``, ``store_attrs(spec)`` and ``index(ok, spec)``.
    """

    source: ClassVar[str] = "ntu-skeleton"
    dataset: str = "ntu60"
    preset: str = "clean"
    align_spine: bool = False
    max_persons: int = 2

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        return (self.max_persons, 25, 3)

    @classmethod
    def from_attrs(cls, attrs) -> "NtuOptions":
        """The options that wrote a store with these attrs (the inverse of ``store_attrs``)."""
        return cls(dataset=attrs["dataset"] if attrs["dataset"] in ("ntu60", "ntu120") else "ntu60",
                   preset=attrs["preset"], align_spine=bool(attrs["preprocessing"].get("align_spine", False)),
                   max_persons=attrs["persons"])

    def process(self, item) -> tuple["FileResult", np.ndarray | None]:
        return process_ntu_file(str(item), self)

    def report_fields(self) -> dict[str, Any]:
        return {"preset": self.preset, "align_spine": self.align_spine}

    def store_attrs(self, spec) -> dict[str, Any]:
        from skeltools.presets import describe_preset

        return {"layout": spec.layout, "coords": "xyz", "persons": self.max_persons, "preset": self.preset,
                "preprocessing": describe_preset(self.preset, dataset=self.dataset, align_spine=self.align_spine),
                "frame_rate": 30}

    def index(self, ok: list["FileResult"], spec):
        return _ntu_index(ok, spec, spec.name)


@dataclass
class FileResult:
    """What happened to one input file."""

    file: str
    sample_id: str
    status: str  # "ok" | "skipped" | "failed"
    length: int = 0
    n_persons: int = 0
    reason: str = ""
    line: int = 0
    notes: list[str] = field(default_factory=list)
    nonfinite_body_frames: int = 0
    label: int = -1  # sources whose label is not in the file name (NTU's is) set it while processing
    samples: list[dict] = field(default_factory=list)  # several samples from one file: their index fields
    inputs: str = ""  # digest of the input files' sizes and times before reading (see ``input_fields``)
    input_bytes: int = 0  # the input files' total size


def sample_lengths(ok: list[FileResult]) -> list[int]:
    """Frames per store sample: one sample per file, or the ``length`` of each of a file's ``samples``."""
    return [n for r in ok for n in ([s["length"] for s in r.samples] if r.samples else [r.length])]


# ----------------------------------------------------------------------------------------------------------------
# Phase 1: one file, one group


def process_ntu_file(path: str, options: NtuOptions) -> tuple[FileResult, np.ndarray | None]:
    """Parse and preprocess one ``.skeleton`` file; never raises for bad input, reports it instead."""
    from skeltools.presets import EmptySkeletonError, preprocess
    from skeltools.readers.ntu import SkeletonParseError, read_skeleton

    sample_id = Path(path).name.split(".")[0]
    try:
        skel = read_skeleton(path)
    except SkeletonParseError as exc:
        return FileResult(path, sample_id, "failed", reason=str(exc), line=exc.line), None
    nonfinite = zero_nonfinite_bodies(skel.xyz)
    try:
        out = preprocess(skel, options.preset, dataset=options.dataset, align_spine=options.align_spine,
                         max_persons=options.max_persons)
    except EmptySkeletonError as exc:
        return FileResult(path, sample_id, "skipped", reason=str(exc), nonfinite_body_frames=nonfinite), None
    data = np.ascontiguousarray(out.data, dtype=np.float32)
    nonfinite += zero_nonfinite_bodies(data)  # finite input can overflow in centring or rotation
    result = FileResult(path, sample_id, "ok", length=len(data), n_persons=int(out.n_persons),
                        notes=list(out.notes), nonfinite_body_frames=nonfinite)
    return result, data


def zero_nonfinite_bodies(x: np.ndarray) -> int:
    """Zero, in place, every body-frame (a ``(V, C)`` block over the last two axes of ``x``) holding NaN or inf;
    return how many there were. The store keeps such body-frames as zeros and counts them in ``report.json``."""
    finite = np.isfinite(x)
    if finite.all():  # the common case, at a fraction of the per-body reduction's cost
        return 0
    bad = ~finite.all(axis=(-2, -1))
    x[bad] = 0.0
    return int(bad.sum())


def process_group(task: tuple[int, Sequence, Any, str]) -> tuple[int, list[FileResult], float]:
    """Process one group of items with ``options.process(item)``; write its frames to ``spill/NNNNN.npy`` and its
    results next to it. ``options`` is a picklable dataclass with ``process`` and ``frame_shape``; when its
    ``stats_own_reads`` is true, ``process`` sets each result's ``inputs`` itself (its reader stats the files)."""
    group, items, options, spill_dir = task
    t0 = time.perf_counter()
    results, blocks = [], []
    for item in items:
        stats = None if getattr(options, "stats_own_reads", False) else file_stats(_item_files(item))
        result, data = process_item(options, item)
        results.append(result if stats is None else replace(result, **input_fields(stats)))
        if data is not None:
            blocks.append(data)
    spill = Path(spill_dir)
    frames = np.concatenate(blocks) if blocks else np.zeros((0, *options.frame_shape), np.float32)
    _atomic_write(spill / f"{group:05d}.npy", lambda fh: np.save(fh, frames))
    _atomic_write(spill / f"{group:05d}.json",
                  lambda fh: fh.write(json.dumps([asdict(r) for r in results], default=str).encode()))
    return group, results, time.perf_counter() - t0


def process_item(options, item) -> tuple[FileResult, np.ndarray | None]:
    """``options.process(item)`` with numpy's floating-point warnings off (non-finite values are zeroed and
    counted instead); an error the reader did not foresee fails this item only, never its group."""
    try:
        with np.errstate(all="ignore"):
            return options.process(item)
    except Exception as exc:  # noqa: BLE001 - one input file must never stop a corpus
        key = _item_key(item)
        sample_id = getattr(item, "sample_id", None) or Path(key).name.split(".")[0]
        return FileResult(key, sample_id, "failed",
                          reason=f"{key}: cannot be read ({type(exc).__name__}: {exc})"), None


def _group_label(task: tuple[int, Sequence, Any, str]) -> str:
    """A ``process_group`` task in words: its group number and first and last item."""
    group, items = task[0], task[1]
    return f"group {group} ({len(items)} item(s), {_item_key(items[0])} .. {_item_key(items[-1])})"


def _item_files(item) -> Sequence:
    """A work item's input files: the item is a file, or has ``files``."""
    return getattr(item, "files", (item,))


def input_fields(stats: np.ndarray) -> dict[str, Any]:
    """The ``FileResult`` fields of an item's input files from their ``file_stats``, taken before reading them: a
    finished result is reused on resume only while its digest is unchanged."""
    return {"inputs": stats_digest(stats), "input_bytes": int(stats[:, 0].clip(min=0).sum())}


def input_digest(item) -> str:
    """The digest of an item's input files as they are now."""
    return stats_digest(file_stats(_item_files(item)))


def _atomic_write(path: Path, write: Callable) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as fh:
        write(fh)
    os.replace(tmp, path)


def _load_group(spill: Path, group: int, items: Sequence) -> list[FileResult] | None:
    """The results of group ``items`` finished by an earlier (interrupted) run, or None when there are none or an
    input file changed since."""
    done = spill / f"{group:05d}.json"
    if not (done.exists() and (spill / f"{group:05d}.npy").exists()):
        return None
    results = [FileResult(**r) for r in json.loads(done.read_text())]
    if [r.file for r in results] != list(map(_item_key, items)):
        return None
    if any(r.inputs != input_digest(item) for r, item in zip(results, items)):
        return None
    return results


# ----------------------------------------------------------------------------------------------------------------
# Phase 2: one shard


def write_shard(task: tuple[str, int, int, list[tuple[str, int, int, int]]]) -> float:
    """Copy frames [start, stop) from spill files into the store; ``segments`` are (spill, src, dst, count)."""
    array_path, start, stop, segments = task
    t0 = time.perf_counter()
    first = np.load(segments[0][0], mmap_mode="r")
    block = np.empty((stop - start, *first.shape[1:]), np.float32)
    for spill_file, src, dst, count in segments:
        block[dst - start:dst - start + count] = np.load(spill_file, mmap_mode="r")[src:src + count]
    import zarr

    with zarr.config.set({"codec_pipeline.batch_size": 64}):  # encode a shard's chunks in one batch
        write_frames(Path(array_path), start, block)
    return time.perf_counter() - t0


def plan_shards(pieces: list[tuple[str, int, int]], shard_frames: int, base: int = 0) -> list[tuple[int, int, list]]:
    """Cut the concatenation of spill pieces ``(spill, src, count)``, placed from frame ``base`` (a shard boundary),
    into shard tasks: (start, stop, [(spill, src, dst, count)])."""
    total = sum(n for *_, n in pieces)
    starts = base + np.cumsum([0] + [n for *_, n in pieces])
    tasks = []
    for start, stop in shard_ranges(total, shard_frames):
        start, stop, segments = start + base, stop + base, []
        for (spill, src, n), g0 in zip(pieces, starts[:-1]):
            lo, hi = max(start, g0), min(stop, g0 + n)
            if lo < hi:
                segments.append((spill, int(src + lo - g0), int(lo), int(hi - lo)))
        tasks.append((start, stop, segments))
    return tasks


def spill_pieces(spill: Path, group_results: dict[int, list[FileResult]], keep: Callable[[FileResult], bool]):
    """The frames of the kept converted results as spill pieces ``(spill file, src, count)``, in store order
    (a group's spill file holds its converted results' frames back to back); neighbours are merged."""
    pieces: list[list] = []
    for g in sorted(group_results):
        src, path = 0, str(spill / f"{g:05d}.npy")
        for r in group_results[g]:
            if r.status != "ok":
                continue
            if keep(r) and r.length:
                if pieces and pieces[-1][0] == path and pieces[-1][1] + pieces[-1][2] == src:
                    pieces[-1][2] += r.length
                else:
                    pieces.append([path, src, r.length])
            src += r.length
    return [tuple(p) for p in pieces]


# ----------------------------------------------------------------------------------------------------------------
# Driver


def walk_folders(inputs: Iterable, patterns: Sequence[str]) -> Iterator[tuple[Path, list[str]]]:
    """``(folder, names)`` of the files matching ``patterns`` under the given folders (recursively, symlinks
    followed), or given directly (one pair each). ``os.walk`` takes file types from the directory entries: no
    ``stat`` and one ``Path`` per folder, not per file (a corpus of per-frame files has hundreds of thousands).
    Each real folder (``st_dev``, ``st_ino``) is listed once, so symlink loops and links to a folder listed
    already add nothing; subfolders are visited in name order, so the path kept does not depend on the disk."""
    seen: set[tuple[int, int]] = set()
    for item in map(Path, inputs):
        if item.is_dir():
            for folder, subfolders, names in os.walk(item, followlinks=True):
                subfolders.sort()
                try:
                    info = os.stat(folder)
                except OSError:  # gone since it was listed
                    subfolders.clear()
                    continue
                if (info.st_dev, info.st_ino) in seen:
                    subfolders.clear()
                    continue
                seen.add((info.st_dev, info.st_ino))
                matching = [name for pattern in patterns for name in fnmatch.filter(names, pattern)]
                if matching:
                    yield Path(folder), matching
        elif item.exists():
            yield item.parent, [item.name]
        else:
            raise ConversionError(f"{item}: no such file or folder")


def walk_files(inputs: Iterable, patterns: Sequence[str]) -> Iterator[tuple[Path, str]]:
    """``(folder, name)`` of each file of :func:`walk_folders`."""
    for folder, names in walk_folders(inputs, patterns):
        yield from ((folder, name) for name in names)


def find_skeleton_files(inputs: Iterable, patterns: Sequence[str] = ("*.skeleton",)) -> list[Path]:
    """The files matching ``patterns`` under the given folders (recursively), or given directly."""
    return [folder / name for folder, name in walk_files(inputs, patterns)]


def detect_dataset(names: Iterable[str]) -> str:
    """ntu120 if any sample is from setup 18+ or action 61+, else ntu60."""
    for name in names:
        meta = parse_ntu_name(name)
        if meta and (meta["setup"] > 17 or meta["action"] > 60):
            return "ntu120"
    return "ntu60"


class WorkerDied(RuntimeError):
    """A worker process of the local pool died (killed by a signal, by the out-of-memory killer, ...)."""


class _Executor:
    """Runs tasks inline (one worker) or on one forkserver process pool shared by both phases.

    forkserver, not fork: a forked child of a process that already ran a numba parallel (GNU OpenMP) kernel
    aborts, and the pool would hang. The pool starts in a background thread, so its start-up overlaps with the
    parent's file listing; its server imports the heavy modules once, before forking the workers. Each worker has
    one task at a time: when one dies, the pool breaks, and the tasks in flight (one of them the dead worker's)
    are named in a ``WorkerDied`` error instead of waiting forever.
    """

    def __init__(self, workers: int, progress: bool):
        self.workers, self.progress = workers, progress
        self._pool = None
        self._error: BaseException | None = None
        self._starter: threading.Thread | None = None

    def __enter__(self):
        if self.workers > 1:
            self._starter = threading.Thread(target=self._start_pool, daemon=True)
            self._starter.start()
        return self

    def _start_pool(self) -> None:
        from concurrent.futures import ProcessPoolExecutor, wait

        try:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["skeltools._forkserver_warmup", "zarr"])
            self._pool = ProcessPoolExecutor(self.workers, mp_context=context)
            wait([self._pool.submit(os.getpid) for _ in range(self.workers)])  # start every worker now
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            self._error = exc

    def _ready_pool(self):
        if self._starter is not None:
            self._starter.join()
            self._starter = None
        if self._error is not None:
            error, self._error = self._error, None
            raise RuntimeError(f"could not start {self.workers} worker processes: {error}") from error
        return self._pool

    def __exit__(self, *exc):
        pool = self._ready_pool()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)  # tasks in flight end first: at most one per worker

    def map(self, func, tasks: list, desc: str, label: Callable[[Any], str] | None = None):
        """Yield ``func(task)`` for every task, in completion order; ``label(task)`` names a task in the error of
        a dead worker (default: its number)."""
        pool = self._ready_pool()
        results = map(func, tasks) if pool is None or len(tasks) <= 1 else self._run(pool, func, tasks, desc, label)
        yield from _progress(results, len(tasks), desc, self.progress)

    def _run(self, pool, func, tasks: list, desc: str, label):
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        pending = iter(enumerate(tasks))
        running: dict = {}

        def submit_next() -> None:
            for number, task in itertools.islice(pending, 1):
                running[pool.submit(func, task)] = label(task) if label else f"task {number + 1} of {len(tasks)}"

        try:
            for _ in range(self.workers):
                submit_next()
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    result = future.result()
                    del running[future]
                    submit_next()
                    yield result
        except BrokenProcessPool:
            doing = f"running {' or '.join(running.values())}" if running else "between tasks"
            raise WorkerDied(f"a worker process died (killed by a signal or for lack of memory) during {desc}, "
                             f"{doing}") from None


class _DaskExecutor:
    """Runs the same tasks on a Dask cluster (``distributed.Client(scheduler)``), with the local executor's API.

    Task functions and their arguments are module-level and picklable; they read and write only paths under the
    inputs and the store's work directory, so every worker must see those paths (a shared filesystem, mounted at
    the same place). Tasks are idempotent (atomic spill files, whole-shard writes), so Dask may rerun one on
    another worker after a failure. The connect timeout is Dask's ``distributed.comm.timeouts.connect``.
    """

    def __init__(self, scheduler: str, progress: bool):
        try:
            import distributed
        except ImportError as exc:
            raise ConversionError(f"--engine dask needs Dask's distributed scheduler ({exc}): "
                                  f"pip install skeltools[dask]") from exc
        self._distributed = distributed
        self.scheduler, self.progress = scheduler, progress
        self._client = None
        self.workers = 0

    def __enter__(self):
        try:
            self._client = self._distributed.Client(self.scheduler, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ConversionError(f"cannot reach the Dask scheduler at {self.scheduler}: {exc}. Start one with "
                                  f"`dask scheduler` and workers with `dask worker {self.scheduler}`") from exc
        self.workers = len(self._client.scheduler_info(n_workers=-1)["workers"])
        if not self.workers:
            self._client.close()
            raise ConversionError(f"the Dask scheduler at {self.scheduler} has no workers; start some with "
                                  f"`dask worker {self.scheduler}`")
        return self

    def __exit__(self, *exc):
        self._client.close()

    def map(self, func, tasks: list, desc: str, label: Callable[[Any], str] | None = None):
        """Yield ``func(task)`` for every task, in completion order (a failed task raises its error here). Dask
        reruns the tasks of a lost worker elsewhere (``KilledWorker`` after repeated losses): ``label`` is unused."""
        futures = self._client.map(func, tasks, pure=False)
        try:
            finished = self._distributed.as_completed(futures, loop=self._client.loop)
            done = (future.result() for future in finished)
            yield from _progress(done, len(tasks), desc, self.progress)
        finally:
            self._client.cancel(futures)


def _progress(results: Iterable, total: int, desc: str, show: bool):
    """Yield ``results``, counting them on a tqdm bar."""
    from tqdm import tqdm

    with tqdm(total=total, desc=desc, unit="task", disable=not show, leave=False) as bar:
        for result in results:
            yield result
            bar.update()


ENGINES = ("local", "dask")


def make_executor(run: "RunOptions"):
    """The executor of ``run.engine``: the local process pool, or a Dask cluster at ``run.scheduler``."""
    if run.engine not in ENGINES:
        raise ConversionError(f"unknown engine {run.engine!r}; choose from {', '.join(ENGINES)}")
    if run.engine == "dask":
        if not run.scheduler:
            raise ConversionError("--engine dask needs --scheduler ADDRESS (for example tcp://head-node:8786)")
        return _DaskExecutor(run.scheduler, run.progress)
    if run.scheduler:
        raise ConversionError("--scheduler is for --engine dask")
    return _Executor(max(1, run.workers or os.cpu_count() or 1), run.progress)


@contextmanager
def conversion_executor(output: Path, run: "RunOptions") -> Iterator:
    """The executor of a conversion into ``output``, while this process holds the output's writer lock (so a
    second run on the same output, Dask head process included, fails at once). A dead worker ends the run; its
    finished work stays in the work directory for a rerun to resume."""
    with target_lock(output, "convert --append" if run.append else "convert"), make_executor(run) as executor:
        try:
            yield executor
        except WorkerDied as exc:
            raise ConversionError(f"{exc}; no store was written. Finished work is kept in {work_dir_for(output)}: "
                                  f"rerun the same command to resume") from exc


@dataclass(frozen=True)
class RunOptions:
    """How a conversion runs, whatever its source (the keyword arguments ``convert_*`` pass through).

    ``engine``: ``local`` (a process pool of ``workers``, default all cores) or ``dask`` (the cluster whose
    scheduler is at ``scheduler``; inputs and output must then be absolute paths every worker sees).
    ``append``: add to the existing store at the output (see ``append_to_store``).
    """

    workers: int | None = None
    engine: str = "local"
    scheduler: str | None = None
    keep_going: bool = False
    overwrite: bool = False
    append: bool = False
    shard_frames: int = schema.SHARD_FRAMES
    chunk_frames: int = schema.CHUNK_FRAMES
    progress: bool = True


def _file_size(path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _item_key(item) -> str:
    """The name a work item is reported under: the file, or a per-frame video's ``folder/video``."""
    return getattr(item, "key", None) or str(item)


def group_items(items: list) -> list[list]:
    """Consecutive items cut into groups of at most ``GROUP_FILES`` items and ``GROUP_INPUT_FILES`` input files
    (an item has one file, or its ``files``): groups of similar work keep the workers equally busy."""
    groups: list[list] = []
    files = 0
    for item in items:
        n = len(_item_files(item))
        if not groups or files + n > GROUP_INPUT_FILES or len(groups[-1]) == GROUP_FILES:
            groups.append([])
            files = 0
        groups[-1].append(item)
        files += n
    return groups


def _manifest(options, depends_on: frozenset[str]) -> dict[str, Any]:
    """What an interrupted run must share with this one for any finished group to be reused; each group is then
    checked on its own (its items, and their input files' digests)."""
    digest = hashlib.sha256("\n".join(sorted(depends_on)).encode(errors="surrogateescape"))
    manifest = {"format": FORMAT_VERSION, "options": asdict(options), "group_files": [GROUP_FILES, GROUP_INPUT_FILES],
                "depends_on": digest.hexdigest()}
    return json.loads(json.dumps(manifest))  # as read back from manifest.json (tuples become lists)


def convert_ntu(inputs: Sequence, output, *, dataset: str | None = None, preset: str = "clean",
                align_spine: bool = False, exclude_list=None, log: Callable[[str], None] = lambda _: None,
                **run) -> dict[str, Any]:
    """Convert NTU RGB+D ``.skeleton`` files into a store at ``output``; return the report.

    ``exclude_list``: None for the official missing-skeleton list of ``dataset``, a file of sample names, or a
    collection of names (empty: exclude nothing). ``run``: the fields of :class:`RunOptions` (workers, engine,
    append, ...); when appending, ``dataset`` defaults to the store's.
    """
    from skeltools.presets import PRESETS

    if preset not in PRESETS:
        raise ConversionError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    if run.get("append") and dataset is None and Path(output).exists():
        dataset = SkeletonStore.open(output).attrs["dataset"]

    def select(workers: int):
        todo, results, spec, exclusions = _select_inputs(inputs, dataset, exclude_list)
        options = NtuOptions(dataset=spec.name, preset=preset, align_spine=align_spine)
        log(f"{len(todo)} files to convert as {spec.name} with preset {preset} on {workers} worker(s)")
        return todo, results, spec, options, exclusions

    return run_conversion(select, inputs, output, log=log, **run)


def run_conversion(select: Callable[[int], tuple], inputs: Sequence, output, *,
                   log: Callable[[str], None] = lambda _: None, **run) -> dict[str, Any]:
    """The pipeline around a source's ``select(workers)`` -> (files to process, results for the others, dataset
    definition, options, exclusions); ``run``: the fields of :class:`RunOptions`. Returns the report."""
    from skeltools import __version__

    t_start = time.perf_counter()
    run = RunOptions(**run)
    if run.engine == "local" and count_files(inputs, GROUP_FILES + 1) <= GROUP_FILES:
        run = replace(run, workers=1)  # one group and one shard at most: in-process, no pool of idle workers
    output = check_output(output, inputs, run)
    with conversion_executor(output, run) as executor:  # a local pool starts while the inputs are listed
        todo, results, spec, options, exclusions = select(executor.workers)
        todo = [str(path) for path in todo]  # these sources' work items are files
        target = Target(options.source, {"dataset": spec.name, **options.report_fields()},
                        lambda n, f: _attrs(spec, options, n, f, __version__), lambda ok: options.index(ok, spec))
        return _process_and_write(executor, todo, results, output, options, exclusions, inputs, target, run=run,
                                  log=log, t_start=t_start)


def count_files(inputs: Sequence, limit: int) -> int:
    """Files under ``inputs`` (files or folders), counted up to ``limit`` at most."""
    count = 0
    for root in inputs:
        if os.path.isfile(root):
            count += 1
        for _, _, files in os.walk(root):
            count += len(files)
            if count >= limit:
                return limit
    return min(count, limit)


def check_output(output, inputs: Sequence, run: RunOptions) -> Path:
    """The output path, checked against ``run``: free (or ``overwrite``), or an existing store to append to;
    absolute, with absolute inputs, on a Dask cluster (its workers do not share our working directory)."""
    output = Path(output)
    if run.append:
        if run.overwrite:
            raise ConversionError("--append adds to the store and --overwrite replaces it: choose one")
        if not output.exists():
            raise StoreError(f"{output}: no store to append to (convert without --append first)")
    elif output.exists() and not run.overwrite:
        raise StoreError(f"{output} already exists (use --overwrite to replace it, or --append to add to it)")
    if run.engine == "dask":
        relative = [str(p) for p in inputs if not Path(p).is_absolute()]
        if relative:
            raise ConversionError(f"with --engine dask give absolute input paths that every worker sees "
                                  f"(relative: {', '.join(relative)})")
        output = output.absolute()
    return output


def _select_inputs(inputs, dataset: str | None, exclude_list):
    """List the inputs (sorted by sample id) and sort out the files that will not be processed.

    Returns (files to process, results for the others, dataset definition, exclusions).
    """
    by_id: dict[str, Path] = {}
    results: list[FileResult] = []
    for path in sorted(find_skeleton_files(inputs), key=lambda p: (p.name, str(p))):
        sample_id = path.name.split(".")[0]
        if parse_ntu_name(sample_id) is None or len(sample_id) != 20:
            results.append(FileResult(str(path), sample_id, "failed",
                                      reason=f"{path}: expected a file name SsssCcccPpppRrrrAaaa.skeleton"))
        elif sample_id in by_id:
            results.append(FileResult(str(path), sample_id, "skipped",
                                      reason=f"duplicate of {by_id[sample_id]}"))
        else:
            by_id[sample_id] = path
    spec = get_dataset(dataset or detect_dataset(by_id))
    if exclude_list is None:
        exclusions = ntu_missing_samples(spec.name)
    elif isinstance(exclude_list, (str, os.PathLike)):
        exclusions = read_sample_list(exclude_list)
    else:
        exclusions = frozenset(exclude_list)
    todo: list[Path] = []
    for sample_id, path in by_id.items():
        action = parse_ntu_name(sample_id)["action"]
        if sample_id in exclusions:
            results.append(FileResult(str(path), sample_id, "skipped", reason="on the exclusion list"))
        elif action > spec.num_classes:
            results.append(FileResult(str(path), sample_id, "skipped",
                                      reason=f"action A{action:03d} is not in {spec.name}"))
        else:
            todo.append(path)
    if not todo:
        raise ConversionError(f"no .skeleton files to convert in {', '.join(map(str, inputs))}")
    return todo, results, spec, exclusions


@dataclass(frozen=True)
class Target:
    """What a source adds to the shared pipeline: its name, report fields, store attrs and index."""

    source: str
    report: dict[str, Any]
    attrs: Callable[[int, int], dict[str, Any]]  # (num_samples, num_frames) -> group attrs
    index: Callable[[list[FileResult]], Any]  # converted results, in store order -> pyarrow Table
    class_names: Callable[[list[FileResult]], list[str]] | None = None  # for sources without a fixed class list


def _process_and_write(executor, todo: list, results: list[FileResult], output: Path, options,
                       depends_on: frozenset[str], inputs, target: Target, *, run: RunOptions, log,
                       t_start: float) -> dict[str, Any]:
    """Both phases and the publish, for work items ``todo`` processed by ``options.process``; ``depends_on``: what
    else the results depend on, as strings (an exclusion list, label files with their stats). Returns this run's
    report (when appending, the store's ``report.json`` sums it with the earlier runs')."""
    # Work directory: reuse an interrupted run's finished groups when inputs and options are unchanged.
    work = work_dir_for(output)
    spill = work / "spill"
    manifest = _manifest(options, depends_on)
    manifest_path = work / "manifest.json"
    if work.exists() and (not manifest_path.exists() or json.loads(manifest_path.read_text()) != manifest):
        shutil.rmtree(work)
    spill.mkdir(parents=True, exist_ok=True)
    manifest_path.write_text(json.dumps(manifest))
    existing = SkeletonStore.open(output) if run.append else None
    if existing is not None:
        check_valid(existing)
        check_appendable(existing, target.attrs(0, 0))

    groups = group_items(todo)
    group_results: dict[int, list[FileResult]] = {}
    pending = []
    for g, paths in enumerate(groups):
        done = _load_group(spill, g, paths)
        if done is not None:
            group_results[g] = done
        else:
            pending.append((g, paths, options, str(spill)))
    if len(pending) < len(groups):
        log(f"resuming: {len(groups) - len(pending)} of {len(groups)} groups already processed")
    t0 = time.perf_counter()
    process_seconds = 0.0
    for g, res, seconds in executor.map(process_group, pending, "parse+preprocess", label=_group_label):
        group_results[g] = res
        process_seconds += seconds
    t_process = time.perf_counter() - t0

    present = set() if existing is None else set(existing.index.column("sample_id").to_pylist())
    is_new = lambda r: not present.intersection(_sample_ids(r))  # noqa: E731
    duplicates = [r for g in range(len(groups)) for r in group_results[g] if r.status == "ok" and not is_new(r)]
    results.extend(r for g in range(len(groups)) for r in group_results[g] if r.status != "ok" or is_new(r))
    ok = [r for r in results if r.status == "ok"]
    failed = [r for r in results if r.status == "failed"]
    skipped = [r for r in results if r.status == "skipped"]
    report = {
        "source": target.source,
        **target.report,
        "inputs": [str(i) for i in inputs],
        "counts": {"files": len(results) + len(duplicates) - len(todo) + sum(len(_item_files(i)) for i in todo),
                   "input_bytes": sum(r.input_bytes or _file_size(r.file) for r in results + duplicates),
                   "converted": len(ok), "skipped": len(skipped), "failed": len(failed),
                   "samples": sum(len(_sample_ids(r)) for r in ok),
                   "frames": int(sum(r.length for r in ok)),
                   "nonfinite_body_frames": int(sum(r.nonfinite_body_frames for r in results))},
        "failed": [{"file": r.file, "line": r.line, "error": r.reason} for r in failed],
        "skipped": [{"file": r.file, "sample_id": r.sample_id, "reason": r.reason} for r in skipped],
        "notes": {r.sample_id: r.notes for r in ok if r.notes},
        "nonfinite_body_frames": {r.sample_id: r.nonfinite_body_frames for r in results if r.nonfinite_body_frames},
        "workers": executor.workers,
    }
    if existing is not None:
        report["counts"]["duplicates"] = len(duplicates)
        report["duplicates"] = [{"file": r.file, "sample_id": r.sample_id} for r in duplicates]
    if failed and not run.keep_going:
        raise ConversionError(
            f"{len(failed)} of {len(results)} files failed; no store was written (first: {failed[0].reason}). "
            f"Every failure is in {_write_report(work, report)}. Fix them, or rerun with --keep-going to publish "
            f"without them (finished work in {work} is reused)."
        )
    if existing is not None and not ok:
        shutil.rmtree(work, ignore_errors=True)
        log(f"{output}: nothing new to append ({len(duplicates)} already in the store); the store is unchanged")
        return report
    if not ok:
        reasons = "; ".join(dict.fromkeys(r.reason for r in failed + skipped))
        raise ConversionError(f"no sample could be converted ({len(skipped)} skipped, {len(failed)} failed: "
                              f"{reasons[:1000]}{'...' if len(reasons) > 1000 else ''}); every reason is in "
                              f"{_write_report(work, report)}")

    # Phase 2: shard-owned writes.
    t0 = time.perf_counter()
    lengths = np.array(sample_lengths(ok), dtype=np.int64)
    pieces = spill_pieces(spill, group_results, is_new)
    if existing is None:
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        builder = StoreBuilder(output, work, int(offsets[-1]), options.frame_shape, run.shard_frames,
                               run.chunk_frames)
        attrs = target.attrs(len(lengths), int(offsets[-1]))
        if target.class_names is not None:  # the classes the converted samples' labels name
            attrs["class_names"] = target.class_names(ok)
        builder.create(attrs)
        shard_tasks = [(str(builder.array_path()), s, e, segs)
                       for s, e, segs in plan_shards(pieces, run.shard_frames)]
        write_seconds = sum(executor.map(write_shard, shard_tasks, "write shards"))
        index = target.index(ok)
    else:
        builder, offsets, write_seconds = _write_appended(executor, existing, work, pieces, lengths, log)
        index = _appended_index(existing, target.index(ok))
    t_write = time.perf_counter() - t0

    report["timings"] = {"process_wall_s": round(t_process, 3), "process_cpu_s": round(process_seconds, 3),
                         "write_wall_s": round(t_write, 3), "write_cpu_s": round(write_seconds, 3),
                         "total_s": round(time.perf_counter() - t_start, 3)}
    stored = report if existing is None else _appended_report(existing.report, report)
    builder.publish(offsets, index, stored, overwrite=run.overwrite or existing is not None)
    return report


def _write_report(work: Path, report: dict[str, Any]) -> Path:
    """Write the report of a run that publishes nothing into its work directory; return the path."""
    path = work / "report.json"
    _atomic_write(path, lambda fh: fh.write(json.dumps(report, indent=2, default=str).encode()))
    return path


def _sample_ids(r: FileResult) -> list[str]:
    """The store sample ids a converted file contributes."""
    return [s["sample_id"] for s in r.samples] if r.samples else [r.sample_id]


# ----------------------------------------------------------------------------------------------------------------
# Append


_VOLATILE_ATTRS = ("num_samples", "num_frames", "created", "skeltools_version", schema.INTEGRITY_ATTR)


def check_valid(store: SkeletonStore) -> None:
    """Refuse to append to a store that fails validation: the quick checks for a store that records its shard
    files and digests (it is then complete as published, and its frames were checked finite when written), else
    the deep ones (every chunk decoded)."""
    from skeltools.validate import validate_store

    sealed = schema.INTEGRITY_ATTR in store.attrs and all(
        schema.SHARDS_ATTR in store.array(name).attrs for name in store.modalities)
    report = validate_store(store.path, deep=not sealed)
    if not report.ok:
        raise ConversionError(f"{store.path}: cannot append to a store that fails validation "
                              f"({len(report.problems)} problem(s), first: {report.problems[0]}); "
                              f"see `skeltools validate {store.path}`")


def check_appendable(store: SkeletonStore, attrs: dict[str, Any]) -> None:
    """Refuse to append samples made with other options: every store attr but counts and dates must match."""
    from skeltools.store import _json_default

    ours = json.loads(json.dumps(attrs, default=_json_default))
    keys = [k for k in dict.fromkeys([*store.attrs, *ours])
            if k not in _VOLATILE_ATTRS and store.attrs.get(k) != ours.get(k)]
    if keys:
        def show(value) -> str:
            text = json.dumps(value)
            return text if len(text) <= 120 else text[:117] + "..."

        differences = "; ".join(f"{k}: store {show(store.attrs.get(k))}, this run {show(ours.get(k))}" for k in keys)
        raise ConversionError(f"{store.path}: cannot append, the options differ from the store's ({differences}); "
                              f"convert with the store's options")


def _write_appended(executor, store: SkeletonStore, work: Path, pieces: list, lengths: np.ndarray, log):
    """Build the next version of ``store`` in ``work/store``: its full shards hard-linked, the last partial shard
    and the new frames written (joint and every modality the store has). Returns (builder, offsets, seconds)."""
    import zarr

    from skeltools.modalities import pair_rule, write_shard as write_modality_shard
    from skeltools.kernels import last_frames
    from skeltools.store import create_frame_array, link_shards

    joint = store.array("joint")
    shard, chunk = (joint.shards or joint.chunks)[0], joint.chunks[0]
    old_frames = int(store.offsets[-1])
    base = old_frames // shard * shard  # frames before the last partial shard stay where they are
    offsets = np.concatenate([store.offsets, old_frames + np.cumsum(lengths)])
    total = int(offsets[-1])
    builder = StoreBuilder(store.path, work, total, tuple(joint.shape[1:]), shard, chunk)
    builder.create(store.attrs | {"num_samples": len(offsets) - 1, "num_frames": total})
    group = zarr.open_group(str(builder.path), mode="r+")
    derived = [name for name in store.modalities if name != "joint"]
    for name in derived:
        create_frame_array(group, name, (total, *joint.shape[1:]), shard, chunk).attrs.update(
            dict(store.array(name).attrs))
    for name in ("joint", *derived):
        link_shards(store.path / name, builder.array_path(name), base // shard)
    if base < old_frames:
        tail = work / "spill" / "tail.npy"
        _atomic_write(tail, lambda fh: np.save(fh, np.asarray(joint[base:old_frames])))
        pieces = [(str(tail), 0, old_frames - base), *pieces]
    log(f"{store.path}: appending {len(lengths)} samples; {base // shard} full shard(s) kept, frames {base}.."
        f"{total} written")
    tasks = [(str(builder.array_path()), s, e, segs) for s, e, segs in plan_shards(pieces, shard, base)]
    seconds = sum(executor.map(write_shard, tasks, "write shards"))
    if derived:
        ranges = [(s + base, e + base) for s, e in shard_ranges(total - base, shard)]
        parallel = executor.workers == 1 or len(ranges) == 1
        rule = pair_rule(store.attrs)
        tasks = [(str(builder.path), str(builder.path), s, e, tuple(derived), rule, last_frames(offsets, s, e),
                  parallel) for s, e in ranges]
        seconds += sum(executor.map(write_modality_shard, tasks, "modalities"))
    return builder, offsets, seconds


def _appended_index(store: SkeletonStore, new):
    """The store's index followed by the new samples' rows; both must have the same columns."""
    import pyarrow as pa

    if not new.schema.equals(store.index.schema, check_metadata=False):
        raise ConversionError(f"{store.path}: cannot append, the new samples' index columns "
                              f"({', '.join(new.schema.names)}) differ from the store's "
                              f"({', '.join(store.index.schema.names)})")
    return pa.concat_tables([store.index, new.cast(store.index.schema)]).combine_chunks()


def _appended_report(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The store's report after an append: totals and per-file lists over all runs; each append's own inputs,
    counts and timings under ``appends``."""
    counts = dict(old.get("counts", {}))
    for key, value in new["counts"].items():
        counts[key] = counts.get(key, 0) + value
    return old | {
        "counts": counts,
        "inputs": old.get("inputs", []) + new["inputs"],
        "failed": old.get("failed", []) + new["failed"],
        "skipped": old.get("skipped", []) + new["skipped"],
        "notes": old.get("notes", {}) | new["notes"],
        "nonfinite_body_frames": old.get("nonfinite_body_frames", {}) | new["nonfinite_body_frames"],
        "appends": old.get("appends", []) + [
            {key: new[key] for key in ("inputs", "counts", "duplicates", "workers", "timings")}
            | {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}],
    }


def _attrs(spec, options, num_samples: int, num_frames: int, version: str) -> dict[str, Any]:
    return {
        "schema": schema.SCHEMA_VERSION,
        "dataset": spec.name,
        "num_samples": num_samples,
        "num_frames": num_frames,
        "class_names": list(spec.class_names),
        "source": options.source,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "skeltools_version": version,
    } | options.store_attrs(spec)


def _ntu_index(ok: list[FileResult], spec, dataset: str):
    rows = [file_row(r, parse_ntu_name(r.sample_id)) for r in ok]
    return build_index([row | {"label": row["action"] - 1} for row in rows], spec, "ntu")


def file_row(r: FileResult, meta: dict) -> dict:
    """The index row of a one-sample file: its common columns and ``meta`` (source fields)."""
    return {"sample_id": r.sample_id, "length": r.length, "n_persons": r.n_persons} | meta


def build_index(rows: list[dict], spec, source: str):
    """``index.parquet`` from one mapping per sample holding the common columns, ``SOURCE_COLUMNS[source]`` and
    what ``spec``'s split rules read; the split columns are computed here."""
    import pyarrow as pa

    names = [*schema.INDEX_COLUMNS, *schema.SOURCE_COLUMNS[source]]
    columns: dict[str, Any] = {name: [row[name] for row in rows] for name in names}
    flags = [spec.split_flags(row) for row in rows]
    for name in spec.split_columns():
        columns[name] = [f[name] for f in flags]
    table_schema = schema.index_schema(schema.SOURCE_COLUMNS[source], spec.split_columns(),
                                       {"dataset": spec.name, "schema": str(schema.SCHEMA_VERSION)})
    return pa.Table.from_pydict(columns, schema=table_schema)

"""SkeletonStore: the zarr v3 store of concatenated frames + offsets + ``index.parquet`` (schema in schemas.store).

Writing: ``StoreBuilder`` creates the store inside a hidden sibling work directory (``.NAME.partial/store``);
writers fill whole shards (each shard has one owner, so parallel writers never race); ``publish`` writes the
offsets, ``report.json`` and ``index.parquet`` (last), seals the store (each frame array's shard files and sizes
in its attrs, digests of offsets and index in the group attrs), checks it (``validate_store(deep=False)``), then
renames the directory into place. A store at the target path is therefore always complete, and one writer at a
time holds a target (``target_lock``).

Reading: ``SkeletonStore.open(path)``; ``len(store)``; ``store[i]`` -> ``(T, M, V, C)`` float32 joints;
``store.read(i, modality)``; ``store.index`` (pyarrow Table); ``store.rows(split)``; ``store.load()``. Opening
checks that every shard file recorded at publish is there with its size (one ``stat`` each); a shard file that
goes missing later raises on read (zarr would return zeros).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from schemas import store as schema


class StoreError(ValueError):
    """A store that is missing, incomplete or does not follow the schema."""


def work_dir_for(target: Path) -> Path:
    """The hidden sibling directory where ``target`` is built (and an interrupted build is resumed from)."""
    target = Path(target)
    return target.parent / f".{target.name}.partial"


def _codecs():
    from zarr.codecs import Crc32cCodec, ZstdCodec

    return (ZstdCodec(level=1), Crc32cCodec())  # level 1: the ratio of level 3 on skeletons, 1.7x faster


def create_frame_array(group, name: str, shape: tuple[int, ...], shard_frames: int, chunk_frames: int):
    """A float32 (F, M, V, C) array chunked along frames, sharded, zstd-compressed and checksummed."""
    frame_shape = tuple(shape[1:])
    return group.create_array(
        name,
        shape=shape,
        dtype="float32",
        chunks=(chunk_frames, *frame_shape),
        shards=(shard_frames, *frame_shape),
        compressors=_codecs(),
        fill_value=0.0,
        dimension_names=schema.FRAME_DIMS,
    )


def shard_ranges(num_frames: int, shard_frames: int) -> list[tuple[int, int]]:
    """The [start, stop) frame range of every shard: the unit of parallel writing."""
    return [(s, min(s + shard_frames, num_frames)) for s in range(0, num_frames, shard_frames)]


def write_frames(array_path: Path, start: int, block: np.ndarray) -> None:
    """Write ``block`` at frame ``start`` of the array at ``array_path``; the caller owns those whole shards.
    Whole shards of a store array are encoded by ``skeltools.shards`` (zarr's bytes, a third of its CPU)."""
    from skeltools.shards import write_shards

    nonfinite = int(np.count_nonzero(~np.isfinite(block)))
    if nonfinite:
        raise StoreError(f"{array_path}: frames {start}..{start + len(block)} hold {nonfinite} NaN or infinite "
                         f"values; a store never holds them (sources zero and count such body-frames)")
    if not write_shards(Path(array_path), start, block):
        import zarr

        zarr.open_array(str(array_path), mode="r+")[start:start + len(block)] = block


@dataclass
class StoreBuilder:
    """A store under construction in ``work_dir/store``."""

    target: Path
    work_dir: Path
    num_frames: int
    frame_shape: tuple[int, int, int]
    shard_frames: int = schema.SHARD_FRAMES
    chunk_frames: int = schema.CHUNK_FRAMES

    @property
    def path(self) -> Path:
        return self.work_dir / "store"

    def array_path(self, name: str = "joint") -> Path:
        return self.path / name

    def create(self, attrs: dict[str, Any]) -> None:
        """Create the group and an empty joint array (existing partial content at this path is replaced)."""
        import zarr

        if self.path.exists():
            shutil.rmtree(self.path)
        group = zarr.open_group(str(self.path), mode="w-")
        group.attrs.update(attrs)
        create_frame_array(group, "joint", (self.num_frames, *self.frame_shape), self.shard_frames, self.chunk_frames)

    def publish(self, offsets: np.ndarray, index, report: dict[str, Any], overwrite: bool = False) -> Path:
        """Write offsets, report and index (last), then move the finished store to ``target`` atomically."""
        import pyarrow.parquet as pq
        import zarr

        group = zarr.open_group(str(self.path), mode="r+")
        group.create_array("offsets", data=np.asarray(offsets, dtype=np.int64), dimension_names=("sample_edge",))
        (self.path / "report.json").write_text(json.dumps(report, indent=1, default=_json_default) + "\n")
        pq.write_table(index, self.path / "index.parquet", compression="zstd")
        seal_store(self.path)
        check_before_publish(self.path, self.target)
        return publish_dir(self.path, self.target, overwrite=overwrite, cleanup=self.work_dir)


# ----------------------------------------------------------------------------------------------------------------
# Integrity: what publish records and what open and validate check


def shard_files(array_dir: Path) -> dict[str, int]:
    """Size in bytes of every shard file of the frame array at ``array_dir``, by key (``c/<shard>/0/0/0``: one
    shard spans the other axes), in shard order. A shard whose frames are all zero has no file."""
    inner = "/".join("0" * (len(schema.FRAME_DIMS) - 1))
    try:
        shards = sorted(int(entry.name) for entry in os.scandir(Path(array_dir) / "c") if entry.name.isdigit())
    except FileNotFoundError:
        return {}
    sizes = {}
    for shard in shards:
        key = f"c/{shard}/{inner}"
        try:
            sizes[key] = os.stat(Path(array_dir) / key).st_size
        except FileNotFoundError:
            continue
    return sizes


def seal_array(array_dir: Path) -> None:
    """Record the array's shard files and sizes in its attrs (``schema.SHARDS_ATTR``)."""
    import zarr

    zarr.open_array(str(array_dir), mode="r+").attrs[schema.SHARDS_ATTR] = shard_files(array_dir)


def store_digests(path: Path, offsets: np.ndarray) -> dict[str, str]:
    """The ``schema.INTEGRITY_ATTR`` of a store: sha256 of its offsets (int64 little-endian) and index file."""
    return {"offsets": hashlib.sha256(np.asarray(offsets, "<i8").tobytes()).hexdigest(),
            "index.parquet": hashlib.sha256((Path(path) / "index.parquet").read_bytes()).hexdigest()}


def seal_store(path: Path) -> None:
    """Seal every frame array of the finished store at ``path`` and record the digests of offsets and index."""
    import zarr

    group = zarr.open_group(str(path), mode="r+")
    for name in schema.MODALITIES:
        if (Path(path) / name / "zarr.json").is_file():
            seal_array(Path(path) / name)
    group.attrs[schema.INTEGRITY_ATTR] = store_digests(path, group["offsets"][:])


def check_before_publish(built: Path, target: Path) -> None:
    """Refuse to publish a built store that fails the quick validation; it stays in the work directory."""
    from skeltools.validate import validate_store

    report = validate_store(built, deep=False)
    if not report.ok:
        raise StoreError(f"{target}: the finished store fails validation and is not published "
                         f"({'; '.join(report.problems)}); it is left in {built}")


def shard_problems(store_path: Path, name: str, expected: dict[str, int]) -> list[str]:
    """Each shard file of array ``name`` recorded at publish (``expected``: key -> size) that is missing or has
    another size, in words; one ``stat`` per shard."""
    problems = []
    for key, size in expected.items():
        where = f"array {name!r}, shard {key.split('/')[1]} ({name}/{key})"
        try:
            actual = os.stat(Path(store_path) / name / key).st_size
        except FileNotFoundError:
            problems.append(f"{where} is missing")
            continue
        if actual != size:
            problems.append(f"{where} has {actual} bytes, {size} when published")
    return problems


def publish_dir(built: Path, target: Path, *, overwrite: bool, cleanup: Path | None = None) -> Path:
    """Rename the finished directory ``built`` to ``target``. An old target is swapped out in one atomic step
    where the OS can exchange two paths (Linux), else renamed aside first; then it is removed."""
    target = Path(target)
    old = None
    if target.exists():
        if not overwrite:
            raise StoreError(f"{target} already exists (use --overwrite to replace it)")
        old = target.parent / f".{target.name}.old"
        if old.exists():
            shutil.rmtree(old)
        if _exchange(built, target):
            os.replace(built, old)  # ``built`` now holds the old store
        else:
            os.replace(target, old)
            os.replace(built, target)
    else:
        os.replace(built, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    if cleanup is not None:
        shutil.rmtree(cleanup, ignore_errors=True)
    return target


def lock_path_for(target: Path) -> Path:
    """The lock file of ``target``'s writers: ``.NAME.lock`` beside it (not inside the work directory, which a
    run may remove)."""
    target = Path(target)
    return target.parent / f".{target.name}.lock"


@contextmanager
def target_lock(target: Path, command: str) -> Iterator[None]:
    """Hold the exclusive lock of ``target`` (an ``flock`` on :func:`lock_path_for`, which names this process)
    while writing it; another writer of the same target fails at once with one line naming the holder. The kernel
    drops the lock of a process that dies, so a stale lock file is simply taken over."""
    import fcntl

    path = lock_path_for(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _lock_holder(fd)
            os.close(fd)
            raise StoreError(f"{target} is being written by another run ({holder}); wait for it or stop it "
                             f"(lock {path})") from None
        except OSError as exc:
            os.close(fd)
            raise StoreError(f"cannot lock {path} ({exc.strerror}): write the store on a filesystem with file "
                             f"locks") from exc
        try:
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break  # else the previous holder removed the file after we opened it: lock the new one
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
                  "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        yield
    finally:
        path.unlink(missing_ok=True)  # while still locked: a waiting opener then sees another inode
        os.close(fd)


def _lock_holder(fd: int) -> str:
    """Who holds the lock file open at ``fd``, in words (its holder writes itself right after locking)."""
    for _ in range(20):
        try:
            holder = json.loads(os.pread(fd, 4096, 0))
            return (f"{holder['command']}, pid {holder['pid']} on host {holder['host']}, "
                    f"started {holder['started']}")
        except (ValueError, KeyError, TypeError):
            time.sleep(0.05)
    return "a run that has not written its name into the lock file"


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def link_shards(source: Path, target: Path, shards: int) -> None:
    """Hard-link (copy where links are unsupported) the files of the first ``shards`` shards of the array at
    ``source`` into the array at ``target``: zarr v3 keys ``c/<shard>/...``; shards never written are absent.
    zarr replaces a file on write, never rewrites it in place, so the linked copies stay independent."""
    for i in range(shards):
        src = source / "c" / str(i)
        if src.exists():
            shutil.copytree(src, target / "c" / str(i), copy_function=_link_or_copy, dirs_exist_ok=True)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _json_default(obj):
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


_LITTLE_ZSTD = ("bytes", "zstd")


@dataclass(frozen=True)
class ArrayMeta:
    """A stored array's metadata, read from its ``zarr.json``: ``chunks`` are the inner chunks of a sharded array
    (zarr's ``Array.chunks``), ``shards`` None when unsharded."""

    shape: tuple[int, ...]
    dtype: str
    chunks: tuple[int, ...]
    shards: tuple[int, ...] | None
    codecs: tuple[str, ...]  # codec names, outermost first

    @classmethod
    def read(cls, path: Path) -> "ArrayMeta | None":
        """The metadata of the array at ``path``; None when there is none."""
        try:
            meta = json.loads((path / "zarr.json").read_text())
        except FileNotFoundError:
            return None
        if meta.get("node_type") != "array":
            return None
        grid, codecs = tuple(meta["chunk_grid"]["configuration"]["chunk_shape"]), meta["codecs"]
        names = tuple(c["name"] for c in codecs)
        if names and names[0] == "sharding_indexed":
            return cls(tuple(meta["shape"]), meta["data_type"], tuple(codecs[0]["configuration"]["chunk_shape"]),
                       grid, names)
        little = all(c.get("configuration", {}).get("endian", "little") == "little" for c in codecs)
        return cls(tuple(meta["shape"]), meta["data_type"], grid, None, names if little else ("big-endian",))


def _recorded_shards(array_path: Path) -> dict[str, int] | None:
    """The shard files (key -> size) recorded in an array's attrs at publish; None for stores written before."""
    meta = json.loads((array_path / "zarr.json").read_text())
    shards = meta.get("attributes", {}).get(schema.SHARDS_ATTR)
    return shards if isinstance(shards, dict) else None


def _read_offsets(path: Path, meta: ArrayMeta) -> np.ndarray:
    """The int64 offsets array: its (bytes, zstd) chunks decoded directly, any other encoding through zarr."""
    if meta.codecs != _LITTLE_ZSTD or meta.dtype != "int64" or len(meta.shape) != 1:
        import zarr

        return zarr.open_array(str(path), mode="r")[:]
    from numcodecs import Zstd

    size, chunk = meta.shape[0], meta.chunks[0]
    parts = []
    for i in range(-(-size // chunk)):
        try:
            parts.append(np.frombuffer(Zstd().decode((path / "c" / str(i)).read_bytes()), "<i8"))
        except FileNotFoundError:  # zarr writes no chunk whose values all equal the fill value 0
            parts.append(np.zeros(chunk, np.int64))
    return np.concatenate(parts)[:size].astype(np.int64) if parts else np.zeros(0, np.int64)


@dataclass
class SkeletonStore:
    """Read-only view of a finished store."""

    path: Path
    attrs: dict[str, Any]
    offsets: np.ndarray
    index: Any  # pyarrow.Table
    _meta: dict[str, "ArrayMeta"] = field(default_factory=dict, repr=False)
    _arrays: dict[str, Any] = field(default_factory=dict, repr=False)
    _loaded: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _readers: dict[str, Any] = field(default_factory=dict, repr=False)
    _shards: dict[str, dict[str, int]] = field(default_factory=dict, repr=False)  # shard files recorded at publish

    @classmethod
    def open(cls, path) -> "SkeletonStore":
        """Open and check a store. Metadata and offsets are read without zarr (``skeltools info`` stays light);
        zarr opens an array on its first ``array()`` call."""
        import pyarrow.parquet as pq

        path = Path(path)
        if not (path / "zarr.json").is_file():
            partial = work_dir_for(path)
            hint = f" (an interrupted conversion is in {partial}; rerun it to resume)" if partial.exists() else ""
            raise StoreError(f"{path}: not a skeltools store, no zarr.json{hint}")
        if not (path / "index.parquet").is_file():
            raise StoreError(f"{path}: index.parquet is missing; the store is incomplete")
        attrs = json.loads((path / "zarr.json").read_text()).get("attributes", {})
        index = pq.ParquetFile(path / "index.parquet").read()
        metas = {name: ArrayMeta.read(path / name) for name in schema.ARRAYS}
        metas = {name: meta for name, meta in metas.items() if meta is not None}
        recorded = {name: _recorded_shards(path / name) for name in metas}
        recorded = {name: shards for name, shards in recorded.items() if isinstance(shards, dict)}
        damaged = [p for name, expected in recorded.items() for p in shard_problems(path, name, expected)]
        if damaged:
            more = f" and {len(damaged) - 3} more" if len(damaged) > 3 else ""
            raise StoreError(f"{path}: {len(damaged)} shard file(s) differ from the published store: "
                             f"{'; '.join(damaged[:3])}{more}; run `skeltools validate {path}`")
        problems = schema.validate(
            attrs,
            {name: (m.shape, m.dtype) for name, m in metas.items()},
            {f.name: str(f.type) for f in index.schema},
            index.num_rows,
        )
        if problems:
            raise StoreError(f"{path}: does not follow store schema {schema.SCHEMA_VERSION}: " + "; ".join(problems))
        offsets = _read_offsets(path / "offsets", metas.pop("offsets"))
        return cls(path, attrs, offsets, index, metas, _shards=recorded)

    @classmethod
    def from_samples(cls, samples, sample_ids, attrs: dict[str, Any], labels=None,
                     name: str = "<inputs>") -> "SkeletonStore":
        """An in-memory store of ``samples`` (each (T, M, V, C)) with ``attrs``: the same reading API over data
        that was never written (``predict`` on raw files). ``labels`` default to -1 (unlabelled)."""
        import pyarrow as pa

        samples = [np.asarray(s, np.float32) for s in samples]
        if not samples:
            raise StoreError(f"{name}: no samples")
        offsets = np.concatenate([[0], np.cumsum([len(s) for s in samples])]).astype(np.int64)
        joint = np.concatenate(samples)
        labels = [-1] * len(samples) if labels is None else list(labels)
        index = pa.table({"sample_id": pa.array(list(sample_ids), pa.string()), "label": pa.array(labels, pa.int16()),
                          "length": pa.array(np.diff(offsets), pa.int32())})
        return cls(Path(name), dict(attrs), offsets, index, {}, {}, {"joint": joint})

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        return self.read(i)

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(name for name in schema.MODALITIES if name in self._meta or name in self._loaded)

    @property
    def layout(self):
        """The store's ``schemas.layouts.Layout``: built in by name, else its recorded ``layout_definition``."""
        from schemas.layouts import layout_from_attrs

        return layout_from_attrs(self.attrs)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def class_names(self) -> list[str]:
        return list(self.attrs["class_names"])

    def class_name(self, label: int) -> str:
        """The name of class ``label``; its number where the store has no name for it, "unlabelled" for -1."""
        names = self.attrs.get("class_names") or []
        if label < 0:
            return "unlabelled"
        return str(names[label]) if label < len(names) else f"class {label}"

    @property
    def split_columns(self) -> list[str]:
        import pyarrow as pa

        return [f.name for f in self.index.schema if f.type == pa.bool_()]

    @property
    def report(self) -> dict[str, Any]:
        report_path = self.path / "report.json"
        return json.loads(report_path.read_text()) if report_path.exists() else {}

    def array(self, modality: str = "joint"):
        """The whole (F, M, V, C) array of a modality: numpy after ``load()``, else the zarr array."""
        if modality in self._loaded:
            return self._loaded[modality]
        self.meta(modality)  # a clear error for an absent modality
        if modality not in self._arrays:
            import zarr

            from skeltools.sealed_store import SealedLocalStore

            files = SealedLocalStore(str(self.path), read_only=True)
            files.expected = frozenset(f"{modality}/{key}" for key in self._shards.get(modality, {}))
            self._arrays[modality] = zarr.open_array(store=files, path=modality, mode="r")
        return self._arrays[modality]

    def meta(self, modality: str = "joint") -> "ArrayMeta":
        """Shape, dtype, chunks and shards of a stored array (from its metadata; no zarr)."""
        if modality not in self._meta:
            raise StoreError(f"{self.path}: no {modality!r} array (present: {', '.join(self.modalities)}; "
                             f"run `skeltools modalities {self.path}`)")
        return self._meta[modality]

    def read(self, i: int, modality: str = "joint") -> np.ndarray:
        """Sample ``i`` as (T, M, V, C) float32."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"sample {i} out of range for a store of {n} samples")
        i %= n
        reader = self.reader(modality)
        if reader is not None:
            return reader.read(int(self.offsets[i]), int(self.offsets[i + 1]))
        return np.asarray(self.array(modality)[self.offsets[i]:self.offsets[i + 1]])

    def reader(self, modality: str = "joint"):
        """A ``skeltools.shardread.ShardReader`` of a stored array (direct chunk reads with a small cache of
        decoded chunks); None when the array is in RAM (``load()``) or its layout is not the one it reads."""
        if modality in self._loaded:
            return None
        if modality not in self._readers:
            from skeltools.shardread import ShardReader

            self.meta(modality)  # a clear error for an absent modality
            recorded = self._shards.get(modality)
            self._readers[modality] = ShardReader.open(
                self.path / modality,
                recorded=None if recorded is None else frozenset(int(k.split("/")[1]) for k in recorded))
        return self._readers[modality]

    def rows(self, split: str | None = None) -> np.ndarray:
        """Sample positions of a split column (``xsub_train``, ...); all samples for None."""
        if split is None:
            return np.arange(len(self))
        if split not in self.split_columns:
            hint = ""
            if not self.split_columns and (self.index.column("label").to_numpy() >= 0).any():
                hint = (f"; the store is labelled but has no split: `skeltools subset {self.path} -o OUT.zarr "
                        f"--split-ratio 0.8` adds a seeded generic_train/generic_test split (then --split generic)")
            raise StoreError(f"{self.path}: no split {split!r} (splits: {', '.join(self.split_columns) or 'none'})"
                             + hint)
        return np.flatnonzero(self.index.column(split).to_numpy(zero_copy_only=False))

    def load(self, modalities=None) -> "SkeletonStore":
        """Read whole arrays into RAM (all present modalities by default); reads then slice numpy arrays."""
        for name in modalities or self.modalities:
            if name not in self._loaded:
                self._loaded[name] = self.array(name)[:]
        return self

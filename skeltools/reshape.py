"""New stores from existing ones: ``subset`` (rows by split, class and count) and ``merge`` (stores of one layout).

Frames are copied exactly (every modality the sources share), shard by shard, into a store built in a hidden
sibling directory and published atomically (sealed and checked), like a conversion, holding the target's lock.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np

from skeltools.store import (SkeletonStore, StoreBuilder, StoreError, create_frame_array, target_lock, work_dir_for,
                             write_frames)


def _copy(sources: list[tuple[SkeletonStore, np.ndarray]], target: Path, attrs: dict, index, report: dict, *,
          modalities: Sequence[str], overwrite: bool) -> Path:
    """Write the rows of each (store, rows) pair, in order, into a new store at ``target``."""
    import zarr

    with target_lock(target, "subset/merge"):
        first = sources[0][0]
        lengths = np.concatenate([store.lengths[rows] for store, rows in sources]).astype(np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        joint = first.array("joint")
        shard, chunk = (joint.shards or joint.chunks)[0], joint.chunks[0]
        builder = StoreBuilder(Path(target), work_dir_for(Path(target)), int(offsets[-1]), tuple(joint.shape[1:]),
                               shard, chunk)
        builder.create(attrs | {"num_samples": len(lengths), "num_frames": int(offsets[-1])})
        group = zarr.open_group(str(builder.path), mode="r+")
        for name in modalities:
            if name != "joint":
                create_frame_array(group, name, (int(offsets[-1]), *joint.shape[1:]), shard, chunk)
        for name in modalities:
            pending, start = np.zeros((0, *joint.shape[1:]), np.float32), 0
            for store, rows in sources:
                for row in rows:
                    pending = np.concatenate([pending, store.read(int(row), name)])
                    while len(pending) >= shard:  # one whole shard per write
                        write_frames(builder.array_path(name), start, pending[:shard])
                        pending, start = pending[shard:], start + shard
            if len(pending):
                write_frames(builder.array_path(name), start, pending)
        return builder.publish(offsets, index, report, overwrite=overwrite)


def with_random_split(index, ratio: float, seed: int, protocol: str = "generic"):
    """``index`` with two new columns ``{protocol}_train`` / ``{protocol}_test``: a seeded split stratified per
    class (``convert_generic.random_split``); unlabelled samples are in neither part."""
    import pyarrow as pa

    from skeltools.convert_generic import random_split

    names = [f"{protocol}_train", f"{protocol}_test"]
    if any(n in index.column_names for n in names):
        raise StoreError(f"the store has a {protocol!r} split already")
    ids, labels = index.column("sample_id").to_pylist(), index.column("label").to_pylist()
    parts = random_split({i: l for i, l in zip(ids, labels) if l >= 0}, ratio, seed)
    for name, part in zip(names, ("train", "test")):
        index = index.append_column(pa.field(name, pa.bool_()), pa.array([parts.get(i) == part for i in ids]))
    return index


def subset_store(path, target, *, split: str | None = None, classes: Sequence[str | int] = (),
                 max_per_class: int | None = None, split_ratio: float | None = None, seed: int = 0,
                 overwrite: bool = False) -> int:
    """Copy the samples of ``split`` whose class is in ``classes`` (names or 0-based labels; all when empty),
    at most ``max_per_class`` per class (the first in store order). ``split_ratio``: also add a seeded stratified
    ``generic_train`` / ``generic_test`` split of the kept samples. Returns the number of samples."""
    store = SkeletonStore.open(path)
    rows = store.rows(split)
    labels = store.index.column("label").to_numpy()
    if classes:
        names = store.class_names
        wanted = set()
        for c in classes:
            if isinstance(c, int) or str(c).isdigit():
                wanted.add(int(c))
            elif c in names:
                wanted.add(names.index(c))
            else:
                raise StoreError(f"{path}: no class {c!r}")
        rows = rows[np.isin(labels[rows], sorted(wanted))]
    if max_per_class is not None:
        seen: dict[int, int] = {}
        keep = []
        for row in rows:
            seen[labels[row]] = seen.get(labels[row], 0) + 1
            keep.append(seen[labels[row]] <= max_per_class)
        rows = rows[np.array(keep, bool)] if len(rows) else rows
    if not len(rows):
        present = np.unique(labels[(labels >= 0)])
        names = store.class_names
        listed = ", ".join(f"{k} {names[k]}" if k < len(names) else str(k) for k in present[:60])
        raise StoreError(f"{path}: the selection is empty; the store's classes are "
                         f"{listed or 'none (unlabelled)'}" + (" ..." if len(present) > 60 else ""))
    report = {"source": "subset", "from": str(Path(path).resolve()), "split": split, "classes": list(map(str, classes)),
              "max_per_class": max_per_class, "counts": {"converted": len(rows)},
              "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    index = store.index.take(rows)
    if split_ratio is not None:
        index = with_random_split(index, split_ratio, seed)
        report["split_ratio"], report["seed"] = split_ratio, seed
    _copy([(store, rows)], Path(target), dict(store.attrs), index, report,
          modalities=store.modalities, overwrite=overwrite)
    return len(rows)


_MUST_AGREE = ("layout", "layout_definition", "coords", "persons", "class_names")


def merge_stores(paths: Sequence, target, *, overwrite: bool = False) -> int:
    """Concatenate stores of the same layout, coordinates, persons and classes; sample ids must stay unique.
    Only the modalities every store has are kept. Returns the number of samples."""
    import pyarrow as pa

    stores = [SkeletonStore.open(p) for p in paths]
    first = stores[0]
    for other in stores[1:]:
        for key in _MUST_AGREE:
            if other.attrs.get(key) != first.attrs.get(key):
                raise StoreError(f"cannot merge {other.path} into {first.path}: their {key} differ")
        if other.index.schema.remove_metadata() != first.index.schema.remove_metadata():
            raise StoreError(f"cannot merge {other.path} into {first.path}: their index columns differ")
    ids = [i for s in stores for i in s.index.column("sample_id").to_pylist()]
    if len(set(ids)) != len(ids):
        seen, dup = set(), []
        for i in ids:
            if i in seen:
                dup.append(i)
            seen.add(i)
        raise StoreError(f"cannot merge: {len(dup)} sample ids occur in more than one store (e.g. {dup[0]!r})")
    modalities = [m for m in first.modalities if all(m in s.modalities for s in stores)]
    index = pa.concat_tables([s.index for s in stores]).replace_schema_metadata(first.index.schema.metadata)
    attrs = dict(first.attrs)
    datasets = list(dict.fromkeys(s.attrs["dataset"] for s in stores))
    attrs["dataset"] = "+".join(datasets)
    report = {"source": "merge", "from": [str(s.path.resolve()) for s in stores], "counts": {"converted": len(ids)},
              "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    _copy([(s, s.rows()) for s in stores], Path(target), attrs, index, report, modalities=modalities,
          overwrite=overwrite)
    return len(ids)

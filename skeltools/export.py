"""Exports for people who keep training elsewhere: pyskl / mmaction2 annotation pickle, or MS-G3D-style arrays.

**pyskl** (one ``.pkl``): ``{"split": {name: [frame_dir, ...]}, "annotations": [{"frame_dir", "label",
"total_frames", "keypoint"}, ...]}`` in store order, ``keypoint`` float32 ``(M, T, V, C)`` joints (pyskl derives
bones and motion itself). Trailing person slots that are empty in every frame are dropped (pyskl keeps the
persons it saw, at least one). A 2D store with a confidence channel (coords ``xyc``) gives ``keypoint``
``(M, T, V, 2)`` and ``keypoint_score`` ``(M, T, V)``.

**npy** (a folder): per split part, ``PROTOCOL/PART_data_FEATURE.npy`` float32 ``(N, C, T, V, M)`` and
``PROTOCOL/PART_label.pkl`` = ``(sample_ids, labels)`` — the names MS-G3D / 2s-AGCN / DualHead configs read
(``xsub/train_data_joint.npy``, ``xsub/val_label.pkl``, ``train_data_bone_motion.npy``, ...). T is 300 or the
longest sample if longer; shorter samples are zero-padded (or loop-padded, ``pad="loop"``), longer ones evenly
subsampled. Sample names are the store's ``sample_id`` (no ``.skeleton`` suffix).

Split names: a store column ``{protocol}_{part}`` keeps its name, except that a ``test`` part is called ``val``
when its protocol has no ``val`` part (pyskl's ``xsub_val``, MS-G3D's ``val_data_joint.npy``). A store without
split columns exports everything under ``all``.
"""
from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from skeltools import kernels
from skeltools.modalities import FeaturePlan, pair_rule, parse_features, read_samples

FORMATS = ("pyskl", "npy")
MIN_FRAMES = 300  # MS-G3D / 2s-AGCN arrays are 300 frames long


def reference_splits(store) -> dict[str, str]:
    """Store split column -> the name the reference codebases use (module doc)."""
    columns = store.split_columns
    names = {}
    for column in columns:
        protocol, _, part = column.rpartition("_")
        if part == "test" and f"{protocol}_val" not in columns:
            part = "val"
        names[column] = f"{protocol}_{part}" if protocol else part
    return names


def export_store(path, fmt: str, output, *, features: Sequence[str] | str = ("joint",), frames: int | None = None,
                 pad: str = "zero", overwrite: bool = False, progress: bool = True,
                 log: Callable[[str], None] = lambda _: None) -> Path:
    """Export the store at ``path`` as ``fmt`` (``pyskl`` file or ``npy`` folder) to ``output``; return it.

    ``features``, ``frames`` and ``pad`` apply to ``npy`` only. The output appears complete or not at all.
    """
    from skeltools.store import SkeletonStore, StoreError, publish_dir

    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    output = Path(output)
    if output.exists() and not overwrite:
        raise StoreError(f"{output} already exists (use --overwrite to replace it)")
    store = SkeletonStore.open(path)
    partial = output.parent / f".{output.name}.partial"
    _remove(partial)
    if fmt == "pyskl":
        with open(partial, "wb") as fh:
            pickle.dump(pyskl_annotations(store, progress), fh, protocol=pickle.HIGHEST_PROTOCOL)
        if output.is_dir():
            shutil.rmtree(output)
        os.replace(partial, output)
        log(f"{output}: {len(store)} annotations")
        return output
    written = write_npy(store, partial, parse_features(features, ","), frames, pad, progress)
    log(f"{output}: " + ", ".join(written))
    return publish_dir(partial, output, overwrite=overwrite)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _bar(total: int, desc: str, progress: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="sample", disable=not progress, leave=False)


def pyskl_annotations(store, progress: bool = False) -> dict:
    """The pyskl annotation dict of a store (module doc)."""
    ids = store.index.column("sample_id").to_pylist()
    labels = store.index.column("label").to_pylist()
    score = store.attrs["coords"] == "xyc"
    annotations = []
    with _bar(len(store), "pyskl", progress) as bar:
        for i, sample in enumerate(read_samples(store.array("joint"), store.offsets, range(len(store)))):
            keypoint = sample.transpose(1, 0, 2, 3)  # (T, M, V, C) -> (M, T, V, C)
            present = np.flatnonzero(keypoint.reshape(len(keypoint), -1).any(axis=1))
            keypoint = np.ascontiguousarray(keypoint[:present[-1] + 1 if len(present) else 1])
            ann = {"frame_dir": ids[i], "label": labels[i], "total_frames": len(sample)}
            if score:
                ann |= {"keypoint": np.ascontiguousarray(keypoint[..., :2]),
                        "keypoint_score": np.ascontiguousarray(keypoint[..., 2])}
            else:
                ann["keypoint"] = keypoint
            annotations.append(ann)
            bar.update()
    split = {name: [ids[i] for i in store.rows(column)] for column, name in reference_splits(store).items()}
    return {"split": split, "annotations": annotations}


def write_npy(store, folder: Path, features: Sequence[str], frames: int | None = None, pad: str = "zero",
              progress: bool = False) -> list[str]:
    """Write the MS-G3D-style arrays of every split into ``folder``; return the files written."""
    frames = frames or max(MIN_FRAMES, int(store.lengths.max()))
    rule = pair_rule(store.attrs)
    plans = {name: FeaturePlan.make(name, store.modalities) for name in features}
    sources = list(dict.fromkeys(src for plan in plans.values() for src in plan.sources))
    persons, joints = store.array("joint").shape[1:3]
    parts = {name: store.rows(column) for column, name in reference_splits(store).items()} or \
        {"all": store.rows()}
    folder.mkdir(parents=True)
    ids = np.asarray(store.index.column("sample_id").to_pylist(), dtype=object)
    labels = store.index.column("label").to_numpy()
    outputs, where, written = {}, [], []
    for name, rows in parts.items():
        protocol, _, part = name.rpartition("_")
        (folder / protocol).mkdir(exist_ok=True)
        for feature in features:
            file = folder / protocol / f"{part}_data_{feature}.npy"
            outputs[name, feature] = np.lib.format.open_memmap(
                file, mode="w+", dtype=np.float32, shape=(len(rows), rule.channels, frames, joints, persons))
            written.append(str(file.relative_to(folder)))
        with open(folder / protocol / f"{part}_label.pkl", "wb") as fh:
            pickle.dump((ids[rows].tolist(), labels[rows].tolist()), fh)
        written.append(str((folder / protocol / f"{part}_label.pkl").relative_to(folder)))
        position = np.full(len(store), -1)
        position[rows] = np.arange(len(rows))
        where.append((name, position))

    clip = np.empty((persons, frames, joints, rule.channels), np.float32)
    readers = [read_samples(store.array(src), store.offsets, range(len(store))) for src in sources]
    with _bar(len(store), "npy", progress) as bar:
        for i, samples in enumerate(zip(*readers)):
            arrays = dict(zip(sources, samples))
            inds = kernels.pad_indices(len(samples[0]), frames, pad)
            for feature, plan in plans.items():
                plan.clip(arrays, inds, rule, clip)
                for name, position in where:
                    if position[i] >= 0:
                        outputs[name, feature][position[i]] = clip.transpose(3, 1, 2, 0)  # (C, T, V, M)
            bar.update()
    for array in outputs.values():
        array.flush()
    return written

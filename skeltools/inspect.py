"""Human-readable summaries of stores."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np


def _disk_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def describe_store(path) -> str:
    """A multi-line description of the store at ``path`` (what ``skeltools info`` prints)."""
    from skeltools.store import SkeletonStore

    store = SkeletonStore.open(path)
    a = store.attrs
    lengths = store.lengths
    joint = store.meta("joint")
    persons = np.bincount(store.index.column("n_persons").to_numpy(), minlength=a["persons"] + 1)
    labels = store.index.column("label").to_numpy()
    lines = [
        f"store       {store.path}  ({_disk_bytes(store.path) / 1e6:.1f} MB on disk, schema {a['schema']})",
        f"dataset     {a['dataset']}  ({len(a['class_names'])} classes, {len(np.unique(labels[labels >= 0]))} present)",
        f"source      {a['source']}, converted {a['created']} by skeltools {a['skeltools_version']}",
        f"layout      {a['layout']}" + (f" (custom, {store.layout.num_joints} joints)" if "layout_definition" in a
                                        else "") + f", coords {a['coords']}, {a['persons']} person slots",
        f"preset      {a['preset']}: {a['preprocessing'].get('reference', '')}",
        f"samples     {len(store)}",
        f"frames      {int(lengths.sum())}  (per sample min {lengths.min()}, mean {lengths.mean():.1f}, "
        f"max {lengths.max()})",
        "persons     " + ", ".join(f"{k}: {n}" for k, n in enumerate(persons) if n),
        f"modalities  {', '.join(store.modalities)}"
        + ("" if len(store.modalities) > 1 else f"  (run `skeltools modalities {store.path}` for bones and motion)"),
        f"arrays      " + ", ".join(f"{m} {store.meta(m).shape}" for m in store.modalities)
        + f"  chunks {joint.chunks[0]} frames, shards {joint.shards[0] if joint.shards else '-'} frames",
    ]
    splits = store.split_columns
    if splits:
        lines.append("splits      " + ", ".join(f"{s} {len(store.rows(s))}" for s in splits))
    counts = store.report.get("counts")
    if counts:
        source = store.report.get("source")
        done = ", ".join(f"{counts[k]} {k}" for k in ("converted", "skipped", "failed") if counts.get(k) is not None)
        lines.append(f"{'created by' if source in ('subset', 'merge') else 'conversion'}  "
                     + (f"{source}: " if source in ("subset", "merge") else "") + f"{done} (report.json)")
    return "\n".join(lines)


def describe_path(path) -> str:
    """What ``skeltools info`` prints for ``path``: a store folder's description, or an AMASS npz's. Anything else
    raises ``StoreError`` saying what the path is not; no array holding Python objects is ever loaded."""
    from skeltools.store import StoreError

    path = Path(path)
    if path.is_dir():
        return describe_store(path)
    if not zipfile.is_zipfile(path):
        raise StoreError(f"{path}: not a skeltools store (a .zarr folder) nor an AMASS .npz (a zip of arrays)")
    try:
        with zipfile.ZipFile(path) as archive:
            objects = [name.removesuffix(".npy") for name in archive.namelist() if _holds_objects(archive, name)]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise StoreError(f"{path}: not a readable npz ({exc})") from None
    if objects:
        raise StoreError(f"{path}: not an AMASS .npz: array(s) {', '.join(objects)} hold Python objects, which "
                         f"skeltools never loads")
    return describe_amass(path)


def _holds_objects(archive: zipfile.ZipFile, name: str) -> bool:
    """Whether the .npy entry ``name`` declares an object dtype (read from its header alone)."""
    from skeltools.readers.generic import array_header

    with archive.open(name) as fh:
        return array_header(fh)[1].hasobject


def describe_amass(path) -> str:
    """Frames, frame rate, gender and keys of an AMASS (or joint-position) npz."""
    from skeltools.readers.babel import amass_metadata

    meta = amass_metadata(path)
    return "\n".join([
        f"{path}",
        f"frames      {meta.frames}",
        f"fps         {meta.fps if meta.fps is not None else 'unknown'}",
        f"gender      {meta.gender or 'unknown'}",
        f"joints      {'yes (joint_pos)' if meta.has_joints else 'no: SMPL-H parameters only (needs the licensed body model)'}",
        f"keys        {', '.join(meta.keys)}",
    ])

"""Human-readable summaries of stores."""
from __future__ import annotations

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
        lines.append(f"conversion  {counts.get('converted')} converted, {counts.get('skipped')} skipped, "
                     f"{counts.get('failed')} failed (report.json)")
    return "\n".join(lines)


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

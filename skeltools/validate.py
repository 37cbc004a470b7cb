"""Store integrity checks: schema, offsets, index, values, split parts, shard files and every chunk's checksum.

``validate_store(path)`` never raises for a damaged store; it returns every problem it finds, each naming the
array, shard, chunk or column concerned. The quick checks (``deep=False``) read metadata only: schema, offsets
and index against each other and against the digests recorded at publish, and every shard file recorded at
publish present with its size (a missing or emptied shard would read as zeros). The deep checks add a decode of
every chunk: chunks carry a crc32c checksum (the store's codec chain), so a flipped byte on disk is caught, and
every value must be finite. A store written before shards and digests were recorded passes the quick checks on
its metadata only; ``Report.warnings`` says so.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from schemas import store as schema


@dataclass
class Report:
    path: Path
    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # what could not be checked

    @property
    def ok(self) -> bool:
        return not self.problems

    def text(self) -> str:
        lines = [f"{self.path}: {'valid' if self.ok else f'{len(self.problems)} problem(s)'}"]
        lines += [f"  ok    {c}" for c in self.checked]
        lines += [f"  WARN  {w}" for w in self.warnings]
        lines += [f"  FAIL  {p}" for p in self.problems]
        return "\n".join(lines)


def _scan_array(name: str, array, chunk_frames: int, shard_frames: int, report: Report) -> None:
    """Decode every shard (and, where one fails, each of its chunks) and look for NaN/inf."""
    frames = array.shape[0]
    nonfinite = 0
    for start in range(0, frames, shard_frames):
        stop = min(start + shard_frames, frames)
        try:
            block = array[start:stop]
        except Exception:  # noqa: BLE001 - a damaged shard: find the chunks that fail
            _name_bad_chunks(name, array, start, stop, chunk_frames, report)
            continue
        nonfinite += int(np.count_nonzero(~np.isfinite(block)))
    if nonfinite:
        report.problems.append(f"array {name!r}: {nonfinite} NaN or infinite values")


def _name_bad_chunks(name: str, array, start: int, stop: int, chunk_frames: int, report: Report) -> None:
    shard = start // (array.shards[0] if array.shards else chunk_frames)
    bad = []
    for c0 in range(start, stop, chunk_frames):
        try:
            array[c0:min(c0 + chunk_frames, stop)]
        except Exception as exc:  # noqa: BLE001
            bad.append(f"chunk {c0 // chunk_frames} (frames {c0}:{min(c0 + chunk_frames, stop)}): "
                       f"{type(exc).__name__}: {exc}")
    if bad:
        report.problems += [f"array {name!r}, shard {shard}, {b}" for b in bad]
    else:
        report.problems.append(f"array {name!r}, shard {shard} (frames {start}:{stop}) cannot be read as a whole")


def validate_store(path, deep: bool = True) -> Report:
    """Check the store at ``path`` (``deep``: also decode every chunk); the report lists what passed and every
    problem found."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import zarr

    path = Path(path)
    report = Report(path)
    if not (path / "zarr.json").is_file():
        report.problems.append("not a skeltools store: no zarr.json (a store is the NAME.zarr folder that "
                               "`skeltools convert` writes)")
        return report
    try:
        group = zarr.open_group(str(path), mode="r")
    except Exception as exc:  # noqa: BLE001
        report.problems.append(f"not a zarr group: {type(exc).__name__}: {exc}")
        return report
    attrs = dict(group.attrs)
    arrays = {}
    for name in schema.ARRAYS:
        if name in group:
            try:
                arrays[name] = group[name]
            except Exception as exc:  # noqa: BLE001
                report.problems.append(f"array {name!r} cannot be opened: {type(exc).__name__}: {exc}")
    index = None
    if not (path / "index.parquet").is_file():
        report.problems.append("index.parquet is missing")
    else:
        try:
            index = pq.ParquetFile(path / "index.parquet").read()  # not read_table: it imports pyarrow.dataset
        except Exception as exc:  # noqa: BLE001
            report.problems.append(f"index.parquet cannot be read: {type(exc).__name__}: {exc}")
    rows = index.num_rows if index is not None else attrs.get("num_samples", 0)
    columns = {f.name: str(f.type) for f in index.schema} if index is not None else dict(schema.INDEX_COLUMNS)
    problems = schema.validate(attrs, {n: (tuple(a.shape), str(a.dtype)) for n, a in arrays.items()}, columns, rows)
    report.problems += problems
    if not problems:
        report.checked.append(f"schema {schema.SCHEMA_VERSION}: attrs, arrays {', '.join(arrays)}, index columns")

    offsets = None
    if "offsets" in arrays:
        try:
            offsets = arrays["offsets"][:]
        except Exception as exc:  # noqa: BLE001
            report.problems.append(f"array 'offsets' cannot be read: {type(exc).__name__}: {exc}")
    if offsets is not None and "joint" in arrays:
        frames = arrays["joint"].shape[0]
        if offsets.size == 0 or offsets[0] != 0 or offsets[-1] != frames:
            report.problems.append(f"offsets: must run from 0 to {frames} frames, run from "
                                   f"{offsets[0] if offsets.size else '-'} to {offsets[-1] if offsets.size else '-'}")
        elif (np.diff(offsets) < 0).any():
            first = int(np.flatnonzero(np.diff(offsets) < 0)[0])
            report.problems.append(f"offsets: decrease at sample {first} ({offsets[first]} -> {offsets[first + 1]})")
        elif index is not None and "length" in index.column_names and offsets.size == index.num_rows + 1:
            lengths = index.column("length").to_numpy()
            mismatch = np.flatnonzero(lengths != np.diff(offsets))
            if mismatch.size:
                report.problems.append(f"index: 'length' disagrees with offsets for {mismatch.size} samples "
                                       f"(first: row {mismatch[0]})")
            else:
                report.checked.append(f"offsets: {rows} samples, monotonic, consistent with lengths and {frames} frames")

    if index is not None:
        _check_index(index, attrs, report, pa)
    _check_digests(path, attrs, offsets, report)
    joint = arrays.get("joint")
    for name in schema.MODALITIES:
        if name in arrays:
            before = len(report.problems)
            _check_shard_files(path, name, arrays[name], report)
            if deep:
                chunk = arrays[name].chunks[0]
                shard = arrays[name].shards[0] if arrays[name].shards else chunk
                _scan_array(name, arrays[name], chunk, shard, report)
            if deep and len(report.problems) == before:
                report.checked.append(f"array {name!r}: every chunk decodes and passes its checksum, "
                                      f"all values finite")
    if joint is not None and not any(c.get("name") == "crc32c" for c in _codec_names(path / "joint")):
        report.problems.append("array 'joint' has no crc32c checksum codec: on-disk corruption cannot be detected")
    return report


def _check_digests(path: Path, attrs: dict, offsets, report: Report) -> None:
    """Offsets and ``index.parquet`` against the digests recorded at publish."""
    from skeltools.store import store_digests

    recorded = attrs.get(schema.INTEGRITY_ATTR)
    if not isinstance(recorded, dict):
        report.warnings.append("no digests of offsets and index.parquet (a store published before they were "
                               "recorded): edits to them are caught only where they break the checks above")
        return
    if offsets is None or not (path / "index.parquet").is_file():
        return  # already reported
    actual = store_digests(path, offsets)
    changed = [name for name in ("offsets", "index.parquet") if recorded.get(name) != actual[name]]
    report.problems += [f"{name}: sha256 {actual[name][:12]}... differs from the {str(recorded.get(name))[:12]}... "
                        f"recorded at publish (changed since)" for name in changed]
    if not changed:
        report.checked.append("offsets and index.parquet: sha256 digests as recorded at publish")


def _check_shard_files(path: Path, name: str, array, report: Report) -> None:
    """Every shard file recorded at publish is there with its size, and no other shard file is."""
    from skeltools.store import shard_files, shard_problems

    recorded = array.attrs.get(schema.SHARDS_ATTR)
    if not isinstance(recorded, dict):
        report.warnings.append(f"array {name!r}: no shard list (a store published before shards were recorded): "
                               f"a missing or emptied shard file reads as zeros, like a shard of all-zero frames")
        return
    problems = shard_problems(path, name, recorded)
    extra = [key for key in shard_files(path / name) if key not in recorded]
    problems += [f"array {name!r}, shard {key.split('/')[1]} ({name}/{key}) was not in the store when it was "
                 f"published" for key in extra]
    report.problems += problems
    if not problems:
        report.checked.append(f"array {name!r}: {len(recorded)} shard files, each with its size at publish")


def _codec_names(array_dir: Path) -> list[dict]:
    import json

    meta = json.loads((array_dir / "zarr.json").read_text())
    codecs = meta.get("codecs", [])
    inner = []
    for codec in codecs:
        inner += codec.get("configuration", {}).get("codecs", []) if codec.get("name") == "sharding_indexed" else [codec]
    return inner


def _check_index(index, attrs: dict, report: Report, pa) -> None:
    ids = index.column("sample_id").to_pylist() if "sample_id" in index.column_names else []
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        report.problems.append(f"index: sample_id values are not unique (e.g. {dup!r})")
    if "label" in index.column_names:
        labels = index.column("label").to_numpy()
        classes = len(attrs.get("class_names", []))
        bad = np.flatnonzero((labels < -1) | (labels >= classes))
        if bad.size:
            report.problems.append(f"index: {bad.size} labels outside -1..{classes - 1} (first: row {bad[0]}, "
                                   f"label {labels[bad[0]]})")
        else:
            report.checked.append(f"labels: within -1..{classes - 1}")
    parts: dict[str, list[str]] = {}
    for f in index.schema:
        if f.type == pa.bool_() and "_" in f.name:
            protocol, _, part = f.name.rpartition("_")
            parts.setdefault(protocol, []).append(f.name)
    for protocol, names in parts.items():
        masks = [index.column(n).to_numpy(zero_copy_only=False) for n in names]
        overlap = np.sum(masks, axis=0) > 1
        if overlap.any():
            report.problems.append(f"split {protocol}: parts {', '.join(names)} overlap in {int(overlap.sum())} samples")
        else:
            report.checked.append(f"split {protocol}: parts {', '.join(names)} are disjoint")

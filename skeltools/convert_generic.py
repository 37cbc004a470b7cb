"""Your own keypoint files + a label file -> store, on the pipeline of ``skeltools.convert``.

Inputs: one sample per ``.npy`` / ``.npz`` / ``.csv`` file (``readers.generic``), sample id = the file stem, any
layout (built-in name or a layout file). Stored as read (no normalization): axes reordered to ``(T, M, V, C)``,
persons zero-filled to M (``max_persons``, or the most persons in any file up to ``DEFAULT_MAX_PERSONS``; a file
with more keeps the M persons present in the most frames, and is named), body-frames with NaN/inf zeroed and
counted. Array shapes are checked against the declared axes (``axes_problems``).

Label file: CSV with the header ``sample_id,label[,split column...]``, or JSON ``{sample_id: label}`` /
``{sample_id: {"label": label, <split column>: value}}``. Labels are 0-based class numbers when every label is an
integer (class names "0".."K-1"), else class names (sorted). A class-names file (one per line) fixes the names and
their order; labels may then be names or numbers. Split columns: ``{protocol}_{train|val|test}`` takes
1/0/true/false/yes/no (empty: 0); any other column is a protocol whose values are train/val/test (empty: in none).
Without split columns (or with ``split_ratio``), a seeded split stratified per class gives ``generic_train`` /
``generic_test``; it is drawn over the samples that convert, so a file that fails moves no other sample.
"""
from __future__ import annotations

import csv
import json
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence

import numpy as np

from schemas import store as schema
from schemas.datasets import GENERIC_PROTOCOL, PARTS, DatasetDef, generic_dataset
from schemas.layouts import Layout, layout_attrs, layout_from_attrs, resolve_layout
from skeltools.convert import (ConversionError, FileResult, build_index, file_row, find_skeleton_files,
                               run_conversion, zero_nonfinite_bodies)
from skeltools.readers.generic import AXES, SUFFIXES, GenericInputError, keypoint_shape, read_keypoints
from skeltools.store import SkeletonStore

_PART_COLUMN = re.compile(r"^(?P<protocol>.+)_(?P<part>train|val|test)$")
DEFAULT_MAX_PERSONS = 16  # person slots at most when --max-persons is not given
_TRUE, _FALSE = {"1", "true", "yes", "y", "t"}, {"0", "false", "no", "n", "f", ""}


@dataclass(frozen=True)
class LabelRow:
    where: str  # "line 3" (CSV) or "key 'clip7'" (JSON), for messages
    sample_id: str
    label: str  # "" when unlabelled
    splits: dict[str, str] = field(default_factory=dict)  # split column -> value, as written


def read_label_table(path) -> list[LabelRow]:
    """The rows of a label file (module docstring); a malformed file raises ConversionError naming the place."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's byte-order mark is not part of the header
    except (OSError, UnicodeDecodeError) as exc:
        raise ConversionError(f"{path}: cannot read the label file ({exc})") from None
    if path.suffix.lower() == ".json":
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise ConversionError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(doc, dict):
            raise ConversionError(f"{path}: expected a JSON object of sample_id -> label")
        rows = []
        for sid, entry in doc.items():
            where = f"key {sid!r}"
            entry = dict(entry) if isinstance(entry, dict) else {"label": entry}
            if "label" not in entry:
                raise ConversionError(f"{path}: {where}: no \"label\"")
            values = {k: "" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
                      for k, v in entry.items()}
            rows.append(LabelRow(where, sid, values.pop("label").strip(), values))
        return rows
    lines = list(csv.reader(text.splitlines()))
    header = [h.strip() for h in lines[0]] if lines else []
    if [h.lower() for h in header[:2]] != ["sample_id", "label"]:
        raise ConversionError(f"{path}: line 1: expected the header sample_id,label[,split column...], got "
                              f"{','.join(header) or 'nothing'}")
    if len(set(header)) != len(header) or "" in header:
        raise ConversionError(f"{path}: line 1: column names must be unique and non-empty")
    rows = []
    for n, row in enumerate(lines[1:], start=2):
        if not "".join(row).strip():
            continue
        if len(row) != len(header):
            raise ConversionError(f"{path}: line {n}: {len(row)} values, the header has {len(header)}")
        rows.append(LabelRow(f"line {n}", row[0].strip(), row[1].strip(),
                             {h: v.strip() for h, v in zip(header[2:], row[2:])}))
    return rows


def class_labels(labels: Sequence[str], class_names: Sequence[str] | None = None,
                 where: str = "labels") -> tuple[tuple[str, ...], dict[str, int]]:
    """(class names, label text -> 0-based class) for the non-empty ``labels``: numbers when all are integers,
    else names (sorted); with ``class_names`` given, names from it or numbers into it."""
    present = sorted({label for label in labels if label})
    numeric = all(re.fullmatch(r"\d+", label) for label in present)
    if class_names is not None:
        names = tuple(class_names)
        index = {name: i for i, name in enumerate(names)}
        mapping = {}
        for label in present:
            if label in index:
                mapping[label] = index[label]
            elif label.isdigit() and int(label) < len(names):
                mapping[label] = int(label)
            else:
                raise ConversionError(f"{where}: label {label!r} is neither one of the {len(names)} class names "
                                      f"nor a number below {len(names)}")
        return names, mapping
    if not present:
        raise ConversionError(f"{where}: no labels")
    if numeric:
        top = max(int(label) for label in present)
        return tuple(str(i) for i in range(top + 1)), {label: int(label) for label in present}
    return tuple(present), {label: i for i, label in enumerate(present)}


def split_parts(rows: Sequence[LabelRow], where: str = "labels") -> tuple[dict[str, tuple[str, ...]],
                                                                            dict[str, dict[str, str]]]:
    """The split columns of the label rows -> (protocol -> its parts, sample id -> {protocol: part})."""
    columns = list(rows[0].splits) if rows else []
    protocols: dict[str, list[str]] = defaultdict(list)
    for column in columns:
        m = _PART_COLUMN.match(column)
        protocol, part = (m["protocol"], m["part"]) if m else (column, None)
        if protocol in protocols and (part is None or None in protocols[protocol]):
            raise ConversionError(f"{where}: column {column!r} gives protocol {protocol!r} a second time")
        protocols[protocol].append(part)
    parts: dict[str, dict[str, str]] = {}
    seen_parts: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        mine = parts.setdefault(row.sample_id, {})
        for column, value in row.splits.items():
            m, value = _PART_COLUMN.match(column), value.strip().lower()
            if m:
                if value not in _TRUE | _FALSE:
                    raise ConversionError(f"{where}: {row.where}: column {column!r} takes 1/0/true/false/yes/no, "
                                          f"got {value!r}")
                if value in _TRUE:
                    if m["protocol"] in mine:
                        raise ConversionError(f"{where}: {row.where}: sample {row.sample_id!r} is in both "
                                              f"{m['protocol']}_{mine[m['protocol']]} and {column}")
                    mine[m["protocol"]] = m["part"]
            elif value:
                if value not in PARTS:
                    raise ConversionError(f"{where}: {row.where}: column {column!r} takes "
                                          f"{'/'.join(PARTS)} (or empty), got {value!r}")
                mine[column] = value
                seen_parts[column].add(value)
    protocol_parts = {}
    for protocol, declared in protocols.items():
        named = set(declared) if declared != [None] else {"train", "test"} | seen_parts[protocol]
        protocol_parts[protocol] = tuple(p for p in PARTS if p in named)
    return protocol_parts, parts


def check_ratio(ratio: float) -> None:
    if not 0 < ratio < 1:
        raise ConversionError(f"--split-ratio must be between 0 and 1, got {ratio}")


def random_split(labels: Mapping[str, int], ratio: float, seed: int) -> dict[str, str]:
    """Sample id -> "train" | "test": per class, a seeded ``ratio`` of the samples (rounded; at least one of each
    part when the class has two or more) go to train. Depends only on the (id, label) pairs and the seed."""
    check_ratio(ratio)
    rng = np.random.default_rng(seed)
    by_class: dict[int, list[str]] = defaultdict(list)
    for sid in sorted(labels):
        by_class[labels[sid]].append(sid)
    out = {}
    for label in sorted(by_class):
        ids = by_class[label]
        n_train = min(max(round(ratio * len(ids)), 1), max(len(ids) - 1, 1))
        order = rng.permutation(len(ids))
        out |= {ids[i]: "train" if k < n_train else "test" for k, i in enumerate(order)}
    return out


@dataclass(frozen=True)
class GenericDataset(DatasetDef):
    """A generic conversion's dataset, with each sample's label and split parts (``{"label", "parts"}``)."""

    samples: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class GenericOptions:
    source: ClassVar[str] = "generic"
    layout: dict = field(default_factory=dict)  # Layout.to_dict(): plain values, for workers and the manifest
    axes: str = "TMVC"
    coords: str = "xyz"
    max_persons: int = 1
    npz_key: str | None = None
    labels: str = ""
    split: str = ""  # how the split columns were made, in words
    random_split: tuple[float, int] | None = None  # (ratio, seed) of the seeded ``generic`` split, drawn at index time

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        return (self.max_persons, len(self.layout["joints"]), schema.COORDS[self.coords])

    @classmethod
    def from_attrs(cls, attrs) -> "GenericOptions":
        """The options that read the files of a store with these attrs (the inverse of ``store_attrs``)."""
        info = attrs["preprocessing"]
        return cls(layout=layout_from_attrs(attrs).to_dict(), axes=info["axes"], coords=attrs["coords"],
                   max_persons=attrs["persons"], npz_key=info.get("npz_key"))

    def process(self, path: str) -> tuple[FileResult, np.ndarray | None]:
        return process_generic_file(path, self)

    def report_fields(self) -> dict[str, Any]:
        return {"layout": self.layout["name"], "axes": self.axes, "coords": self.coords, "labels": self.labels,
                "split": self.split}

    def store_attrs(self, spec) -> dict[str, Any]:
        return {**layout_attrs(Layout.from_dict(self.layout)), "coords": self.coords, "persons": self.max_persons,
                "preset": "none",
                "preprocessing": {"reference": "stored as read", "axes": self.axes, "npz_key": self.npz_key,
                                  "split": self.split,
                                  "steps": [f"{self.axes} arrays reordered to (T, M, V, C)",
                                            f"persons zero-filled to {self.max_persons} slots (a file with more "
                                            "keeps those present in the most frames)",
                                            "body-frames with NaN/inf stored as zeros"]}}

    def index(self, ok: list[FileResult], spec: GenericDataset):
        rows = [file_row(r, spec.samples[r.sample_id]) for r in ok]
        if self.random_split is not None:  # over the converted samples only
            sides = random_split({row["sample_id"]: row["label"] for row in rows}, *self.random_split)
            rows = [row | {"parts": row["parts"] | {GENERIC_PROTOCOL: sides[row["sample_id"]]}} for row in rows]
        return build_index(rows, spec, "generic")


def keep_persons(data: np.ndarray, max_persons: int) -> np.ndarray:
    """``(T, M, V, C)`` -> ``(T, max_persons, V, C)``: the persons present (non-zero) in the most frames, in their
    original order (ties: the earlier slot), then zero slots."""
    t, m, v, c = data.shape
    if m > max_persons:
        present = (data != 0).any(axis=(2, 3)).sum(axis=0)
        data = data[:, np.sort(np.argsort(-present, kind="stable")[:max_persons])]
    out = np.zeros((t, max_persons, v, c), np.float32)
    out[:, :data.shape[1]] = data
    return out


def process_generic_file(path: str, options: GenericOptions) -> tuple[FileResult, np.ndarray | None]:
    """Read one keypoint file into ``(T, M, V, C)`` float32; bad input is reported, never raised."""
    sample_id = Path(path).stem
    try:
        data = read_keypoints(path, options.axes, npz_key=options.npz_key, joint_names=options.layout["joints"],
                              channels=schema.COORDS[options.coords])
    except GenericInputError as exc:
        return FileResult(path, sample_id, "failed", reason=str(exc)), None
    nonfinite = zero_nonfinite_bodies(data)
    persons = int((data != 0).any(axis=(0, 2, 3)).sum())
    if persons == 0:
        return FileResult(path, sample_id, "skipped", reason="no person in any frame (all zero)",
                          nonfinite_body_frames=nonfinite), None
    notes = [f"{data.shape[1]} persons, kept {options.max_persons}"] if data.shape[1] > options.max_persons else []
    data = keep_persons(data, options.max_persons)
    return FileResult(path, sample_id, "ok", length=len(data), n_persons=min(persons, options.max_persons),
                      notes=notes, nonfinite_body_frames=nonfinite), data


def _select(inputs: Sequence, labels_path: Path, layout: Layout, axes: str | None, coords: str,
            npz_key: str | None, class_names: Sequence[str] | None, split_ratio: float | None, seed: int,
            max_persons: int | None, dataset: str, log: Callable[[str], None] = lambda _: None):
    """-> (files to process, results for the others, dataset, options)."""
    ignore = {os.path.realpath(labels_path)}  # realpath, not resolve: a symlink loop is a file that fails later
    files = [p for p in find_skeleton_files(inputs, tuple(f"*{s}" for s in SUFFIXES))
             if p.suffix.lower() in SUFFIXES and os.path.realpath(p) not in ignore]
    if axes is None and any(p.suffix.lower() != ".csv" for p in files):
        raise ConversionError(f"give --axes ({', '.join(AXES)}): the array files do not say their axis order")
    rows = read_label_table(labels_path)
    by_label_id: dict[str, LabelRow] = {}
    for row in rows:
        if row.sample_id in by_label_id:
            raise ConversionError(f"{labels_path}: {row.where}: sample {row.sample_id!r} is listed twice "
                                  f"(also {by_label_id[row.sample_id].where})")
        by_label_id[row.sample_id] = row
    names, mapping = class_labels([r.label for r in rows], class_names, str(labels_path))
    protocol_parts, parts = split_parts(rows, str(labels_path))

    by_id: dict[str, Path] = {}
    results: list[FileResult] = []
    for path in sorted(files, key=lambda p: (p.stem, str(p))):
        row = by_label_id.get(path.stem)
        if path.stem in by_id:
            results.append(FileResult(str(path), path.stem, "skipped", reason=f"duplicate of {by_id[path.stem]}"))
        elif row is None or not row.label:
            results.append(FileResult(str(path), path.stem, "failed",
                                      reason=f"{path}: no label for sample {path.stem!r} in {labels_path}"))
        else:
            by_id[path.stem] = path
    if not by_id and not results:
        raise ConversionError(f"no {'/'.join(SUFFIXES)} keypoint files in {', '.join(map(str, inputs))}")

    labels = {sid: mapping[by_label_id[sid].label] for sid in by_id}
    split = f"split columns of {labels_path}: {', '.join(protocol_parts)}" if protocol_parts else ""
    seeded = None
    if split_ratio is not None or not protocol_parts:
        if GENERIC_PROTOCOL in protocol_parts:
            raise ConversionError(f"{labels_path}: a split column already defines protocol {GENERIC_PROTOCOL!r}; "
                                  "drop --split-ratio or rename the column")
        ratio = 0.8 if split_ratio is None else split_ratio
        check_ratio(ratio)  # now, not after the conversion
        seeded = (ratio, seed)
        protocol_parts[GENERIC_PROTOCOL] = ("train", "test")
        split = "; ".join(filter(None, [split, f"generic: seeded random split over the converted samples, {ratio:g} "
                                                f"of each class to train (seed {seed})"]))

    shapes: dict[str, tuple[int, int, int, int]] = {}  # headers only for .npy/.npz; a CSV is read for its M
    for sid, path in list(by_id.items()):
        if max_persons is None or path.suffix.lower() != ".csv":
            try:
                shapes[sid] = keypoint_shape(path, axes or "TMVC", npz_key=npz_key, joint_names=layout.joint_names)
            except GenericInputError as exc:
                results.append(FileResult(str(path), sid, "failed", reason=str(exc)))
                del by_id[sid]
    cap = max_persons or DEFAULT_MAX_PERSONS
    arrays = {str(by_id[sid]): shape for sid, shape in shapes.items() if by_id[sid].suffix.lower() != ".csv"}
    problems, fatal = axes_problems(arrays, axes or "TMVC", cap)
    if fatal:
        raise ConversionError(fatal)
    for problem in problems:
        log(f"warning: {problem}")
    if max_persons is None:  # M: the most persons in any file, up to the default cap
        most = max([1, *(shape[1] for shape in shapes.values())])
        max_persons = min(most, DEFAULT_MAX_PERSONS)
        if most > max_persons:
            crowded = [str(by_id[sid]) for sid, shape in shapes.items() if shape[1] > max_persons]
            log(f"warning: {len(crowded)} file(s) have more than {max_persons} persons (first: {crowded[0]}, "
                f"{most} at most); {max_persons} kept per sample (the most present), give --max-persons for more")
    spec = GenericDataset(**vars(generic_dataset(names, protocol_parts, layout=layout.name, name=dataset)),
                          samples={sid: {"label": labels[sid], "parts": parts.get(sid, {})} for sid in by_id})
    options = GenericOptions(layout=layout.to_dict(), axes=axes or "TMVC", coords=coords, max_persons=max_persons,
                             npz_key=npz_key, labels=str(labels_path), split=split, random_split=seeded)
    return list(by_id.values()), results, spec, options


def axes_problems(shapes: Mapping[str, tuple[int, int, int, int]], axes: str,
                  max_persons: int) -> tuple[list[str], str]:
    """Signs that the declared ``axes`` misread the arrays: file -> ``(T, M, V, C)`` as read with them.

    A file with more persons than frames and than ``max_persons`` (TMVC read as MTVC gives 109 persons of 2
    frames), or a corpus whose every file has 1-2 frames, likely has T and M swapped. Returns (one warning per
    suspicious file, a fatal message when every file is suspicious, or "")."""
    other = {"TMVC": "MTVC", "MTVC": "TMVC"}.get(axes)
    if other is None or not shapes:
        return [], ""
    swapped = {f: s for f, s in shapes.items() if s[1] > s[0] and s[1] > max_persons}
    warnings = [f"{f}: {s[1]} persons and {s[0]} frames with --axes {axes} (more than --max-persons {max_persons}): "
                f"likely --axes {other}" for f, s in swapped.items()]
    short = all(s[0] <= 2 for s in shapes.values())
    if len(swapped) == len(shapes) or (short and len(shapes) > 1 and any(s[1] > 2 for s in shapes.values())):
        first, shape = next(iter(swapped.items())) if swapped else next(iter(shapes.items()))
        return warnings, (f"the arrays do not look like --axes {axes}: {first} reads as {shape[0]} frame(s) of "
                          f"{shape[1]} persons (T, M, V, C = {shape})"
                          + (f", and all {len(shapes)} files have at most 2 frames" if short else "")
                          + f"; likely --axes {other}")
    return warnings, ""


def convert_generic(inputs: Sequence, output, *, layout, labels, axes: str | None = None, coords: str = "xyz",
                    npz_key: str | None = None, class_names: Sequence[str] | None = None,
                    split_ratio: float | None = None, seed: int = 0, max_persons: int | None = None,
                    dataset: str = "generic", log: Callable[[str], None] = lambda _: None,
                    **run) -> dict[str, Any]:
    """Convert per-sample keypoint files with a label file into a store at ``output``; return the report.

    ``layout``: a built-in name, a .toml/.json layout file, a mapping or a Layout. ``axes``: the arrays' axis
    order (``TVC``, ``TMVC``, ``MTVC``; not needed for CSV). ``split_ratio``: add the seeded ``generic`` split
    (default 0.8 when the label file has no split columns). ``run``: the fields of ``convert.RunOptions``; when
    appending, ``max_persons`` defaults to the store's.
    """
    if axes is not None and axes not in AXES:
        raise ConversionError(f"unknown axes {axes!r}; choose from {', '.join(AXES)}")
    if coords not in schema.COORDS:
        raise ConversionError(f"unknown coords {coords!r}; choose from {', '.join(schema.COORDS)}")
    if max_persons is not None and max_persons < 1:
        raise ConversionError(f"--max-persons must be at least 1, got {max_persons}")
    resolved = resolve_layout(layout)
    if run.get("append") and max_persons is None and Path(output).exists():
        max_persons = SkeletonStore.open(output).attrs["persons"]

    def select(workers: int):
        todo, results, spec, options = _select(inputs, Path(labels), resolved, axes, coords, npz_key, class_names,
                                               split_ratio, seed, max_persons, dataset, log)
        log(f"{len(todo)} files to convert with layout {resolved.name} ({resolved.num_joints} joints, {coords}, "
            f"{options.max_persons} person slots) on {workers} worker(s)")
        return todo, results, spec, options, frozenset()

    return run_conversion(select, inputs, output, log=log, **run)

"""pyskl / mmaction2 skeleton annotation pickles -> store, on the pipeline of ``skeltools.convert``.

Inputs: pickle files, or folders searched for ``*.pkl``: ``{"split", "annotations"}`` (pyskl), a plain list of
annotations (mmaction2 0.x), or one annotation per file. Every annotation is one sample (``frame_dir`` is its id),
in file order; its ``keypoint (M, T, V, C)`` is stored as ``(T, M, V, C)`` float32 (float16 converts exactly), the
first ``max_persons`` slots kept, zero-padded (pyskl ``FormatGCNInput``). Kinetics-400's table of contents points
into kpfiles (``raw_file``): each kpfile is one work item, read once, its videos decompressed as pyskl does.

Layout and coords from the first annotation: C = 3 without ``keypoint_score`` is 3D (``xyz``; V = 25: ``ntu25``);
C = 2 is 2D, with ``keypoint_score`` as a third channel (``xyc``; V = 17: ``coco17``, V = 18: ``coco18``); other
joint counts need ``layout``. Labels are the annotations' ``label``; class names come from ``dataset`` (NTU names
pick ntu60/ntu120 by themselves) or are the numbers "0".."K-1".

Split names -> index columns ``{protocol}_{part}``: ``xsub_train`` stays; a ``val`` part becomes ``test`` when
its protocol has no ``test`` part (``xsub_val`` -> ``xsub_test``: the inverse of ``skeltools export``); UCF101 /
HMDB51's ``train1`` / ``test1`` -> ``split1_train`` / ``split1_test``; bare ``train`` / ``val`` / ``test`` ->
protocol ``split``. Samples in no split are kept (every split column false).

Memory: the parent unpickles each file once (its arrays: about the file's size) and hands annotations to the
workers; the converted frames go to spill files on disk, never all in memory at once.
"""
from __future__ import annotations

import pickle
import re
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence

import numpy as np

from schemas import store as schema
from schemas.datasets import generic_dataset, get_dataset, parse_ntu_name
from schemas.layouts import Layout, get_layout, layout_attrs, resolve_layout
from skeltools.convert import (ConversionError, FileResult, RunOptions, Target, _process_and_write, build_index,
                               check_output, conversion_executor, detect_dataset, input_fields, walk_files)
from skeltools.readers.pyskl import (PysklError, annotation_frames, annotation_label, annotation_list,
                                     decompress_skeletons, frame_dir, image_shape, load_pickle,
                                     prenormalize_2d, stream_pickle)
from skeltools.readers.smallfiles import file_stats, stats_digest

PATTERNS = ("*.pkl", "*.pickle")
NORMALIZATIONS = ("none", "pyskl")
_PARTS = ("train", "val", "test")
_PROTOCOL_PART = re.compile(r"^(?P<protocol>.+)_(?P<part>train|val|test)$")
_NUMBERED_PART = re.compile(r"^(?P<part>train|val|test)(?P<n>\d+)$")
DEFAULT_LAYOUTS = {("xyz", 25): "ntu25", ("xyc", 17): "coco17", ("xyc", 18): "coco18", ("xy", 17): "coco17",
                   ("xy", 18): "coco18"}


@dataclass(frozen=True)
class AnnotationItem:
    """One annotation of a pickle: handed to a worker with its arrays, or staged in a chunk file."""

    key: str  # "FILE[i]": the pickle and the annotation's position in it
    files: tuple[str, ...]  # the pickle, for resume digests
    inputs: str  # the pickle's stats digest, taken before it was read
    sample_id: str
    annotation: Any = None
    chunk: str = ""  # a streamed pickle's annotation: the stage file holding it ...
    position: int = 0  # ... and its place there

    def load(self):
        """The annotation (a staged one is read with its chunk, which stays cached for the next items)."""
        if not self.chunk:
            return self.annotation
        global _chunk_cache
        if _chunk_cache[0] != self.chunk:
            _chunk_cache = (self.chunk, load_pickle(self.chunk))
        return _chunk_cache[1][self.position]


_chunk_cache: tuple[str, list] = ("", [])  # the last stage file a worker read


@dataclass(frozen=True)
class KpfileItem:
    """The videos of one Kinetics-400 kpfile: their table-of-contents entries (no keypoints)."""

    key: str
    files: tuple[str, ...]  # the kpfile
    videos: tuple[dict, ...]  # {"sample_id", "label", "frame_inds", "box_score", "img_shape"}


@dataclass(frozen=True)
class PysklOptions:
    source: ClassVar[str] = "pyskl"
    stats_own_reads: ClassVar[bool] = True  # results carry their own input digests (see convert.process_group)
    layout: dict  # Layout.to_dict(): plain values, for workers and the manifest
    coords: str = "xyz"
    max_persons: int = 2
    num_classes: int = 0  # labels must be below it
    normalize: str = "none"  # none | pyskl (PreNormalize2D, 2D only)
    box_thr: float | None = None  # kpfiles: skeletons with a lower box score are dropped

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        return (self.max_persons, len(self.layout["joints"]), schema.COORDS[self.coords])

    def process(self, item) -> tuple[FileResult, np.ndarray | None]:
        if isinstance(item, KpfileItem):
            return process_kpfile(item, self)
        return process_annotation(item, self)

    def preprocessing(self) -> dict[str, Any]:
        steps = ["keypoint (M, T, V, C) stored as (T, M, V, C) float32"
                 + (" with keypoint_score as the third channel" if self.coords == "xyc" else ""),
                 f"the first {self.max_persons} person slots kept, zero-padded (pyskl FormatGCNInput)"]
        if self.normalize == "pyskl":
            steps.append("pyskl PreNormalize2D: x, y from img_shape (default 1080x1920) to [-1, 1], zeroed where the "
                         "score is <= 0.01")
        if self.box_thr is not None:
            steps.append(f"kpfiles: skeletons with box_score < {self.box_thr} dropped")
        return {"reference": "pyskl annotation pickle", "normalize": self.normalize, "box_thr": self.box_thr,
                "steps": steps}


def _label_ok(label: int, options: PysklOptions) -> int:
    """``label``, or PysklError when it is not one of the store's classes."""
    if options.num_classes and label >= options.num_classes:
        raise PysklError(f"label {label} is not below the {options.num_classes} classes")
    return label


def _person_count(frames: np.ndarray) -> int:
    return int((frames != 0).any(axis=(0, 2, 3)).sum())


def process_annotation(item: AnnotationItem, options: PysklOptions) -> tuple[FileResult, np.ndarray | None]:
    """One annotation -> ``(T, M, V, C)`` float32; bad input is reported, never raised."""
    try:
        ann = item.load()
    except PysklError as exc:
        return FileResult(item.key, item.sample_id, "failed", reason=str(exc), inputs=item.inputs), None
    nbytes = sum(a.nbytes for a in (ann.get("keypoint"), ann.get("keypoint_score")) if isinstance(a, np.ndarray)) \
        if isinstance(ann, Mapping) else 0
    fields = {"inputs": item.inputs, "input_bytes": nbytes}
    try:
        label = _label_ok(annotation_label(ann), options) if isinstance(ann, Mapping) else -1
        frames, slots = annotation_frames(ann, options.coords, len(options.layout["joints"]), options.max_persons)
    except PysklError as exc:
        return FileResult(item.key, item.sample_id, "failed", reason=f"{item.key} ({item.sample_id}): {exc}",
                          **fields), None
    if len(frames) == 0 or slots == 0:
        return FileResult(item.key, item.sample_id, "skipped", reason="no frames or no person slots",
                          **fields), None
    notes = [f"{slots} person slots, kept the first {options.max_persons}"] if slots > options.max_persons else []
    if options.normalize == "pyskl":
        prenormalize_2d(frames, image_shape(ann))
    return FileResult(item.key, item.sample_id, "ok", length=len(frames), n_persons=_person_count(frames),
                      notes=notes, label=label, **fields), frames


def process_kpfile(item: KpfileItem, options: PysklOptions) -> tuple[FileResult, np.ndarray | None]:
    """The videos of one kpfile (read once) -> their frames back to back, one index row each; a video that fails
    is named in the result's notes, the others convert."""
    fields = input_fields(file_stats(item.files))
    name = Path(item.key).stem
    try:
        doc = load_pickle(item.key)
        if not isinstance(doc, Mapping):
            raise PysklError(f"{item.key}: a kpfile is a dict of frame_dir -> {{'keypoint': (N, V, 3)}}, "
                             f"got a {type(doc).__name__}")
    except (PysklError, OSError) as exc:
        return FileResult(item.key, name, "failed", reason=str(exc), **fields), None
    samples, blocks, notes = [], [], []
    for video in item.videos:
        sid = video["sample_id"]
        try:
            entry = doc.get(sid)
            keypoint = entry.get("keypoint") if isinstance(entry, Mapping) else None
            if not isinstance(keypoint, np.ndarray):
                raise PysklError("no 'keypoint' for it in the kpfile")
            _label_ok(video["label"], options)
            frame_inds = video["frame_inds"]
            if options.box_thr is not None:
                keep = np.asarray(video["box_score"]) >= options.box_thr
                keypoint, frame_inds = keypoint[keep], np.asarray(frame_inds)[keep]
            frames = decompress_skeletons(keypoint, frame_inds, options.max_persons)
        except (PysklError, IndexError, TypeError, ValueError) as exc:
            notes.append(f"{sid}: failed: {exc}")
            continue
        if options.normalize == "pyskl":
            prenormalize_2d(frames, video["img_shape"])
        samples.append({"sample_id": sid, "label": video["label"], "length": len(frames),
                        "n_persons": _person_count(frames)})
        blocks.append(frames)
    if not samples:
        return FileResult(item.key, name, "failed", reason=f"{item.key}: no video converted ({'; '.join(notes[:3])})",
                          notes=notes, **fields), None
    data = np.concatenate(blocks)
    return FileResult(item.key, name, "ok", length=len(data), n_persons=max(s["n_persons"] for s in samples),
                      notes=notes, samples=samples, **fields), data


# ----------------------------------------------------------------------------------------------------------------
# Splits


def split_column(name: str, names: Sequence[str]) -> tuple[str, str]:
    """A pyskl split name -> (protocol, part) of our ``{protocol}_{part}`` columns (module doc); ``names``: all the
    file's split names (a ``val`` part is ``test`` unless the protocol also has a ``test`` part)."""
    if name in _PARTS:
        protocol, part, test = "split", name, "test"
    elif m := _NUMBERED_PART.match(name):
        protocol, part, test = f"split{m['n']}", m["part"], f"test{m['n']}"
    elif m := _PROTOCOL_PART.match(name):
        protocol, part, test = m["protocol"], m["part"], f"{m['protocol']}_test"
    else:
        raise ConversionError(f"split {name!r}: expected a name like xsub_train / xsub_val, train1 / test1, or "
                              "train / val / test")
    return protocol, "test" if part == "val" and test not in names else part


def split_parts(splits: Mapping[str, Sequence], where: str) -> tuple[dict[str, tuple[str, ...]], dict[str, dict],
                                                                     dict[str, str]]:
    """-> (protocol -> its parts, sample id -> {protocol: part}, pyskl split name -> column)."""
    protocols: dict[str, set[str]] = defaultdict(set)
    parts: dict[str, dict[str, str]] = defaultdict(dict)
    columns = {}
    for name, members in splits.items():
        protocol, part = split_column(str(name), [str(n) for n in splits])
        if part in protocols[protocol]:
            raise ConversionError(f"{where}: splits {name!r} and another both give column {protocol}_{part}")
        protocols[protocol].add(part)
        columns[str(name)] = f"{protocol}_{part}"
        for sid in members:
            other = parts[str(sid)].setdefault(protocol, part)
            if other != part:
                raise ConversionError(f"{where}: {sid} is in both {protocol}_{other} and {protocol}_{part}")
    return {p: tuple(x for x in _PARTS if x in found) for p, found in protocols.items()}, dict(parts), columns


# ----------------------------------------------------------------------------------------------------------------
# Inputs


STREAM_BYTES = 256 << 20  # pickles larger than this are streamed (see ``convert_pyskl``)
CHUNK_ANNOTATIONS = 64  # annotations per stage file, as many as a work group holds


@dataclass
class _Inputs:
    """What the parent read from the pickles: work items, results of what will not be processed, and metadata."""

    stage: Path  # where streamed annotations are staged
    items: list = field(default_factory=list)
    results: list[FileResult] = field(default_factory=list)
    splits: dict[str, list] = field(default_factory=lambda: defaultdict(list))
    labels: list[int] = field(default_factory=list)
    first: tuple | None = None  # (keypoint shape, has keypoint_score) of the first annotation with keypoints
    kpfile_videos: dict[str, list[dict]] = field(default_factory=lambda: defaultdict(list))
    seen: dict[str, str] = field(default_factory=dict)
    chunk: list = field(default_factory=list)  # annotations waiting to be staged, with their items
    chunks: int = 0
    digests: frozenset[str] = frozenset()  # "path digest" of every pickle read (labels and splits depend on them)

    def add(self, ann, path: Path, position: int, digest: str, kpfiles: Path | None, stream: bool) -> None:
        """Sort one annotation: a work item (staged when ``stream``), a kpfile's video, or a reported result."""
        sid, key = frame_dir(ann, position), f"{path}[{position}]"
        if sid in self.seen:
            self.results.append(FileResult(key, sid, "skipped", reason=f"duplicate of {self.seen[sid]}", inputs=digest))
            return
        self.seen[sid] = key
        if isinstance(ann, Mapping) and isinstance(ann.get("label"), (int, np.integer)):
            self.labels.append(int(ann["label"]))
        if isinstance(ann, Mapping) and "raw_file" in ann and "keypoint" not in ann:
            try:
                video = _toc_entry(ann, sid)
            except PysklError as exc:
                self.results.append(FileResult(key, sid, "failed", reason=f"{key} ({sid}): {exc}", inputs=digest))
                return
            kpfile = Path(str(ann["raw_file"]))
            kpfile = kpfiles / kpfile.name if kpfiles else kpfile if kpfile.is_absolute() else path.parent / kpfile
            self.kpfile_videos[str(kpfile)].append(video)
            return
        keypoint = ann.get("keypoint") if isinstance(ann, Mapping) else None
        if self.first is None and getattr(keypoint, "ndim", 0) == 4:
            self.first = (keypoint.shape, ann.get("keypoint_score") is not None)
        if not stream:
            self.items.append(AnnotationItem(key, (str(path),), digest, sid, ann))
            return
        self.chunk.append((AnnotationItem(key, (str(path),), digest, sid), ann))
        if len(self.chunk) == CHUNK_ANNOTATIONS:
            self.flush()

    def mark(self) -> tuple:
        """What ``rollback`` returns to: the state before a file is read."""
        return (len(self.items), len(self.results), len(self.labels), dict(self.seen), self.first,
                {k: len(v) for k, v in self.kpfile_videos.items()})

    def rollback(self, mark: tuple) -> None:
        """Forget what a file that then failed had added (a stream hands over annotations before the end)."""
        items, results, labels, self.seen, self.first, videos = mark
        del self.items[items:], self.results[results:], self.labels[labels:]
        for kpfile in list(self.kpfile_videos):
            del self.kpfile_videos[kpfile][videos.get(kpfile, 0):]
            if not self.kpfile_videos[kpfile]:
                del self.kpfile_videos[kpfile]
        self.chunk = []

    def flush(self) -> None:
        """Write the waiting annotations to the next stage file; their items point into it."""
        if not self.chunk:
            return
        path = self.stage / f"{self.chunks:06d}.pkl"
        with open(path, "wb") as fh:
            pickle.dump([ann for _, ann in self.chunk], fh, protocol=pickle.HIGHEST_PROTOCOL)
        self.items.extend(replace(item, chunk=str(path), position=i) for i, (item, _) in enumerate(self.chunk))
        self.chunk, self.chunks = [], self.chunks + 1


def _read_inputs(inputs: Sequence, kpfiles: Path | None, stage: Path, stream_bytes: int) -> _Inputs:
    """Read every pickle (restricted) and cut it into work items; files that cannot be read are failed results.

    A pickle larger than ``stream_bytes`` is streamed: its annotations are staged in chunk files under ``stage``
    as they are unpickled, so memory holds one append batch of it; smaller pickles are loaded whole (faster).
    """
    paths = sorted({folder / name for folder, name in walk_files(inputs, PATTERNS)}, key=lambda p: p.parts)
    if not paths:
        raise ConversionError(f"no .pkl files in {', '.join(map(str, inputs))}")
    out = _Inputs(stage)
    digests = []
    for path in paths:
        digest = stats_digest(file_stats([path]))
        digests.append(f"{path} {digest}")
        stream = path.stat().st_size > stream_bytes
        if stream:
            stage.mkdir(parents=True, exist_ok=True)
        positions = iter(range(1 << 62))
        sink = lambda ann: out.add(ann, path, next(positions), digest, kpfiles, stream)  # noqa: E731
        mark = out.mark()
        try:
            annotations, split = annotation_list(stream_pickle(path, sink) if stream else load_pickle(path), path)
        except PysklError as exc:
            out.rollback(mark)
            out.results.append(FileResult(str(path), path.stem, "failed", reason=str(exc), inputs=digest))
            continue
        for name, members in (split or {}).items():
            if isinstance(members, (str, bytes)) or not isinstance(members, (list, tuple, set, np.ndarray)):
                raise ConversionError(f"{path}: split {name!r} is a {type(members).__name__}, expected a list of "
                                      "frame_dirs")
            out.splits[str(name)].extend(str(m) for m in members)
        for ann in annotations:  # the annotations not streamed: all of a file loaded whole, or one alone
            sink(ann)
        out.flush()
    for kpfile, videos in sorted(out.kpfile_videos.items()):
        if Path(kpfile).is_file():
            out.items.append(KpfileItem(kpfile, (kpfile,), tuple(videos)))
        else:
            hint = "" if kpfiles else "; give --kpfiles DIR"
            out.results.append(FileResult(kpfile, Path(kpfile).stem, "failed",
                                          reason=f"{kpfile}: no such kpfile (raw_file of {len(videos)} videos){hint}"))
    out.digests = frozenset(digests)
    return out


def _toc_entry(ann: Mapping, sid: str) -> dict:
    """A Kinetics-400 table-of-contents annotation -> what its kpfile's worker needs."""
    label = annotation_label(ann)
    frame_inds = ann.get("frame_inds")
    if not isinstance(frame_inds, np.ndarray) or frame_inds.ndim != 1:
        raise PysklError(f"'frame_inds' is {type(frame_inds).__name__}, expected a 1-dim array")
    return {"sample_id": sid, "label": label, "frame_inds": frame_inds, "box_score": ann.get("box_score"),
            "img_shape": image_shape(ann)}


def _layout_and_coords(first: tuple | None, kpfile_videos: bool, layout) -> tuple[Layout, str]:
    """The store's layout and coords from the first annotation's keypoint shape and whether it has a
    ``keypoint_score`` (module doc), or for kpfiles alone (x, y, score)."""
    if first is None:
        if not kpfile_videos:
            raise ConversionError("no annotation has a 4-dim 'keypoint' array (M, T, V, C)")
        coords, v = "xyc", None
    else:
        (_, _, v, c), has_score = first
        if c not in (2, 3):
            raise ConversionError(f"the first annotation's keypoint has {c} channels, expected 2 (2D) or 3 (3D)")
        coords = "xyc" if has_score else "xyz" if c == 3 else "xy"
    if layout is not None:
        chosen = resolve_layout(layout)
    elif first is None:
        chosen = get_layout("coco17")  # pyskl's Kinetics-400 kpfiles hold HRNet COCO-17 keypoints
    elif (coords, v) in DEFAULT_LAYOUTS:
        chosen = get_layout(DEFAULT_LAYOUTS[coords, v])
    else:
        raise ConversionError(f"the annotations have {v} joints ({coords}): give --layout NAME|FILE")
    if v is not None and chosen.num_joints != v:
        raise ConversionError(f"layout {chosen.name} has {chosen.num_joints} joints, the annotations {v}")
    return chosen, coords


# ----------------------------------------------------------------------------------------------------------------
# Driver


def convert_pyskl(inputs: Sequence, output, *, dataset: str | None = None, layout=None, max_persons: int = 2,
                  normalize: str = "none", kpfiles=None, box_thr: float | None = None,
                  stream_bytes: int = STREAM_BYTES, log: Callable[[str], None] = lambda _: None,
                  **run) -> dict[str, Any]:
    """Convert pyskl / mmaction2 annotation pickles into a store at ``output``; return the report.

    ``dataset``: class names (ntu60, ntu120, kinetics400, gym99, ucf101, hmdb51, diving48; default: ntu60/ntu120
    for NTU names, else numbered classes); ``layout``: needed for joint counts other than 25 (3D), 17 and 18 (2D);
    ``normalize="pyskl"``: pyskl's PreNormalize2D on 2D keypoints; ``kpfiles``: the folder of Kinetics-400 kpfiles
    (default: each ``raw_file`` as written); ``box_thr``: drop kpfile skeletons with a lower box score;
    ``stream_bytes``: pickles larger than this are streamed through stage files beside the output (removed at the
    end) instead of loaded whole. ``run``: the fields of ``skeltools.convert.RunOptions``.
    """
    if normalize not in NORMALIZATIONS:
        raise ConversionError(f"unknown normalization {normalize!r}; choose from {', '.join(NORMALIZATIONS)}")
    if max_persons < 1:
        raise ConversionError(f"--max-persons must be at least 1, got {max_persons}")
    t_start = time.perf_counter()
    run = RunOptions(**run)
    output = check_output(output, inputs, run)
    stage = output.parent / f".{output.name}.stage"
    with conversion_executor(output, run) as executor:  # the output's lock; a local pool starts meanwhile
        shutil.rmtree(stage, ignore_errors=True)  # an interrupted run's: staged again, from the pickles as they are now
        try:
            found = _read_inputs(inputs, Path(kpfiles) if kpfiles else None, stage, stream_bytes)
            return _convert(executor, inputs, output, run, found, dataset, layout, max_persons, normalize, kpfiles,
                            box_thr, log, t_start)
        finally:
            shutil.rmtree(stage, ignore_errors=True)


def _convert(executor, inputs, output, run, found: _Inputs, dataset, layout, max_persons, normalize, kpfiles,
             box_thr, log, t_start) -> dict[str, Any]:
    """The store of what ``_read_inputs`` found, on the shared pipeline (``convert_pyskl``'s arguments)."""
    from skeltools import __version__

    if not found.items:
        first = found.results[0].reason if found.results else "no annotations"
        raise ConversionError(f"nothing to convert in {', '.join(map(str, inputs))} ({first})")
    chosen, coords = _layout_and_coords(found.first, bool(found.kpfile_videos), layout)
    if normalize == "pyskl" and coords != "xyc":
        raise ConversionError("--normalize pyskl is pyskl's PreNormalize2D, for 2D keypoints with scores")
    ids = [item.sample_id for item in found.items if isinstance(item, AnnotationItem)] + \
        [v["sample_id"] for item in found.items if isinstance(item, KpfileItem) for v in item.videos]
    ntu = all(parse_ntu_name(sid) for sid in ids)
    name = dataset or (detect_dataset(ids) if ntu else None)
    if name is not None:
        known = get_dataset(name)
        class_names = known.class_names
    else:
        class_names = tuple(str(i) for i in range(max(found.labels, default=-1) + 1))
    protocol_parts, parts, columns = split_parts(found.splits, ", ".join(map(str, inputs)))
    spec = replace(generic_dataset(class_names, protocol_parts, layout=chosen.name, name=name or "pyskl"),
                   description=f"pyskl annotations ({', '.join(map(str, inputs))})")
    options = PysklOptions(chosen.to_dict(), coords, max_persons, len(class_names), normalize, box_thr)
    log(f"{len(ids)} annotations to convert as {spec.name} ({chosen.name}, {coords}, {len(class_names)} classes, "
        f"splits {', '.join(columns.values()) or 'none'}) on {executor.workers} worker(s)")
    target = Target(
        options.source,
        {"dataset": spec.name, "layout": chosen.name, "coords": coords, "splits": columns,
         "kpfiles": str(kpfiles) if kpfiles else None},
        lambda n, f: _attrs(spec, options, chosen, n, f, __version__),
        lambda ok: _index(ok, spec, parts, ntu))
    return _process_and_write(executor, found.items, found.results, output, options, found.digests, inputs,
                              target, run=run, log=log, t_start=t_start)


def _attrs(spec, options: PysklOptions, layout: Layout, num_samples: int, num_frames: int,
           version: str) -> dict[str, Any]:
    return {
        "schema": schema.SCHEMA_VERSION,
        "dataset": spec.name,
        **layout_attrs(layout),
        "coords": options.coords,
        "persons": options.max_persons,
        "num_samples": num_samples,
        "num_frames": num_frames,
        "preset": "pyskl2d" if options.normalize == "pyskl" else "none",
        "preprocessing": options.preprocessing(),
        "class_names": list(spec.class_names),
        "source": options.source,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "skeltools_version": version,
    }


def _index(ok: list[FileResult], spec, parts: Mapping[str, dict], ntu: bool):
    rows = [row for r in ok for row in r.samples or [{"sample_id": r.sample_id, "label": r.label, "length": r.length,
                                                       "n_persons": r.n_persons}]]
    rows = [row | {"parts": parts.get(row["sample_id"], {})} | (parse_ntu_name(row["sample_id"]) if ntu else {})
            for row in rows]
    return build_index(rows, spec, "ntu" if ntu else "generic")

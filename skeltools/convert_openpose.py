"""OpenPose per-frame JSON folders and Kinetics-Skeleton JSON -> store, on the pipeline of ``skeltools.convert``.

A work item is one video: a Kinetics-Skeleton file, or the per-frame files of one video (grouped by folder and by
the prefix before the frame number). Each item becomes one sample with ``coords = "xyc"``.
"""
from __future__ import annotations

import csv
import json
import os
import re
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from schemas import store as schema
from schemas.layouts import TO_COCO18
from skeltools.readers.smallfiles import file_stats, stats_digest
from skeltools.store import SkeletonStore
from skeltools.convert import (ConversionError, FileResult, RunOptions, Target, _process_and_write, check_output,
                               conversion_executor, input_fields, walk_folders, zero_nonfinite_bodies)
from skeltools.readers.openpose import (MODEL_JOINTS, OpenPoseError, TimelineError, map_joints, normalize_stgcn,
                                        parse_label, read_kinetics_video, read_openpose_video, select_stgcn,
                                        select_tracked, selection_losses, folder_videos, timeline)

FORMATS = ("frames", "kinetics")
PERSON_PRESETS = ("track", "stgcn")
NORMALIZATIONS = ("stgcn", "none")
_PART = re.compile(r"(?:^|[_.-])(train|val|test)(?:[_.-]|$)")
LABEL_LIMIT = 2**15  # labels are int16 in the index


@dataclass(frozen=True)
class VideoItem:
    key: str  # reported as the result's file: the JSON file, or ``folder/video`` for per-frame files
    sample_id: str
    files: tuple[str, ...]
    numbers: tuple[int, ...] = ()  # frame number of each per-frame file
    folder: str = ""  # the folder of a per-frame video's files
    label: int | None = None  # from a label file; None: the video's own label_index, else unlabelled


@dataclass(frozen=True)
class OpenPoseOptions:
    format: str = "kinetics"
    model: str = "coco18"
    persons: str = "track"
    max_persons: int = 2
    normalize: str = "stgcn"
    image_width: float = 0.0  # 0: coordinates are already in [0, 1]
    image_height: float = 0.0
    flip_y: bool = False
    as_coco18: bool = False
    class_names: tuple[str, ...] = ()  # the dataset's, or the store's when appending: labels are checked against them

    @property
    def layout(self) -> str:
        return "coco18" if self.as_coco18 else self.model

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        return (self.max_persons, 18 if self.as_coco18 else MODEL_JOINTS[self.model], 3)

    @classmethod
    def from_attrs(cls, attrs) -> "OpenPoseOptions":
        """The options that wrote a store with these attrs (the inverse of ``_attrs``)."""
        persons, normalize = attrs["preset"].split("+")
        info = attrs["preprocessing"]
        width, height = info.get("image_size") or (0.0, 0.0)
        return cls("kinetics" if attrs["source"] == "kinetics-skeleton" else "frames", info["model"], persons,
                   attrs["persons"], normalize, width, height, bool(info.get("flip_y")),
                   attrs["layout"] == "coco18" and info["model"] != "coco18")

    @property
    def stats_own_reads(self) -> bool:
        """Per-frame files are stat'ed by their reader (see ``convert.process_group``)."""
        return self.format == "frames"

    def process(self, item: VideoItem) -> tuple[FileResult, np.ndarray | None]:
        return process_video(item, self)


def process_video(item: VideoItem, options: OpenPoseOptions) -> tuple[FileResult, np.ndarray | None]:
    """Read, select people and normalize one video; never raises for bad input, reports it instead."""
    v = MODEL_JOINTS[options.model]
    label, label_name = item.label, None
    stats = np.full((len(item.files), 2), -1, np.int64)

    def outcome(status: str, **fields) -> FileResult:
        own = input_fields(stats) if options.stats_own_reads else {}  # else process_group stats the files
        return FileResult(item.key, item.sample_id, status, **own, **fields)

    try:
        if options.format == "kinetics":
            video = read_kinetics_video(item.files[0], v)
            numbers, people = video.frame_index, video.frames
            if label is None:
                label, label_name = video.label_index, video.label
        else:
            numbers, people = item.numbers, read_openpose_video(item.files, v, stats, item.folder or None)
    except OpenPoseError as exc:  # the message names the file and the key
        return outcome("failed", reason=str(exc)), None
    problem = label_problem(label, options.class_names)
    if problem:
        return outcome("failed", reason=f"{item.key}: {problem}"), None
    try:
        frames = timeline(numbers, people, v)
    except TimelineError as exc:
        numbers = list(item.numbers)
        where = item.files[numbers.index(exc.number)] if exc.number in numbers else item.key
        return outcome("failed", reason=f"{where}: {exc}"), None
    nonfinite = zero_nonfinite_bodies(frames.points)
    empty = int((frames.counts == 0).sum())
    if empty == len(frames):
        return outcome("skipped", reason="no person in any frame", nonfinite_body_frames=nonfinite), None
    notes = [f"{empty} of {len(frames)} frames have nobody"] if empty else []
    if options.persons == "track" and fill_missing_scores(frames.points):
        notes.append("every keypoint score is 0 (no confidences, as tf-pose writes): joints with coordinates "
                     "given score 1")
    select = select_tracked if options.persons == "track" else select_stgcn
    data = select(frames, options.max_persons)
    notes += dropped_people(frames, data)
    if options.as_coco18:
        data = map_joints(data, TO_COCO18[options.model])
    if options.normalize == "stgcn":
        size = (options.image_width, options.image_height) if options.image_width else None
        data = normalize_stgcn(data, size, options.flip_y)
    nonfinite += zero_nonfinite_bodies(data)  # finite pixels can overflow when divided by a tiny image size
    notes += one_based_hint(label, label_name, options.class_names)
    n_persons = int((data[..., 2].sum(axis=(0, 2)) > 0).sum())
    return (outcome("ok", length=len(data), n_persons=n_persons, notes=notes, label=-1 if label is None else label,
                    nonfinite_body_frames=nonfinite),
            np.ascontiguousarray(data, dtype=np.float32))


def label_problem(label: int | None, class_names: Sequence[str]) -> str:
    """Why a video's label cannot be stored ("" when it can): below 0, or beyond the class list (or the index's
    int16 when there is none)."""
    if label is None:
        return ""
    limit = len(class_names) or LABEL_LIMIT
    if 0 <= label < limit:
        return ""
    hint = " (1-based numbering?)" if label == len(class_names) > 0 else ""
    return (f"label {label} is outside 0..{limit - 1}" + (f" of the {limit} classes" if class_names else "")
            + hint)


def one_based_hint(label: int | None, label_name: str | None, class_names: Sequence[str]) -> list[str]:
    """A note when a video's ``label`` string names the class before its ``label_index`` (1-based numbering)."""
    if label is None or not label_name or not class_names or class_names[label] == label_name:
        return []
    if label > 0 and class_names[label - 1] == label_name:
        return [f"label_index {label} looks 1-based: the file's label {label_name!r} is class {label - 1} "
                f"(stored as given)"]
    return [f"label_index {label} is class {class_names[label]!r}, but the file's label is {label_name!r}"]


def fill_missing_scores(points: np.ndarray) -> bool:
    """Score-free poses (every score 0, e.g. tf-pose output): give score 1, in place, to every joint with non-zero
    coordinates, so tracking and normalization see the joints. ``points (N, V, 3)``; returns whether it did."""
    if not len(points) or points[..., 2].any() or not points[..., :2].any():
        return False
    points[..., 2] = (points[..., :2] != 0).any(axis=-1)
    return True


def dropped_people(frames, data: np.ndarray) -> list[str]:
    """Notes on what person selection left out: person-frames (``frames``, :class:`Frames`) not in ``data``
    ``(T, M, V, 3)``, and frames that had somebody but keep nobody."""
    present, kept, emptied = selection_losses(frames.points, frames.counts, data)
    notes = [f"{present - kept} of {present} person-frames dropped (at most {data.shape[1]} persons kept)"] \
        if present > kept else []
    return notes + ([f"{emptied} frames with somebody keep nobody"] if emptied else [])


# ----------------------------------------------------------------------------------------------------------------
# Labels


@dataclass(frozen=True)
class LabelEntry:
    label: int | None
    has_skeleton: bool = True
    part: str | None = None  # "train" | "test" (from a ``*_train_*`` / ``*_val_*`` / ``*_test_*`` file name)
    source: str = ""
    name: str = ""  # the class name the entry gives with its label (Kinetics ``label``), if any


def label_part(path) -> str | None:
    """``kinetics_train_label.json`` -> "train"; ``*_val_*`` and ``*_test_*`` -> "test" (the evaluation part)."""
    m = _PART.search(Path(path).stem)
    return None if m is None else ("train" if m.group(1) == "train" else "test")


def read_labels(path) -> dict[str, LabelEntry]:
    """A label file -> video id -> entry. JSON: ``{id: label}`` or the Kinetics ``{id: {"has_skeleton",
    "label_index", "label", ...}}``; CSV: ``video,label`` rows (a header row is skipped). Empty labels are
    unlabelled."""
    path = Path(path)
    part = label_part(path)
    try:
        if path.suffix.lower() == ".json":
            doc = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(doc, dict):
                raise ValueError("expected a JSON object of video -> label")
            rows = [(k, e.get("label_index"), bool(e.get("has_skeleton", True)), e.get("label"))
                    if isinstance(e, dict) else (k, e, True, "") for k, e in doc.items()]
        else:
            with open(path, newline="", encoding="utf-8") as fh:
                rows = [(r[0].strip(), r[1].strip() if len(r) > 1 else "", True, "") for r in csv.reader(fh) if r]
            if rows and rows[0][1] and not rows[0][1].lstrip("-").isdigit():
                rows = rows[1:]
        return {video: LabelEntry(parse_label(label), has, part, str(path), name if isinstance(name, str) else "")
                for video, label, has, name in rows}
    except (OSError, ValueError, IndexError, RecursionError) as exc:
        raise ConversionError(f"{path}: not a label file ({exc or 'nested too deeply'})") from None


def derived_class_names(labels: Sequence[int], entries: dict[str, LabelEntry]) -> list[str]:
    """Class names without a dataset: one per label up to the largest one given (by the converted videos or the
    label files), each the class name a label file gives with it (Kinetics ``label``), else the number itself."""
    named = {e.label: e.name for e in entries.values() if e.label is not None and e.name}
    count = max([*labels, *named, -1]) + 1
    names = [named.get(i, str(i)) for i in range(count)]
    repeated = {n for n in names if names.count(n) > 1}
    return [f"{n} ({i})" if n in repeated else n for i, n in enumerate(names)]


# ----------------------------------------------------------------------------------------------------------------
# Inputs


JsonFolder = tuple[Path, list[str]]  # a folder and the .json file names in it: one Path per folder, not per file


def _json_folders(inputs: Sequence) -> list[JsonFolder]:
    """The .json files under the input folders or given directly, by folder, in path order (folders, then names)."""
    by_folder: dict[Path, set[str]] = defaultdict(set)
    for folder, names in walk_folders(inputs, ("*.json",)):
        by_folder[folder].update(names)
    return [(folder, sorted(by_folder[folder])) for folder in sorted(by_folder, key=lambda f: f.parts)]


def json_folders(paths: Sequence[Path]) -> list[JsonFolder]:
    """Paths of .json files as the ``(folder, names)`` pairs the item builders take."""
    by_folder: dict[Path, list[str]] = defaultdict(list)
    for p in map(Path, paths):
        by_folder[p.parent].append(p.name)
    return [(folder, sorted(names)) for folder, names in sorted(by_folder.items(), key=lambda f: f[0].parts)]


def kinetics_items(folders: list[JsonFolder]) -> list[VideoItem]:
    """One item per Kinetics-Skeleton file (label files, ``*_label.json``, are not videos)."""
    paths = [folder / name for folder, names in folders for name in names if not name.endswith("_label.json")]
    return [VideoItem(str(p), p.stem, (str(p),)) for p in paths]


def frame_items(folders: list[JsonFolder]) -> list[VideoItem]:
    """Group per-frame files into videos by folder and name prefix, frames ordered by number.

    The sample id is the prefix (the folder's name when the prefix is empty); ids that two folders share are
    replaced by ``folder/prefix``.
    """
    videos = {(folder, prefix): frames for folder, names in folders for prefix, frames in folder_videos(names).items()}
    counts: dict[str, int] = defaultdict(int)
    for folder, prefix in videos:
        counts[prefix or folder.name] += 1
    items = []
    for (folder, prefix), (numbers, names) in sorted(videos.items(), key=lambda v: (v[0][0].parts, v[0][1])):
        sample_id = prefix or folder.name
        key = str(folder / prefix) if prefix else str(folder)
        start = os.path.join(folder, "")
        items.append(VideoItem(key, key if counts[sample_id] > 1 else sample_id, tuple(start + f for f in names),
                               tuple(numbers), folder=str(folder)))
    return items


def _attach_labels(items: list[VideoItem], labels: dict[str, LabelEntry]):
    """Labels onto items; videos a label file marks ``has_skeleton: false`` become skipped results."""
    kept, skipped = [], []
    for item in items:
        entry = labels.get(item.sample_id)
        if entry is None:
            kept.append(item)
        elif not entry.has_skeleton:
            skipped.append(FileResult(item.key, item.sample_id, "skipped",
                                      reason=f"has_skeleton is false in {entry.source}"))
        else:
            kept.append(replace(item, label=entry.label))
    return kept, skipped


# ----------------------------------------------------------------------------------------------------------------
# Driver


def convert_openpose(inputs: Sequence, output, *, format: str = "kinetics", model: str = "coco18",
                     labels: Sequence = (), dataset: str | None = None, persons: str = "track", max_persons: int = 2,
                     normalize: str = "stgcn", image_size: tuple[float, float] | None = None, flip_y: bool = False,
                     as_coco18: bool = False, split_ratio: float | None = None, seed: int = 0,
                     log: Callable[[str], None] = lambda _: None, **run) -> dict[str, Any]:
    """Convert OpenPose per-frame JSON (``format="frames"``) or Kinetics-Skeleton JSON into a store; return the report.

    ``labels``: label files (see :func:`read_labels`); for ``kinetics`` the ``*_label.json`` files found under the
    input folders are used too. ``dataset="kinetics400"`` adds its class names and the ``kinetics_train`` /
    ``kinetics_test`` split columns. Normalization ``stgcn`` needs x, y in [0, 1], or ``image_size`` (W, H) for
    pixels; ``none`` stores the coordinates as read. ``split_ratio``: add a seeded split stratified per class
    (``generic_train`` / ``generic_test``) over the labelled videos that convert. ``run``: the fields of
    ``skeltools.convert.RunOptions``.
    """
    from schemas.datasets import get_dataset
    from skeltools import __version__

    for name, value, choices in (("format", format, FORMATS), ("model", model, tuple(MODEL_JOINTS)),
                                 ("persons", persons, PERSON_PRESETS), ("normalize", normalize, NORMALIZATIONS)):
        if value not in choices:
            raise ConversionError(f"unknown {name} {value!r}; choose from {', '.join(choices)}")
    if format == "kinetics" and model != "coco18":
        raise ConversionError("Kinetics-Skeleton files hold COCO-18 joints: use --model coco18")
    if as_coco18 and model not in TO_COCO18:
        raise ConversionError("--as-coco18 maps BODY_25 or BODY_25B output (use --model body25 or body25b)")
    if format == "frames" and normalize == "stgcn" and image_size is None:
        raise ConversionError("OpenPose frames are in pixels: give --image-size W H, or --normalize none")
    spec = get_dataset(dataset) if dataset else None
    if split_ratio is not None and spec is not None:
        raise ConversionError(f"--split-ratio: {dataset} has its own split columns")
    if spec is not None and spec.layout != ("coco18" if as_coco18 else model):
        raise ConversionError(f"{spec.name} uses layout {spec.layout}, not {model}")
    t_start = time.perf_counter()
    run = RunOptions(**run)
    output = check_output(output, inputs, run)
    fixed_names = (spec.class_names if spec else SkeletonStore.open(output).attrs["class_names"] if run.append
                   else ())  # without either, the classes are named after the conversion (derived_class_names)
    options = OpenPoseOptions(format, model, persons, max_persons, normalize, *(image_size or (0.0, 0.0)), flip_y,
                              as_coco18, tuple(fixed_names))
    with conversion_executor(output, run) as executor:
        folders = _json_folders(inputs)
        label_files = list(labels) + [folder / name for folder, names in folders for name in names
                                      if format == "kinetics" and name.endswith("_label.json")]
        entries: dict[str, LabelEntry] = {}
        for path in label_files:
            entries |= read_labels(path)
        if not label_files:
            for found in label_files_beside(inputs):
                log(f"warning: {found} looks like a label file but is not used: pass it with --labels {found}")
        items, results = _attach_labels(kinetics_items(folders) if format == "kinetics" else frame_items(folders),
                                        entries)
        if not items:
            raise ConversionError(f"no videos to convert in {', '.join(map(str, inputs))}")
        log(f"{len(items)} videos to convert ({format}, {model}, persons {persons}) on {executor.workers} worker(s)")
        parts = {v: e.part for v, e in entries.items()}
        target = Target(
            "kinetics-skeleton" if format == "kinetics" else "openpose-frames",
            {"dataset": spec.name if spec else "openpose", "preset": f"{persons}+{normalize}",
             "label_files": [str(p) for p in label_files]},
            lambda n, f: _attrs(spec, options, n, f, __version__),
            lambda ok: _index(ok, spec, parts, split_ratio, seed),
            None if fixed_names else lambda ok: derived_class_names([r.label for r in ok], entries))
        labels_read = frozenset(f"{p} {stats_digest(file_stats([p]))}" for p in label_files)
        report = _process_and_write(executor, items, results, output, options, labels_read,
                                    inputs, target, run=run, log=log, t_start=t_start)
    if entries and spec is None and split_ratio is None and not run.append:
        log(f"note: {output} is labelled but has no split: rerun with --split-ratio 0.8 (a seeded split stratified "
            f"per class, then `train --split generic`), or add one with `skeltools subset {output} -o OUT.zarr "
            f"--split-ratio 0.8`")
    one_based = [sid for sid, notes in report["notes"].items() if any("looks 1-based" in n for n in notes)]
    if one_based:
        log(f"warning: {len(one_based)} video(s) give a label_index that looks 1-based against the "
            f"{spec.name if spec else 'store'} class names (first: {one_based[0]}); see the notes in report.json")
    return report


def describe(options: OpenPoseOptions) -> dict[str, Any]:
    """The store's ``preprocessing`` attr: what was done, in words and parameters."""
    persons = {"track": "people tracked across frames (greedy matching of each frame's people to the tracks' "
                        "predicted poses by mean joint distance over box size < 3), top M tracks by total score, ordered "
                        "by score; frames where a kept track is not seen are zero",
               "stgcn": "st-gcn reference: per frame, the first 5 people sorted by summed score, top M kept "
                        "(identities may swap between frames)"}[options.persons]
    size = [options.image_width, options.image_height] if options.image_width else None
    normalize = {"stgcn": "x, y" + (" divided by the image size," if size else "") + " minus 0.5, zeroed where "
                          "the score is 0" + ("; y negated (2s-AGCN / MS-G3D)" if options.flip_y else ""),
                 "none": "coordinates as read"}[options.normalize]
    reference = {"track": "skeltools person tracking", "stgcn": "st-gcn feeder_kinetics"}[options.persons]
    return {"reference": f"{reference}, {options.normalize} normalization", "persons": persons,
            "max_persons": options.max_persons, "normalize": normalize, "image_size": size,
            "flip_y": options.flip_y, "model": options.model, "joints": _joints(options),
            "time": "frame numbers minus the smallest (0- and 1-based alike); missing numbers are empty frames"}


def _joints(options: OpenPoseOptions) -> str:
    if not options.as_coco18:
        return options.model
    if options.model == "body25b":
        return ("BODY_25B mapped to COCO-18 by joint name; neck: midpoint of the shoulders with the lower of their "
                "scores, 0, 0, 0 where either shoulder is undetected")
    return "BODY_25 mapped to COCO-18 by joint name"


def _attrs(spec, options: OpenPoseOptions, num_samples: int, num_frames: int, version: str) -> dict[str, Any]:
    return {
        "schema": schema.SCHEMA_VERSION,
        "dataset": spec.name if spec else "openpose",
        "layout": options.layout,
        "coords": "xyc",
        "persons": options.max_persons,
        "num_samples": num_samples,
        "num_frames": num_frames,
        "preset": f"{options.persons}+{options.normalize}",
        "preprocessing": describe(options),
        "class_names": list(options.class_names),
        "source": "kinetics-skeleton" if options.format == "kinetics" else "openpose-frames",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "skeltools_version": version,
    }


def label_files_beside(inputs: Sequence) -> list[Path]:
    """Files in the input folders (top level) or beside input files that look like label files: ``*label*`` or
    ``*class*`` with a .csv, .json or .txt suffix (OpenPose keypoint files excluded)."""
    found = set()
    for given in map(Path, inputs):
        folder = given if given.is_dir() else given.parent
        for path in folder.iterdir():
            name = path.name.lower()
            if (path.is_file() and path.suffix.lower() in (".csv", ".json", ".txt")
                    and ("label" in name or "class" in name) and not name.endswith("_keypoints.json")):
                found.add(path)
    return sorted(found)


def _index(ok: list[FileResult], spec, parts: dict[str, str | None], split_ratio: float | None = None,
           seed: int = 0):
    import pyarrow as pa

    from skeltools.convert_generic import random_split

    columns: dict[str, Any] = {
        "sample_id": [r.sample_id for r in ok],
        "label": [r.label for r in ok],
        "length": [r.length for r in ok],
        "n_persons": [r.n_persons for r in ok],
    }
    split_columns = spec.split_columns() if spec else ()
    if split_columns:
        flags = [spec.split_flags({"train": int(parts[r.sample_id] == "train")}) if parts.get(r.sample_id)
                 else dict.fromkeys(split_columns, False) for r in ok]  # a video in no split file is in no part
        for name in split_columns:
            columns[name] = [f[name] for f in flags]
    if split_ratio is not None:
        drawn = random_split({r.sample_id: r.label for r in ok if r.label >= 0}, split_ratio, seed)
        split_columns = ("generic_train", "generic_test")
        for name in split_columns:
            columns[name] = [drawn.get(r.sample_id) == name.removeprefix("generic_") for r in ok]
    name = spec.name if spec else "openpose"
    table_schema = schema.index_schema({}, split_columns, {"dataset": name, "schema": str(schema.SCHEMA_VERSION)})
    return pa.Table.from_pydict(columns, schema=table_schema)

"""MMPose / RTMPose prediction JSON -> store, on the pipeline of ``skeltools.convert``.

One JSON file per video (``readers.mmpose``), sample id = the file stem, coords ``xyc``. Frames are placed on a
time axis by their ``frame_id`` (0- or 1-based alike, gaps are empty frames) and people are selected as for
OpenPose: ``track`` follows identities across frames and keeps the M tracks with the highest total score, ``stgcn``
sorts each frame's people by score. Layout from the keypoint count: 17 -> ``coco17``, 26 -> ``halpe26``,
133 -> ``wholebody133``; ``keep="body"`` stores only the COCO-17 body joints (0-16) of Halpe-26 and
COCO-WholeBody; other counts need ``layout``. Normalisation ``stgcn`` maps pixels to [-0.5, 0.5] by the image size
from ``meta_info`` when present, else ``image_size``; ``none`` keeps pixels.

Labels come from label files (CSV ``video,label`` or JSON ``{video: label}``, as ``convert openpose``); a label
file named ``*_train*`` / ``*_val*`` / ``*_test*`` puts its videos in the ``split_train`` / ``split_test`` columns.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

import numpy as np

from schemas.datasets import generic_dataset, get_dataset
from schemas.layouts import COCO17, LAYOUTS, Layout, layout_attrs, resolve_layout
from skeltools.convert import ConversionError, FileResult, build_index, file_row, find_skeleton_files, run_conversion
from skeltools.convert_generic import GenericDataset
from skeltools.readers.mmpose import MMPoseError, read_mmpose_json
from skeltools.readers.smallfiles import file_stats, stats_digest

PERSON_PRESETS = ("track", "stgcn")
NORMALIZATIONS = ("stgcn", "none")
KEEP = ("all", "body")
DEFAULT_LAYOUTS = {17: "coco17", 26: "halpe26", 133: "wholebody133"}


@dataclass(frozen=True)
class MMPoseOptions:
    source: ClassVar[str] = "mmpose"
    layout: dict = field(default_factory=dict)  # the stored layout, Layout.to_dict()
    source_joints: int = 17  # keypoints per instance in the files
    persons: str = "track"
    max_persons: int = 2
    normalize: str = "stgcn"
    image_size: tuple[float, float] | None = None  # (W, H) for files whose meta_info has none
    labels: tuple[str, ...] = ()

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        return (self.max_persons, len(self.layout["joints"]), 3)

    def process(self, path: str) -> tuple[FileResult, np.ndarray | None]:
        return process_mmpose_file(path, self)

    def report_fields(self) -> dict[str, Any]:
        return {"layout": self.layout["name"], "persons": self.persons, "normalize": self.normalize,
                "label_files": list(self.labels)}

    def store_attrs(self, spec) -> dict[str, Any]:
        from skeltools.convert_openpose import OpenPoseOptions, describe

        tracking = describe(OpenPoseOptions("frames", "coco18", self.persons, self.max_persons, self.normalize))
        fallback = f"{self.image_size[0]:g}x{self.image_size[1]:g}" if self.image_size else "none given"
        normalize = (f"x, y divided by the image size (meta_info's, else {fallback}) minus 0.5, zeroed where the "
                     "score is 0") if self.normalize == "stgcn" else "pixels as predicted"
        return {**layout_attrs(Layout.from_dict(self.layout)), "coords": "xyc", "persons": self.max_persons,
                "preset": f"{self.persons}+{self.normalize}",
                "preprocessing": {"reference": f"MMPose predictions, {tracking['reference']}",
                                  "persons": tracking["persons"], "max_persons": self.max_persons,
                                  "normalize": normalize, "image_size": list(self.image_size or ()) or None,
                                  "source_joints": self.source_joints, "time": tracking["time"]}}

    def index(self, ok: list[FileResult], spec: GenericDataset):
        return build_index([file_row(r, spec.samples.get(r.sample_id, {"label": -1, "parts": {}})) for r in ok],
                           spec, "generic")


def process_mmpose_file(path: str, options: MMPoseOptions) -> tuple[FileResult, np.ndarray | None]:
    """Read, select people and normalize one video's predictions; bad input is reported, never raised."""
    from skeltools.readers.openpose import OpenPoseError, normalize_stgcn, select_stgcn, select_tracked, timeline

    sample_id = Path(path).stem
    try:
        video = read_mmpose_json(path, options.source_joints)
        frames = timeline(video.numbers, video.people, options.source_joints)
    except MMPoseError as exc:
        return FileResult(path, sample_id, "failed", reason=str(exc)), None
    except OpenPoseError as exc:
        return FileResult(path, sample_id, "failed", reason=f"{path}: {exc}"), None
    empty = int((frames.counts == 0).sum())
    if empty == len(frames):
        return FileResult(path, sample_id, "skipped", reason="no person in any frame"), None
    data = (select_tracked if options.persons == "track" else select_stgcn)(frames, options.max_persons)
    data = data[..., :len(options.layout["joints"]), :]  # keep="body": the COCO-17 joints lead every layout
    notes = [f"{empty} of {len(frames)} frames have nobody"] if empty else []
    if options.normalize == "stgcn":
        size = video.image_size or options.image_size
        if size is None:
            return FileResult(path, sample_id, "failed", reason=f"{path}: keypoints are in pixels and meta_info has "
                              "no image size: give --image-size W H, or --normalize none"), None
        data = normalize_stgcn(data, size)
        if video.image_size:
            notes.append(f"image size {size[0]:g}x{size[1]:g} from meta_info")
    n_persons = int((data[..., 2].sum(axis=(0, 2)) > 0).sum())
    return (FileResult(path, sample_id, "ok", length=len(data), n_persons=n_persons, notes=notes),
            np.ascontiguousarray(data, dtype=np.float32))


def _source_joints(files: Sequence[Path]) -> int:
    """The keypoint count of the first file that says it (meta_info, or any instance)."""
    for path in files:
        try:
            v = read_mmpose_json(path).num_keypoints
        except MMPoseError:
            continue
        if v:
            return v
    raise ConversionError("no prediction file says its keypoint count (no meta_info and nobody in any frame): "
                          "give --layout")


def _choose_layout(layout, keep: str, files: Sequence[Path]) -> tuple[Layout, int]:
    """(stored layout, keypoints per instance in the files)."""
    if layout is not None:
        chosen = resolve_layout(layout)
        return (COCO17, chosen.num_joints) if keep == "body" else (chosen, chosen.num_joints)
    v = _source_joints(files)
    if v not in DEFAULT_LAYOUTS:
        raise ConversionError(f"the predictions have {v} keypoints: give --layout NAME|FILE "
                              f"(built in: {', '.join(f'{k} {n}' for k, n in DEFAULT_LAYOUTS.items())})")
    return LAYOUTS["coco17" if keep == "body" else DEFAULT_LAYOUTS[v]], v


def _select(inputs: Sequence, labels: Sequence, dataset: str | None, layout, keep: str, persons: str,
            max_persons: int, normalize: str, image_size):
    """-> (files to process, results for the others, dataset, options)."""
    from skeltools.convert_openpose import read_labels

    label_files = {Path(p).resolve() for p in labels}
    files = [p for p in find_skeleton_files(inputs, ("*.json",)) if p.resolve() not in label_files]
    by_id: dict[str, Path] = {}
    results: list[FileResult] = []
    for path in sorted(files, key=lambda p: (p.stem, str(p))):
        if path.stem in by_id:
            results.append(FileResult(str(path), path.stem, "skipped", reason=f"duplicate of {by_id[path.stem]}"))
        else:
            by_id[path.stem] = path
    if not by_id:
        raise ConversionError(f"no .json prediction files in {', '.join(map(str, inputs))}")
    chosen, source_joints = _choose_layout(layout, keep, list(by_id.values()))
    if keep == "body" and source_joints < COCO17.num_joints:
        raise ConversionError(f"--keep body takes the 17 COCO body joints; the predictions have {source_joints}")
    entries = {}
    for path in labels:
        entries |= read_labels(path)
    known = [e.label for e in entries.values() if e.label is not None]
    names = get_dataset(dataset).class_names if dataset else tuple(str(i) for i in range(max(known, default=-1) + 1))
    bad = [f"{video}: {e.label}" for video, e in entries.items() if e.label is not None and e.label >= len(names)]
    if bad:
        raise ConversionError(f"labels beyond the {len(names)} classes ({', '.join(bad[:3])})")
    parts = {video: e.part for video, e in entries.items() if e.part}
    spec = GenericDataset(**vars(generic_dataset(names, {"split": ("train", "test")} if parts else {},
                                                 layout=chosen.name, name=dataset or "mmpose")),
                          samples={sid: {"label": entries[sid].label if sid in entries and entries[sid].label
                                         is not None else -1,
                                         "parts": {"split": parts[sid]} if sid in parts else {}} for sid in by_id})
    options = MMPoseOptions(chosen.to_dict(), source_joints, persons, max_persons, normalize,
                            tuple(image_size) if image_size else None, tuple(str(p) for p in labels))
    return list(by_id.values()), results, spec, options


def convert_mmpose(inputs: Sequence, output, *, labels: Sequence = (), dataset: str | None = None, layout=None,
                   keep: str = "all", persons: str = "track", max_persons: int = 2, normalize: str = "stgcn",
                   image_size: tuple[float, float] | None = None, log: Callable[[str], None] = lambda _: None,
                   **run) -> dict[str, Any]:
    """Convert MMPose prediction JSON files (one per video) into a store at ``output``; return the report.

    ``labels``: label files; ``dataset``: class names of a known dataset (default: numbered from the labels);
    ``layout``: for keypoint counts other than 17, 26 and 133; ``keep``: ``all`` or ``body`` (COCO-17 joints of
    Halpe-26 / COCO-WholeBody); ``image_size`` (W, H): for files whose meta_info has none.
    ``run``: the fields of ``skeltools.convert.RunOptions``.
    """
    for name, value, choices in (("persons", persons, PERSON_PRESETS), ("normalize", normalize, NORMALIZATIONS),
                                 ("keep", keep, KEEP)):
        if value not in choices:
            raise ConversionError(f"unknown {name} {value!r}; choose from {', '.join(choices)}")
    if max_persons < 1:
        raise ConversionError(f"--max-persons must be at least 1, got {max_persons}")

    def select(workers: int):
        todo, results, spec, options = _select(inputs, labels, dataset, layout, keep, persons, max_persons,
                                               normalize, image_size)
        log(f"{len(todo)} videos to convert ({options.layout['name']}, persons {persons}, {max_persons} slots) on "
            f"{workers} worker(s)")
        return todo, results, spec, options, frozenset(f"{p} {stats_digest(file_stats([p]))}" for p in labels)

    return run_conversion(select, inputs, output, log=log, **run)

"""Toyota Smarthome (trimmed) pose files -> store, on the pipeline of ``skeltools.convert``.

Inputs are LCR-Net JSON files (``<clip>_pose3d.json`` of skeleton v1.2, or v1.1 ``<clip>.json``) or 2D keypoint
npz files (``<clip>*.npz`` with ``kpts (T, 17, 2)``); one format per store. Every clip is kept whole (thousands of
frames; the training sampler picks clips). One person slot: LCR-Net may report several detections per frame, and a
track through them is kept (``readers.smarthome.track_one_person``). 2D pixels are mapped to [-1, 1] (x) by the
640-pixel width, as UNIK does; 3D v1.2 poses are already centred per frame and are stored as read.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

import numpy as np

from schemas import store as schema
from schemas.datasets import get_dataset, parse_smarthome_name, smarthome_split_lists
from skeltools.convert import (ConversionError, FileResult, build_index, file_row, find_skeleton_files,
                               run_conversion)

FORMATS = {"json": ("*.json",), "npz": ("*.npz",)}


@dataclass(frozen=True)
class SmarthomeOptions:
    source: ClassVar[str] = "smarthome-pose"
    dataset: str = "smarthome"
    fmt: str = "json"  # json | npz
    coords: str = "xyz"  # json: xyz (pose3d) | xy (pose2d); npz: xy

    @property
    def layout(self) -> str:
        return "coco17" if self.fmt == "npz" else "smarthome13"

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        return (1, 17 if self.fmt == "npz" else 13, schema.COORDS[self.coords])

    def process(self, path: str) -> tuple[FileResult, np.ndarray | None]:
        return process_smarthome_file(path, self)

    def report_fields(self) -> dict[str, Any]:
        return {"format": self.fmt, "coords": self.coords}

    def store_attrs(self, spec) -> dict[str, Any]:
        steps = ["one person track through the per-frame detections"] if self.fmt == "json" else []
        if self.coords == "xy":
            steps.append("pixels of 640x480 video -> x / 320 - 1, y / 320 - 0.75 (UNIK's screen normalization); "
                         "undetected (0, 0) keypoints stay 0")
        return {"layout": self.layout, "coords": self.coords, "persons": 1, "preset": "none",
                "preprocessing": {"steps": steps or ["none: poses stored as read"], "whole_sequences": True}}

    def index(self, ok: list[FileResult], spec):
        rows = [file_row(r, parse_smarthome_name(r.sample_id)) for r in ok]
        return build_index([row | {"label": spec.class_names.index(row["activity"])} for row in rows], spec,
                           "smarthome")


def process_smarthome_file(path: str, options: SmarthomeOptions) -> tuple[FileResult, np.ndarray | None]:
    """Read one clip into ``(T, 1, V, C)`` float32; bad input is reported, never raised."""
    from skeltools.readers.smarthome import (SmarthomePoseError, normalize_screen, read_kpts_npz, read_pose_json,
                                             track_one_person)

    sample_id = parse_smarthome_name(Path(path).name)["name"]
    notes = []
    try:
        if options.fmt == "npz":
            poses = read_kpts_npz(path)
        else:
            frames = read_pose_json(path, options.coords)
            poses, most = track_one_person(frames)
            if most == 0:
                return FileResult(path, sample_id, "skipped", reason="no detection in any frame"), None
            if most > 1:
                notes.append(f"up to {most} detections in a frame; one track kept")
    except SmarthomePoseError as exc:
        return FileResult(path, sample_id, "failed", reason=str(exc)), None
    if options.coords == "xy":
        poses = normalize_screen(poses)
    data = np.ascontiguousarray(poses[:, None], dtype=np.float32)
    return FileResult(path, sample_id, "ok", length=len(data), n_persons=1, notes=notes), data


def _select(inputs: Sequence, dataset: str, fmt: str | None):
    """Sort the inputs into files to process and reported ones; returns (todo, results, spec, format)."""
    if dataset not in ("smarthome", "smarthome_cv"):
        raise ConversionError(f"{dataset} is not a Toyota Smarthome dataset (smarthome, smarthome_cv)")
    spec = get_dataset(dataset)
    found = {f: find_skeleton_files(inputs, FORMATS[f]) for f in FORMATS}
    if fmt is None:
        present = [f for f, files in found.items() if files]
        if len(present) != 1:
            raise ConversionError(f"found {' and '.join(present) or 'no'} pose files in {', '.join(map(str, inputs))}; "
                                  f"pass --format json or --format npz")
        fmt = present[0]
    listed = set().union(*(names for (p, _), names in smarthome_split_lists().items() if p in spec.protocols))
    by_id: dict[str, Path] = {}
    results: list[FileResult] = []
    for path in sorted(found[fmt], key=lambda p: (p.name, str(p))):
        meta = parse_smarthome_name(path.name)
        if meta is None:
            results.append(FileResult(str(path), path.stem, "failed",
                                      reason=f"{path}: expected a file name Activity_pSS_rRR_vVV_cCC[...].{fmt}"))
        elif meta["name"] in by_id:
            results.append(FileResult(str(path), meta["name"], "skipped", reason=f"duplicate of {by_id[meta['name']]}"))
        elif meta["activity"] not in spec.class_names:
            results.append(FileResult(str(path), meta["name"], "skipped", reason=(
                f"class {meta['activity']} is not one of the {spec.num_classes} {spec.name} classes")))
        elif meta["name"] not in listed:
            results.append(FileResult(str(path), meta["name"], "skipped",
                                      reason=f"not on the official {'/'.join(spec.protocols).upper()} lists"))
        else:
            by_id[meta["name"]] = path
    if not by_id:
        why = Counter(r.reason.removeprefix(f"{r.file}: ") for r in results).most_common()
        raise ConversionError(f"no {fmt} pose file qualifies in {', '.join(map(str, inputs))}"
                              + (": " + "; ".join(f"{n} file(s): {reason}" for reason, n in why[:5])
                                 + ("; ..." if len(why) > 5 else "") if why else f" (no {fmt} files found)"))
    return list(by_id.values()), results, spec, fmt


def convert_smarthome(inputs: Sequence, output, *, dataset: str = "smarthome", fmt: str | None = None,
                      coords: str | None = None, log: Callable[[str], None] = lambda _: None, **run) -> dict[str, Any]:
    """Convert Toyota Smarthome pose files into a store at ``output``; return the report.

    ``fmt``: json | npz (default: whichever the inputs hold); ``coords``: xyz (JSON pose3d, the JSON default) or
    xy (JSON pose2d; the only choice for npz). ``run``: the fields of ``skeltools.convert.RunOptions``.
    """
    def select(workers: int):
        todo, results, spec, chosen = _select(inputs, dataset, fmt)
        chosen_coords = coords or ("xy" if chosen == "npz" else "xyz")
        if chosen == "npz" and chosen_coords != "xy":
            raise ConversionError("the keypoint npz holds 2D poses: use --coords xy")
        options = SmarthomeOptions(dataset=spec.name, fmt=chosen, coords=chosen_coords)
        log(f"{len(todo)} {chosen} files to convert as {spec.name} ({chosen_coords}) on {workers} worker(s)")
        return todo, results, spec, options, frozenset()

    return run_conversion(select, inputs, output, log=log, **run)

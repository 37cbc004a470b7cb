"""BABEL -> store, on the pipeline of ``skeltools.convert``; every sample is one 150-frame chunk at 30 fps.

``release``: the released ``{split}[_extra]_ntu_sk_{C}.npy`` ``(N, 3, 150, 25, 1)`` + ``{split}[_extra]_label_{C}.pkl``;
already normalised by BABEL, stored as they are. ``joints``: BABEL annotation JSON + per-sequence joint-position
npz files, through the reference pipeline (``readers.babel``) and 2s-AGCN ``pre_normalization`` per chunk.

Where this differs from the reference (``create_dataset.py``):

- extra annotations: the reference means to reuse the dense annotation type of a sequence but records it under the
  literal key ``'babel_sid'``; here every extra record uses its ``frame_anns`` when present, else its ``seq_anns``;
- chunks are normalised in float32 (the reference works in float64; differences are float32 rounding);
- a sequence missing from ``amass_splits.json`` is kept with no split part set (the reference raises KeyError).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

import numpy as np

from schemas import store as schema
from schemas.datasets import babel_action_index, babel_sid_splits, get_dataset
from skeltools.convert import ConversionError, FileResult, build_index, run_conversion, zero_nonfinite_bodies

SPLITS = ("train", "val", "test")
DENSE_FILES = ("train.json", "val.json", "test.json")
EXTRA_FILES = ("extra_train.json", "extra_val.json")
_RELEASE_NAME = re.compile(r"(?P<split>train|val|test)(?P<extra>_extra)?_ntu_sk_(?P<classes>\d+)\.npy")


@dataclass(frozen=True)
class _BabelStore:
    """What both input modes write: ntu25 xyz, one person, 150-frame chunks, several samples per input file."""

    dataset: str = "babel60"

    @property
    def num_classes(self) -> int:
        return int(self.dataset.removeprefix("babel"))

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        return (1, 25, 3)

    def store_attrs(self, spec) -> dict[str, Any]:
        return {"layout": "ntu25", "coords": "xyz", "persons": 1, "preset": "msg3d", "frame_rate": 30,
                "preprocessing": self.preprocessing()}

    def index(self, ok: list[FileResult], spec):
        return build_index([s for r in ok for s in r.samples], spec, "babel")


@dataclass(frozen=True)
class BabelReleaseOptions(_BabelStore):
    source: ClassVar[str] = "babel-release"

    def process(self, path: str) -> tuple[FileResult, np.ndarray | None]:
        return process_release_file(path, self)

    def report_fields(self) -> dict[str, Any]:
        return {"from": "release"}

    def preprocessing(self) -> dict[str, Any]:
        return {"steps": ["already normalised by the BABEL release (2s-AGCN pre_normalization, zaxis [0, 1], "
                          "xaxis [8, 4]); stored as released, not re-normalised"], "already_normalized": True}


@dataclass(frozen=True)
class BabelJointsOptions(_BabelStore):
    source: ClassVar[str] = "babel-joints"
    babel_json: str = ""
    joints_dir: str = ""
    fps_table: str | None = None
    extra: bool = False

    def process(self, path: str) -> tuple[FileResult, np.ndarray | None]:
        return process_sequence(path, self)

    def report_fields(self) -> dict[str, Any]:
        return {"from": "joints", "babel_json": self.babel_json, "fps_table": self.fps_table, "extra": self.extra}

    def preprocessing(self) -> dict[str, Any]:
        return {"steps": ["25 NTU joints from the 73 SMPL-H outputs (BABEL smpl_to_nturgbd)",
                          "subsampled to 30 fps as BABEL's renders", "segments cut into 150-frame chunks, "
                          "zero-padded, one sample per act_cat", "2s-AGCN pre_normalization per chunk (loop-pad, "
                          "per-frame centring on joint 1, spine to +z, shoulders to +x)",
                          f"categories with index < {self.num_classes} kept"], "already_normalized": False}


# ----------------------------------------------------------------------------------------------------------------
# --from release


def _release_rows(labels, split: str) -> list[dict]:
    return [{"sample_id": f"{seg}/{chunk}/{y}", "label": y, "length": 150, "n_persons": 1, "seg_id": seg,
             "sid": sid, "chunk_n": chunk, "anntr_id": anntr, "split": split}
            for seg, y, sid, chunk, anntr in zip(labels.seg_id, labels.label, labels.sid, labels.chunk_n,
                                                 labels.anntr_id)]


def process_release_file(path: str, options: BabelReleaseOptions) -> tuple[FileResult, np.ndarray | None]:
    """One released array and its label pickle -> ``(N * 150, 1, 25, 3)`` frames and N sample rows."""
    from skeltools.readers.babel import BabelInputError, read_release_labels

    m = _RELEASE_NAME.fullmatch(Path(path).name)
    label_path = Path(path).with_name(f"{m['split']}{m['extra'] or ''}_label_{m['classes']}.pkl")
    try:
        labels = read_release_labels(label_path)
        x = np.load(path, mmap_mode="r", allow_pickle=False)
    except (BabelInputError, OSError, ValueError) as exc:
        return FileResult(path, Path(path).stem, "failed", reason=str(exc) if isinstance(exc, BabelInputError)
                          else f"{path}: not a readable .npy ({exc})"), None
    if x.ndim != 5 or x.shape[1:] != (3, 150, 25, 1) or not np.issubdtype(x.dtype, np.floating):
        return FileResult(path, Path(path).stem, "failed",
                          reason=f"{path}: array shape {x.shape} {x.dtype}, expected (N, 3, 150, 25, 1) floats"), None
    if len(x) != len(labels.label):
        return FileResult(path, Path(path).stem, "failed",
                          reason=f"{path}: {len(x)} samples but {label_path.name} has {len(labels.label)} labels"), None
    frames = np.ascontiguousarray(np.asarray(x, np.float32).transpose(0, 2, 4, 3, 1)).reshape(-1, 1, 25, 3)
    if not np.isfinite(frames).all():
        return FileResult(path, Path(path).stem, "failed", reason=f"{path}: holds NaN or infinity"), None
    rows = _release_rows(labels, m["split"])
    return FileResult(path, Path(path).stem, "ok", length=len(frames), n_persons=1, samples=rows), frames


def _select_release(inputs: Sequence, dataset: str, extra: bool):
    classes = dataset.removeprefix("babel")
    todo, results = [], []
    for folder in map(Path, inputs):
        for split in SPLITS:
            path = folder / f"{split}{'_extra' if extra else ''}_ntu_sk_{classes}.npy"
            if path.exists():
                todo.append(path)
    if not todo:
        raise ConversionError(f"no {{train,val,test}}{'_extra' if extra else ''}_ntu_sk_{classes}.npy in "
                              f"{', '.join(map(str, inputs))}")
    return todo, results


# ----------------------------------------------------------------------------------------------------------------
# --from joints


@cache
def babel_records(babel_json: str, extra: bool) -> dict[str, list[tuple[str, dict]]]:
    """Joint-file relative path -> its (where, record) pairs in the annotation files of ``babel_json``."""
    from skeltools.readers.babel import BabelInputError, joints_relpath, read_json

    files = [Path(babel_json) / f for f in DENSE_FILES + (EXTRA_FILES if extra else ())]
    found = [f for f in files if f.exists()]
    if not found:
        raise ConversionError(f"{babel_json}: none of {', '.join(f.name for f in files)}")
    by_path: dict[str, list[tuple[str, dict]]] = {}
    for f in found:
        doc = read_json(f)
        if not isinstance(doc, dict):
            raise BabelInputError(f"{f}: expected an object of sequence records")
        for key, record in doc.items():
            feat_p = record.get("feat_p") if isinstance(record, dict) else None
            if not isinstance(feat_p, str):
                raise BabelInputError(f"{f}: record {key!r}: key 'feat_p' is missing or not a string")
            by_path.setdefault(str(joints_relpath(feat_p)), []).append((f"{f.name}[{key}]", record))
    return by_path


@cache
def _fps_table(path: str | None) -> dict[str, float]:
    from skeltools.readers.babel import read_json

    return {} if path is None else {str(k): float(v) for k, v in read_json(path).items()}


def sequence_samples(joints: np.ndarray, fps: float, records: list[tuple[str, dict]], num_classes: int,
                     ) -> tuple[list[dict], np.ndarray, list[str]]:
    """One sequence ``(T, 25, 3)`` at ``fps`` -> sample rows, their ``(N * 150, 1, 25, 3)`` normalised frames and
    notes. Raises BabelInputError for a malformed record."""
    from skeltools.normalize import msg3d_pre_normalization
    from skeltools.readers.babel import CHUNK_FRAMES, chunk_segments, parse_record, subsample_indices

    act2idx = {k: v for k, v in babel_action_index().items() if v < num_classes}
    joints30 = joints[subsample_indices(len(joints), fps)]
    rows, blocks, notes = [], [], []
    split_of = babel_sid_splits()
    for where, record in records:
        for ann in parse_record(record, where):
            for chunk in chunk_segments(joints30, ann):
                kept = [c for c in chunk.categories if c in act2idx]
                if not kept:
                    continue
                x, _ = msg3d_pre_normalization(chunk.frames[None].astype(np.float32), CHUNK_FRAMES)
                if not x.any():
                    notes.append(f"{chunk.seg_id} chunk {chunk.chunk_n}: all joints zero, dropped")
                    continue
                for cat in kept:
                    rows.append({"sample_id": f"{chunk.seg_id}/{chunk.chunk_n}/{act2idx[cat]}",
                                 "label": act2idx[cat], "length": CHUNK_FRAMES, "n_persons": 1,
                                 "seg_id": chunk.seg_id, "sid": ann.sid, "chunk_n": chunk.chunk_n,
                                 "anntr_id": ann.anntr_id, "split": split_of.get(ann.sid)})
                    blocks.append(x[0][:, None])
    frames = np.concatenate(blocks) if blocks else np.zeros((0, 1, 25, 3), np.float32)
    return rows, frames, notes


def process_sequence(path: str, options: BabelJointsOptions) -> tuple[FileResult, np.ndarray | None]:
    """One joint-position file -> its chunk samples; bad input is reported, never raised."""
    from skeltools.readers.babel import BabelInputError, load_joint_positions

    rel = Path(path).relative_to(options.joints_dir).as_posix()
    records = babel_records(options.babel_json, options.extra)[rel]
    try:
        joints, file_fps = load_joint_positions(path)
        table = _fps_table(options.fps_table)
        feat_p = next((r["feat_p"] for _, r in records if r["feat_p"] in table), None)
        fps = table[feat_p] if feat_p is not None else file_fps
        if fps is None:
            raise BabelInputError(f"{path}: no frame rate: the file has none of the keys 'fps', 'mocap_framerate', "
                                  f"'mocap_frame_rate' and the fps table has no entry for it")
        rows, frames, notes = sequence_samples(joints, fps, records, options.num_classes)
    except BabelInputError as exc:
        return FileResult(path, rel, "failed", reason=str(exc)), None
    if not rows:
        return FileResult(path, rel, "skipped", reason=f"no chunk of a BABEL-{options.num_classes} category"), None
    nonfinite = zero_nonfinite_bodies(frames)  # finite joints can overflow in pre_normalization's centring
    return (FileResult(path, rel, "ok", length=len(frames), n_persons=1, notes=notes, samples=rows,
                       nonfinite_body_frames=nonfinite), frames)


def _select_joints(inputs: Sequence, babel_json: str, extra: bool):
    if len(inputs) != 1:
        raise ConversionError("--from joints takes one joints folder")
    joints_dir = Path(inputs[0])
    todo, results = [], []
    for rel in sorted(babel_records(babel_json, extra)):
        path = joints_dir / rel
        if path.is_file():
            todo.append(path)
        else:
            results.append(FileResult(str(path), rel, "skipped", reason="no joint-position file for this sequence"))
    if not todo:
        raise ConversionError(f"none of the {len(results)} annotated sequences has a joint file under {joints_dir}")
    return todo, results


def convert_babel(inputs: Sequence, output, *, source: str = "release", dataset: str = "babel60",
                  babel_json=None, fps_table=None, extra: bool = False, log: Callable[[str], None] = lambda _: None,
                  **run) -> dict[str, Any]:
    """Convert BABEL into a store at ``output``; return the report.

    ``source="release"``: ``inputs`` are folders of released arrays and label pickles. ``source="joints"``:
    ``inputs`` is one folder of joint-position npz files laid out as ``<AMASS dir>/<subject>/<file>``, annotated by
    the JSON files in ``babel_json``; ``fps_table`` is BABEL's ``featp_2_fps.json`` (else the files' fps keys).
    ``extra`` adds the extra annotations (``extra_*.json``, or the ``_extra_`` release files). ``run``: the
    fields of ``skeltools.convert.RunOptions``.
    """
    if dataset not in ("babel60", "babel120"):
        raise ConversionError(f"{dataset} is not a BABEL dataset (babel60, babel120)")
    if source == "joints" and babel_json is None:
        raise ConversionError("--from joints needs --babel-json (the folder of BABEL's train.json, val.json, ...)")

    def select(workers: int):
        spec = get_dataset(dataset)
        if source == "release":
            todo, results = _select_release(inputs, dataset, extra)
            options = BabelReleaseOptions(dataset=dataset)
        else:
            todo, results = _select_joints(inputs, str(babel_json), extra)
            options = BabelJointsOptions(dataset=dataset, babel_json=str(babel_json), joints_dir=str(inputs[0]),
                                         fps_table=None if fps_table is None else str(fps_table), extra=extra)
        log(f"{len(todo)} files to convert as {dataset} from {source} on {workers} worker(s)")
        return todo, results, spec, options, frozenset()

    return run_conversion(select, inputs, output, log=log, **run)

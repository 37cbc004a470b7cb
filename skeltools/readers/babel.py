"""BABEL (AMASS mocap as NTU-25 joints): joint-position files, annotations, the reference chunking, release files.

Axis order everywhere: ``(T, V, C)`` frames x joints x xyz. The reference pipeline (BABEL
``action_recognition/data_gen/create_dataset.py``) is reproduced step by step in small functions: pick the 25 NTU
joints from the 73 SMPL-H outputs, subsample to 30 fps, label every 30-fps frame, cut each labelled segment into
150-frame chunks (zero-padded), one sample per category of the segment.
"""
from __future__ import annotations

import io
import json
import math
import pickle
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

# NTU slot <- SMPL-H output (52 joints + 21 vertex keypoints), BABEL dutils.smpl_to_nturgbd
SMPLH_TO_NTU = (0, 3, 12, 15, 16, 18, 20, 22, 17, 19, 21, 37, 1, 4, 7, 10, 2, 5, 8, 11, 9, 63, 64, 68, 69)
OUT_FPS = 30
CHUNK_FRAMES = 150
FPS_KEYS = ("fps", "mocap_framerate", "mocap_frame_rate")
DATASET_DIR_RENAME = {"BioMotionLab_NTroje": "BMLrub", "DFaust_67": "DFaust"}
NO_JOINTS_MESSAGE = (
    "holds SMPL-H pose parameters ('poses') but no joint positions. BABEL's NTU-25 joints come from running the "
    "licensed SMPL-H body model (MANO/AMASS download, not redistributable) on these parameters; compute them with "
    "your own licensed model (BABEL's dutils.store_ntu_jpos: SMPLH_male, betas 0, no translation) and pass files "
    "with a 'joint_pos' key (T, 219), (T, 73, 3) or (T, 25, 3), or use --from release"
)


class BabelInputError(ValueError):
    """A BABEL input that cannot be used; the message names the file and the key."""


# ----------------------------------------------------------------------------------------------------------------
# Joint positions and AMASS metadata


def _scalar(value) -> object:
    value = np.asarray(value)
    item = value.item() if value.size == 1 else value
    return item.decode() if isinstance(item, bytes) else item


def load_joint_positions(path) -> tuple[np.ndarray, float | None]:
    """``(T, 25, 3)`` float64 NTU-order joints at the file's own frame rate, and that rate if the file has one."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = set(npz.files)
            if "joint_pos" not in keys:
                if "poses" in keys:
                    raise BabelInputError(f"{path}: {NO_JOINTS_MESSAGE}")
                raise BabelInputError(f"{path}: key 'joint_pos' is missing (keys: {', '.join(sorted(keys)) or 'none'})")
            joints = np.asarray(npz["joint_pos"])
            fps = next((float(_scalar(npz[k])) for k in FPS_KEYS if k in keys), None)
    except (OSError, ValueError, TypeError) as exc:
        if isinstance(exc, BabelInputError):
            raise
        raise BabelInputError(f"{path}: not a readable npz ({exc})") from None
    if joints.ndim == 2 and joints.shape[1] == 219:
        joints = joints.reshape(len(joints), 73, 3)
    if joints.ndim != 3 or joints.shape[1:] not in ((73, 3), (25, 3)) or len(joints) == 0:
        raise BabelInputError(f"{path}: key 'joint_pos' has shape {joints.shape}, expected (T, 219), (T, 73, 3) "
                              "or (T, 25, 3) with T > 0")
    if not np.issubdtype(joints.dtype, np.number) or not np.isfinite(joints).all():
        raise BabelInputError(f"{path}: key 'joint_pos' holds non-numbers, NaN or infinity")
    if joints.shape[1] == 73:
        joints = joints[:, SMPLH_TO_NTU]
    if fps is not None and not fps >= 1:
        raise BabelInputError(f"{path}: frame rate {fps} is not >= 1")
    return joints.astype(np.float64), fps


@dataclass(frozen=True)
class AmassMeta:
    frames: int
    fps: float | None
    gender: str | None
    keys: tuple[str, ...]
    has_joints: bool


def amass_metadata(path) -> AmassMeta:
    """Frame count, frame rate and gender (str or bytes in the file) of an AMASS npz, joints or not."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = tuple(sorted(npz.files))
            frames = next((len(npz[k]) for k in ("poses", "trans", "joint_pos") if k in keys), 0)
            fps = next((float(_scalar(npz[k])) for k in FPS_KEYS if k in keys), None)
            gender = str(_scalar(npz["gender"])) if "gender" in keys else None
    except (OSError, ValueError) as exc:
        raise BabelInputError(f"{path}: not a readable npz ({exc})") from None
    return AmassMeta(frames, fps, gender, keys, "joint_pos" in keys)


def joints_relpath(feat_p: str) -> PurePosixPath:
    """BABEL ``feat_p`` (``<dir>/<AMASS dir>/<subject>/<file>``) -> the joint file's path under the joints folder,
    as BABEL looks it up: the AMASS dir (renamed BioMotionLab_NTroje -> BMLrub, DFaust_67 -> DFaust), subject, file."""
    parts = PurePosixPath(feat_p).parts
    if len(parts) < 3:
        raise BabelInputError(f"feat_p {feat_p!r} has fewer than 3 components")
    return PurePosixPath(DATASET_DIR_RENAME.get(parts[-3], parts[-3]), *parts[-2:])


# ----------------------------------------------------------------------------------------------------------------
# The reference pipeline


def subsample_indices(num_frames: int, fps: float) -> np.ndarray:
    """Frame indices that bring a ``fps`` sequence to 30 fps, as BABEL renders did.

    When ``int(fps)`` is a multiple of 30: every ``fps / 30``-th frame (numpy's integer ``arange``). Otherwise, per
    whole second of ``int(fps)`` frames, the offsets ``floor(fps / 30 * k)``, k = 0..29, then the partial last
    second's offsets that fall inside the sequence.
    """
    per_second = int(fps)
    if per_second % OUT_FPS == 0:
        return np.arange(0, num_frames, fps / OUT_FPS, dtype=int)
    offsets = np.floor(fps / OUT_FPS * np.arange(OUT_FPS)).astype(int)
    seconds = num_frames // per_second
    idx = (np.arange(seconds)[:, None] * per_second + offsets).ravel()
    if num_frames % per_second:
        last = seconds * per_second + offsets
        idx = np.concatenate([idx, last[last < num_frames]])
    return idx


@dataclass(frozen=True)
class Segment:
    seg_id: str
    act_cat: tuple[str, ...] | None
    start_t: float
    end_t: float


@dataclass(frozen=True)
class Annotation:
    """One annotator's labels of one sequence."""

    sid: int
    dur: float
    anntr_id: str
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class Chunk:
    seg_id: str
    chunk_n: int
    frames: np.ndarray  # (150, 25, 3), zero-padded after ``length`` frames
    length: int
    categories: tuple[str, ...]


def frame_labels(segments: tuple[Segment, ...], dur: float) -> list[set[str]]:
    """The categories of every 30-fps frame n < int(30 dur): those of each segment with start <= n/30 < end."""
    labels: list[set[str]] = [set() for _ in range(int(OUT_FPS * dur))]
    for n, frame in enumerate(labels):
        t = n / OUT_FPS
        for seg in segments:
            if seg.act_cat is not None and seg.start_t <= t < seg.end_t:
                frame.update(seg.act_cat)
    return labels


def chunk_segments(joints30: np.ndarray, annotation: Annotation) -> list[Chunk]:
    """Cut every labelled segment of ``joints30`` ``(T, 25, 3)`` into 150-frame chunks (the last zero-padded).

    A chunk is dropped when the segment's first category labels none of its frames (a segment shorter than one
    frame, or frames past ``int(30 dur)``).
    """
    labels = frame_labels(annotation.segments, annotation.dur)
    chunks = []
    for seg in annotation.segments:
        if not seg.act_cat:
            continue
        first = int(OUT_FPS * seg.start_t)
        seg_x = joints30[first:int(OUT_FPS * seg.end_t)]
        for n in range(math.ceil(len(seg_x) / CHUNK_FRAMES)):
            x = seg_x[n * CHUNK_FRAMES:(n + 1) * CHUNK_FRAMES]
            frames = range(first + n * CHUNK_FRAMES, first + n * CHUNK_FRAMES + len(x))
            if not any(seg.act_cat[0] in labels[f] for f in frames if f < len(labels)):
                continue
            padded = np.zeros((CHUNK_FRAMES, *x.shape[1:]), x.dtype)
            padded[:len(x)] = x
            chunks.append(Chunk(seg.seg_id, n, padded, len(x), tuple(seg.act_cat)))
    return chunks


# ----------------------------------------------------------------------------------------------------------------
# Annotation JSON


def _number(record: dict, key: str, where: str) -> float:
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BabelInputError(f"{where}: key {key!r} is {value!r}, expected a number")
    return float(value)


def parse_labels(ann: dict, dur: float, whole: bool, where: str) -> tuple[Segment, ...]:
    """The segments of one ``seq_ann``/``frame_ann`` block; ``whole``: sequence labels spanning [0, dur]."""
    if not isinstance(ann, dict) or not isinstance(ann.get("labels"), list):
        raise BabelInputError(f"{where}: key 'labels' is missing or not a list")
    segments = []
    for i, label in enumerate(ann["labels"]):
        at = f"{where}.labels[{i}]"
        if not isinstance(label, dict):
            raise BabelInputError(f"{at}: not an object")
        cats = label.get("act_cat")
        if cats is not None and not (isinstance(cats, list) and all(isinstance(c, str) for c in cats)):
            raise BabelInputError(f"{at}: key 'act_cat' is {cats!r}, expected a list of strings or null")
        start, end = (0.0, dur) if whole else (_number(label, "start_t", at), _number(label, "end_t", at))
        segments.append(Segment(str(label.get("seg_id")), None if cats is None else tuple(cats), start, end))
    return tuple(segments)


def parse_record(record: dict, where: str) -> list[Annotation]:
    """The annotations of one BABEL record: dense (``frame_ann``, else ``seq_ann``) or extra (each annotator of
    ``frame_anns``, else of ``seq_anns``)."""
    if not isinstance(record, dict):
        raise BabelInputError(f"{where}: not an object")
    sid = record.get("babel_sid")
    if isinstance(sid, bool) or not isinstance(sid, int):
        raise BabelInputError(f"{where}: key 'babel_sid' is {sid!r}, expected an integer")
    dur = _number(record, "dur", where)
    if "frame_anns" in record or "seq_anns" in record:
        kind = "frame_anns" if record.get("frame_anns") else "seq_anns"
        blocks = record.get(kind) or []
        if not isinstance(blocks, list):
            raise BabelInputError(f"{where}: key {kind!r} is not a list")
        return [Annotation(sid, dur, str(b.get("anntr_id") if isinstance(b, dict) else None),
                           parse_labels(b, dur, kind == "seq_anns", f"{where}.{kind}[{i}]"))
                for i, b in enumerate(blocks)]
    kind = "frame_ann" if record.get("frame_ann") is not None else "seq_ann"
    block = record.get(kind)
    anntr = block.get("anntr_id") if isinstance(block, dict) else None
    return [Annotation(sid, dur, str(anntr), parse_labels(block, dur, kind == "seq_ann", f"{where}.{kind}"))]


# ----------------------------------------------------------------------------------------------------------------
# Released arrays and label pickles


class _PlainUnpickler(pickle.Unpickler):
    """Builtins and numpy scalars only: a label pickle never runs code."""

    ALLOWED = {("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"), ("numpy", "dtype"),
               ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("builtins", "set"), ("collections", "Counter")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


@dataclass(frozen=True)
class ReleaseLabels:
    seg_id: list[str]
    label: list[int]
    sid: list[int]
    chunk_n: list[int]
    anntr_id: list[str]


def read_release_labels(path) -> ReleaseLabels:
    """``{split}_label_{C}.pkl`` = ``(seg_ids, (Y1, sid, chunk_n, anntr_id))``."""
    try:
        seg_ids, (y1, sid, chunk_n, anntr) = _PlainUnpickler(io.BytesIO(Path(path).read_bytes())).load()
        fields = ReleaseLabels([str(s) for s in seg_ids], [int(v) for v in y1], [int(v) for v in sid],
                               [int(v) for v in chunk_n], [str(a) for a in anntr])
    except (OSError, pickle.UnpicklingError, ValueError, TypeError, EOFError) as exc:
        raise BabelInputError(f"{path}: expected (seg_id, (Y1, sid, chunk_n, anntr_id)) ({exc})") from None
    lengths = {len(getattr(fields, k)) for k in ("seg_id", "label", "sid", "chunk_n", "anntr_id")}
    if len(lengths) != 1:
        raise BabelInputError(f"{path}: the label lists differ in length")
    return fields


def read_json(path) -> object:
    try:
        return json.loads(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise BabelInputError(f"{path}: not readable JSON ({exc})") from None

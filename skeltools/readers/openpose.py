"""OpenPose per-frame JSON and Kinetics-Skeleton JSON -> per-frame person arrays, person selection, normalization.

Array conventions: one frame's people are ``(P, V, 3)`` float32 with channels x, y, confidence; a video's
selected people are ``(T, M, V, 3)``; a video's frames before selection are :class:`Frames` (ragged). Undetected
joints are ``0, 0, 0`` as OpenPose writes them. Files are read by the numba scanner of ``jsonscan`` with ``json`` as
the fallback, person selection runs in serial numba kernels (safe in forked workers).
"""
from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from numba import njit


from skeltools import jit
from skeltools.readers import jsonscan, smallfiles

POSE_KEYS = ("pose_keypoints_2d", "pose_keypoints")  # the second is the key before OpenPose 1.2 (Feb 2018)
MODEL_JOINTS = {"coco18": 18, "body25": 25, "body25b": 25}
STGCN_PERSONS_IN = 5  # st-gcn's feeder reads only the first 5 skeletons of a frame

_OPENPOSE_NAME = re.compile(r"^(.*)_(\d{12})_keypoints\.json$")
_LAST_INT = re.compile(r"^(.*?)[._-]?(\d+)(?:_keypoints)?\.json$")


#: Frame numbers are int32 (a frame number beyond is a wrong value, not a long video).
FRAME_NUMBER_LIMIT = 2**31
#: The longest timeline a video may span, gaps included (2.4 hours at 30 fps; about 100 MB per video at 2 persons
#: of 25 joints): frame numbers further apart are refused before anything per frame is allocated.
MAX_TIMELINE_FRAMES = 2**18


class OpenPoseError(ValueError):
    """A malformed input file; the message names the file and the key."""


class TimelineError(OpenPoseError):
    """Frame numbers that cannot be placed on a time axis; ``number`` is the offending frame number."""

    def __init__(self, message: str, number: int):
        super().__init__(message)
        self.number = number


def folder_videos(names: Sequence[str]) -> dict[str, tuple[list[int], list[str]]]:
    """One folder's per-frame file names -> video prefix -> (frame numbers, names), in frame order (by number,
    then name), as :func:`split_frame_name` splits them."""
    names = sorted(names)
    one = _one_openpose_video(names)
    if one is not None:
        return one
    videos: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for name in names:
        prefix, number = split_frame_name(name)
        videos[prefix].append((number, name))
    return {prefix: ([n for n, _ in frames], [name for _, name in frames])
            for prefix, frames in ((prefix, sorted(frames)) for prefix, frames in videos.items())}


_SUFFIX = "_keypoints.json"
_OPENPOSE_TAIL = len("_000000000000" + _SUFFIX)


def _one_openpose_video(names: list[str]) -> dict[str, tuple[list[int], list[str]]] | None:
    """:func:`folder_videos` of sorted ``names`` that are all ``<prefix>_<12 digits>_keypoints.json`` of one
    ASCII prefix (OpenPose's output for one video), else None. The names then have one length: their bytes form a
    matrix checked column-wise, and fixed-width numbers sort as the names do."""
    width = len(names[0]) if names else 0
    if width < _OPENPOSE_TAIL or not names[0].endswith(_SUFFIX):
        return None
    raw = "".join(names).encode("utf-8")
    if len(raw) != width * len(names) or b"\n" in raw:  # not ASCII, or lengths differ, or a newline
        return None
    chars = np.frombuffer(raw, np.uint8).reshape(len(names), width)
    number = np.s_[width - _OPENPOSE_TAIL + 1:width - len(_SUFFIX)]  # the 12 digits' columns
    digits, fixed = chars[:, number], np.delete(chars, number, axis=1)
    if chars[0, width - _OPENPOSE_TAIL] != ord("_") or not (fixed == fixed[0]).all() \
            or not ((digits >= ord("0")) & (digits <= ord("9"))).all():
        return None
    numbers = (digits - ord("0")).astype(np.int64) @ 10 ** np.arange(11, -1, -1, dtype=np.int64)
    return {names[0][:width - _OPENPOSE_TAIL]: (numbers.tolist(), names)}


def split_frame_name(name: str) -> tuple[str, int]:
    """A per-frame file name -> (video prefix, frame number).

    ``video_000000000003_keypoints.json`` -> ("video", 3) (OpenPose's 12-digit counter);
    ``cam01.0037.json`` -> ("cam01", 37) (the last integer of the name, as other tools rename);
    ``a_resized_keypoints.json`` -> ("a_resized", 0): no number, a one-frame video (OpenPose run on an image).
    """
    m = _OPENPOSE_NAME.match(name) or _LAST_INT.match(name)
    if m is None:
        return name.removesuffix(".json").removesuffix("_keypoints"), 0
    return m.group(1), int(m.group(2))


@dataclass
class Frames:
    """The people of consecutive frames, ragged: ``points (N, V, 3)`` frame after frame, ``counts (T,)`` people in
    each frame. ``frames[t]`` is frame t's ``(P, V, 3)``."""

    points: np.ndarray
    counts: np.ndarray

    @classmethod
    def of(cls, people, num_joints: int | None = None) -> "Frames":
        """From a list of per-frame ``(P, V, 3)`` arrays (``num_joints`` is needed only when it is empty)."""
        if isinstance(people, Frames):
            return people
        v = people[0].shape[1] if len(people) else num_joints
        points = np.concatenate(people) if len(people) else np.zeros((0, v, 3), np.float32)
        return cls(np.ascontiguousarray(points, dtype=np.float32), np.array([len(p) for p in people], np.int64))

    @property
    def starts(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.counts)])

    def __len__(self) -> int:
        return len(self.counts)

    def __getitem__(self, t: int) -> np.ndarray:
        starts = self.starts
        return self.points[starts[t]:starts[t + 1]]

    def __iter__(self):
        return iter(np.split(self.points, np.cumsum(self.counts)[:-1]) if len(self.counts) else [])


def _read_bytes(path) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise OpenPoseError(f"{path}: not readable JSON ({exc})") from None


def _load(path, raw: bytes) -> dict:
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OpenPoseError(f"{path}: not readable JSON ({exc})") from None
    except RecursionError:
        raise OpenPoseError(f"{path}: not readable JSON (nested too deeply)") from None
    if not isinstance(doc, dict):
        raise OpenPoseError(f"{path}: expected a JSON object at the top level")
    return doc


def _floats(path, key: str, values, length: int) -> np.ndarray:
    if not isinstance(values, list) or len(values) != length:
        n = len(values) if isinstance(values, list) else type(values).__name__
        raise OpenPoseError(f"{path}: {key!r} has {n} values, expected {length}")
    try:
        return np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError):
        raise OpenPoseError(f"{path}: {key!r} holds a value that is not a number") from None


def read_openpose_frame(path, num_joints: int) -> np.ndarray:
    """One OpenPose per-frame JSON -> people ``(P, V, 3)``; ``person_id`` is ignored (OpenPose writes -1)."""
    return parse_openpose_frames([_read_bytes(path)], num_joints, [path])[0]


def read_openpose_video(paths: Sequence, num_joints: int, stats: np.ndarray | None = None,
                        folder: str | None = None) -> Frames:
    """The per-frame files of one video, in the given order -> their people; the first bad file raises.

    Where libc is at hand, one numba call reads (``smallfiles``) and scans them all; a file it cannot read or
    refuses is read again with ``open`` and ``json``, which word the errors. ``stats``, an ``(F, 2)`` int64 array,
    receives the files' ``smallfiles.file_stats`` as they were before reading, also when a file raises.
    ``folder``: the folder every path is in (``os.path.join(folder, name)``): files are opened relative to it.
    """
    stats = np.empty((len(paths), 2), np.int64) if stats is None else stats
    if smallfiles.AVAILABLE:
        names, starts = smallfiles.encode_paths(paths)
        fd = smallfiles.CWD if folder is None else smallfiles.open_folder(folder)
        try:
            skip = 0 if fd == smallfiles.CWD else len(os.fsencode(os.path.join(folder, "")))
            found, counts, points = jit.call(_frames_from_files, fd, names, starts + skip, num_joints, stats)
        finally:
            smallfiles.close_folder(fd)
        return _with_fallbacks(found, counts, points, num_joints, paths, lambda i: _read_bytes(paths[i]))
    stats[:] = smallfiles.file_stats(paths)
    raws = []
    for path in paths:
        try:
            raws.append(_read_bytes(path))
        except OpenPoseError:
            parse_openpose_frames(raws, num_joints, paths[:len(raws)])  # an earlier bad file is reported first
            raise
    return parse_openpose_frames(raws, num_joints, paths)


def parse_openpose_frames(raws: Sequence[bytes], num_joints: int, paths: Sequence) -> Frames:
    """Per-frame files' bytes -> their people; ``paths`` name them in errors.

    One numba call scans all of them (see ``jsonscan``); a file it refuses is read with ``json``, which also words
    the errors.
    """
    bounds = np.cumsum([0] + [len(raw) for raw in raws])
    found, counts, points = jit.call(_frames_from_bytes, np.frombuffer(b"".join(raws), np.uint8), bounds, num_joints)
    return _with_fallbacks(found, counts, points, num_joints, paths, lambda i: raws[i])


def _with_fallbacks(found, counts, points, num_joints: int, paths: Sequence, raw_of) -> Frames:
    """The numba readers' frames, with each file they did not read (``found`` false) read by ``json`` from
    ``raw_of(i)``'s bytes, in order: the first bad file raises."""
    if found.all():
        return Frames(points, counts)
    people = list(Frames(points, counts))
    for i in np.flatnonzero(~found):
        people[i] = _frame_from_json(paths[i], _load(paths[i], raw_of(i)), num_joints)
    return Frames.of(people, num_joints)


@njit(cache=True, nogil=True)
def _frames_from_bytes(buf, bounds, num_joints):
    """Files ``buf[bounds[i]:bounds[i + 1]]`` -> (read (F,) bool, people per file (F,), points (N, V, 3)); a file
    not read has no people here."""
    n_files = bounds.size - 1
    found = np.zeros(n_files, np.bool_)
    counts = np.zeros(n_files, np.int64)
    parts = [np.zeros((0, num_joints, 3), np.float32)]
    for i in range(n_files):
        found[i], people = _frame_people(buf[bounds[i]:bounds[i + 1]], num_joints)
        counts[i] = people.shape[0]
        parts.append(people)
    return found, counts, _concatenate(parts, counts.sum(), num_joints)


@njit(cache=True, nogil=True)
def _frames_from_files(folder, names, starts, num_joints, stats):
    """The same for the files named in ``names`` from ``starts`` (see ``smallfiles.encode_paths``), relative to the
    open ``folder`` (or ``smallfiles.CWD``), each read into one scratch buffer; a file that cannot be read is not
    found. ``stats`` (F, 2) receives their sizes and times."""
    n_files = starts.size - 1
    found = np.zeros(n_files, np.bool_)
    counts = np.zeros(n_files, np.int64)
    parts = [np.zeros((0, num_joints, 3), np.float32)]
    buf = np.empty(smallfiles.SCRATCH_BYTES, np.uint8)
    stat = smallfiles.stat_buffer()
    for i in range(n_files):
        buf, size = smallfiles.read_file(folder, names, starts[i], buf, stat, stats[i])
        if size >= 0:
            found[i], people = _frame_people(buf[:size], num_joints)
            counts[i] = people.shape[0]
            parts.append(people)
    return found, counts, _concatenate(parts, counts.sum(), num_joints)


@njit(cache=True, nogil=True)
def _frame_people(raw, num_joints):
    """One per-frame file's bytes -> (found, people ``(P, V, 3)``); not found (and no people) when the scanner
    refuses it."""
    ok, count, kind, pos, stop, after, value, ival, flags = jsonscan.scan(raw)
    if not ok:
        return False, np.zeros((0, num_joints, 3), np.float32)
    return _frame_from_tape(raw, count, kind, pos, stop, after, value, ival, flags, num_joints)


@njit(cache=True, nogil=True)
def _concatenate(parts, total, num_joints):
    points = np.empty((total, num_joints, 3), np.float32)
    start = 0
    for part in parts:
        points[start:start + part.shape[0]] = part
        start += part.shape[0]
    return points


def _frame_from_json(path, doc: dict, num_joints: int) -> np.ndarray:
    people = doc.get("people")
    if not isinstance(people, list):
        hint = " (a Kinetics-Skeleton file: use --format kinetics)" if "data" in doc else ""
        raise OpenPoseError(f"{path}: missing key 'people'{hint}")
    out = np.zeros((len(people), num_joints, 3), np.float32)
    for p, person in enumerate(people):
        key = next((k for k in POSE_KEYS if isinstance(person, dict) and k in person), None)
        if key is None:
            raise OpenPoseError(f"{path}: people[{p}] has no 'pose_keypoints_2d' (or legacy 'pose_keypoints')")
        values = person[key]
        if isinstance(values, list) and len(values) != 3 * num_joints:
            fits = [m for m, v in MODEL_JOINTS.items() if 3 * v == len(values)]
            hint = f" (fits --model {'/'.join(fits)})" if fits else " (fits no model)"
            raise OpenPoseError(f"{path}: people[{p}].{key} has {len(values)} values, expected "
                                f"{3 * num_joints}{hint}")
        out[p] = _floats(path, f"people[{p}].{key}", values, 3 * num_joints).reshape(num_joints, 3)
    return out


_PEOPLE, _POSE_2D, _POSE_LEGACY = (jsonscan.key_bytes(k) for k in ("people", *POSE_KEYS))
_DATA, _LABEL_INDEX, _LABEL, _FRAME_INDEX, _SKELETON, _POSE, _SCORE = (
    jsonscan.key_bytes(k) for k in ("data", "label_index", "label", "frame_index", "skeleton", "pose", "score"))


@njit(cache=True, nogil=True)
def _member(buf, kind, pos, stop, after, flags, obj, key):
    """The value token of ``key`` in object token ``obj``: -1 if absent, -2 if given twice."""
    found = -1
    i = obj + 1
    while i < after[obj]:
        if jsonscan.is_key(buf, pos, stop, flags, i, key):
            if found >= 0:
                return -2
            found = i + 1
        i = after[i + 1]
    return found


@njit(cache=True, nogil=True)
def _frame_from_tape(buf, count, kind, pos, stop, after, value, ival, flags, num_joints):
    """A per-frame file's tape -> (found, people ``(P, V, 3)``); found is False when json must read it."""
    empty = np.zeros((0, num_joints, 3), np.float32)
    if count == 0 or kind[0] != jsonscan.OBJECT:
        return False, empty
    people = _member(buf, kind, pos, stop, after, flags, 0, _PEOPLE)
    if people < 0 or kind[people] != jsonscan.ARRAY:
        return False, empty
    n = 0
    i = people + 1
    while i < after[people]:
        n += 1
        i = after[i]
    out = np.empty((n, num_joints, 3), np.float32)
    i = people + 1
    for p in range(n):
        if kind[i] != jsonscan.OBJECT:
            return False, empty
        values = _member(buf, kind, pos, stop, after, flags, i, _POSE_2D)
        if values == -1:
            values = _member(buf, kind, pos, stop, after, flags, i, _POSE_LEGACY)
        if values < 0 or not jsonscan.exact_numbers(kind, after, flags, values, 3 * num_joints):
            return False, empty
        for j in range(num_joints):
            for c in range(3):
                out[p, j, c] = value[values + 1 + 3 * j + c]
        i = after[i]
    return True, out


@dataclass
class KineticsVideo:
    frame_index: np.ndarray  # (K,) int, as written
    frames: Frames  # the K entries' people, in file order
    label_index: int | None  # None when absent or an empty string
    label: str | None = None  # the class name the file gives (``label``), if a non-empty string

    @property
    def people(self) -> list[np.ndarray]:
        """Per entry ``(P_k, V, 3)``."""
        return list(self.frames)


def read_kinetics_video(path, num_joints: int = 18) -> KineticsVideo:
    """One Kinetics-Skeleton JSON (``data[].frame_index``, ``data[].skeleton[].pose/score``).

    The numba scanner reads the common case; a file it refuses is read with ``json``, which also words the errors.
    """
    return parse_kinetics_video(_read_bytes(path), num_joints, path)


def parse_kinetics_video(raw: bytes, num_joints: int = 18, path="<bytes>") -> KineticsVideo:
    """:func:`read_kinetics_video` on a file's bytes; ``path`` names it in errors."""
    buf = np.frombuffer(raw, np.uint8)
    ok, count, *tape = jit.call(jsonscan.scan, buf)
    if ok:
        found, index, counts, points, label, name = jit.call(_kinetics_from_tape, buf, count, *tape, num_joints)
        if found:
            text = json.loads(raw[label[0]:label[1]]) if label[0] >= 0 else None
            name = json.loads(raw[name[0]:name[1]]) if name[0] >= 0 else None
            return KineticsVideo(index, Frames(points, counts), _label(path, text), name or None)
    return _kinetics_from_json(path, _load(path, raw), num_joints)


def _label(path, value) -> int | None:
    try:
        return parse_label(value)
    except ValueError as exc:
        raise OpenPoseError(f"{path}: 'label_index': {exc}") from None


def _kinetics_from_json(path, doc: dict, num_joints: int) -> KineticsVideo:
    data = doc.get("data")
    if not isinstance(data, list):
        hint = " (an OpenPose per-frame file: use --format frames)" if "people" in doc else ""
        raise OpenPoseError(f"{path}: missing key 'data'{hint}")
    index, people = [], []
    for k, frame in enumerate(data):
        if not isinstance(frame, dict) or not isinstance(frame.get("frame_index"), int):
            raise OpenPoseError(f"{path}: data[{k}] has no integer 'frame_index'")
        if not -FRAME_NUMBER_LIMIT <= frame["frame_index"] < FRAME_NUMBER_LIMIT:
            raise OpenPoseError(f"{path}: data[{k}].frame_index is {frame['frame_index']}, expected a frame number "
                                f"in -2^31..2^31-1")
        skeletons = frame.get("skeleton")
        if not isinstance(skeletons, list):
            raise OpenPoseError(f"{path}: data[{k}] has no 'skeleton' list")
        frame_people = np.zeros((len(skeletons), num_joints, 3), np.float32)
        for p, skel in enumerate(skeletons):
            for key in ("pose", "score"):
                if not isinstance(skel, dict) or key not in skel:
                    raise OpenPoseError(f"{path}: data[{k}].skeleton[{p}] has no {key!r}")
            where = f"data[{k}].skeleton[{p}]"
            frame_people[p, :, :2] = _floats(path, f"{where}.pose", skel["pose"], 2 * num_joints).reshape(-1, 2)
            frame_people[p, :, 2] = _floats(path, f"{where}.score", skel["score"], num_joints)
        index.append(frame["frame_index"])
        people.append(frame_people)
    label = _label(path, doc.get("label_index"))
    name = doc.get("label") if isinstance(doc.get("label"), str) else None
    return KineticsVideo(np.asarray(index, dtype=np.int64), Frames.of(people, num_joints), label, name)


@njit(cache=True, nogil=True)
def _kinetics_from_tape(buf, count, kind, pos, stop, after, value, ival, flags, num_joints):
    """A Kinetics-Skeleton file's tape -> (found, frame_index (K,), people per entry (K,), points (N, V, 3),
    (start, stop) of the label_index value or -1, (start, stop) of the label string or -1); found is False when
    json must read it."""
    v = num_joints
    label = np.full(2, -1, np.int64)
    name = np.full(2, -1, np.int64)
    none = (False, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, v, 3), np.float32), label, name)
    if count == 0 or kind[0] != jsonscan.OBJECT:
        return none
    data = _member(buf, kind, pos, stop, after, flags, 0, _DATA)
    lab = _member(buf, kind, pos, stop, after, flags, 0, _LABEL_INDEX)
    text = _member(buf, kind, pos, stop, after, flags, 0, _LABEL)
    if data < 0 or kind[data] != jsonscan.ARRAY or lab == -2 or text == -2:
        return none
    if lab >= 0:
        if kind[lab] == jsonscan.OBJECT or kind[lab] == jsonscan.ARRAY:
            return none
        label[0], label[1] = pos[lab], stop[lab]
    if text >= 0 and kind[text] == jsonscan.STRING:
        name[0], name[1] = pos[text], stop[text]
    index = np.empty(count, np.int64)
    counts = np.empty(count, np.int64)
    points = np.empty((count // (3 * v) + 1, v, 3), np.float32)
    k = n = 0
    f = data + 1
    while f < after[data]:
        if kind[f] != jsonscan.OBJECT:
            return none
        fi = _member(buf, kind, pos, stop, after, flags, f, _FRAME_INDEX)
        sk = _member(buf, kind, pos, stop, after, flags, f, _SKELETON)
        if (fi < 0 or sk < 0 or kind[fi] != jsonscan.NUMBER or flags[fi] & (jsonscan.INTEGER | jsonscan.EXACT)
                != (jsonscan.INTEGER | jsonscan.EXACT) or kind[sk] != jsonscan.ARRAY
                or not -FRAME_NUMBER_LIMIT <= ival[fi] < FRAME_NUMBER_LIMIT):
            return none
        index[k] = ival[fi]
        counts[k] = 0
        s = sk + 1
        while s < after[sk]:
            if kind[s] != jsonscan.OBJECT:
                return none
            pose = _member(buf, kind, pos, stop, after, flags, s, _POSE)
            score = _member(buf, kind, pos, stop, after, flags, s, _SCORE)
            if (pose < 0 or score < 0 or not jsonscan.exact_numbers(kind, after, flags, pose, 2 * v)
                    or not jsonscan.exact_numbers(kind, after, flags, score, v)):
                return none
            for j in range(v):
                points[n, j, 0] = value[pose + 1 + 2 * j]
                points[n, j, 1] = value[pose + 2 + 2 * j]
                points[n, j, 2] = value[score + 1 + j]
            n += 1
            counts[k] += 1
            s = after[s]
        k += 1
        f = after[f]
    return True, index[:k].copy(), counts[:k].copy(), points[:n].copy(), label, name


def parse_label(value) -> int | None:
    """A label index as written (int, digit string, "" or missing) -> int, or None for unlabelled."""
    if isinstance(value, bool) or value is None or value == "":
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise ValueError(f"label {value!r} is not an integer")



def timeline(numbers, people, num_joints: int) -> Frames:
    """Place frames numbered ``numbers`` (any base, gaps allowed) on a time axis starting at the smallest number.

    ``people``: the numbered frames' people (a list of ``(P, V, 3)`` or :class:`Frames`). A number missing in
    between gives a frame with nobody, so 0-based and 1-based numbering both keep their first frame and the
    spacing of the rest. A number given twice, outside -2^31..2^31-1, or more than ``MAX_TIMELINE_FRAMES`` after
    the first raises :class:`TimelineError` (before anything per frame is allocated).
    """
    frames = Frames.of(people, num_joints)
    try:
        numbers = np.asarray(numbers, dtype=np.int64)
    except OverflowError:  # Python ints beyond int64 (from a file name): refused below
        numbers = np.asarray(numbers, dtype=object)
    if len(numbers) == 0:
        return Frames(frames.points[:0], np.zeros(0, np.int64))
    wild = numbers[(numbers < -FRAME_NUMBER_LIMIT) | (numbers >= FRAME_NUMBER_LIMIT)]
    if len(wild):
        raise TimelineError(f"frame number {int(wild[0])} is outside -2^31..2^31-1", int(wild[0]))
    t = numbers - numbers.min()
    if t.max() >= MAX_TIMELINE_FRAMES:
        last = int(numbers[np.argmax(t)])
        raise TimelineError(f"frame number {last} is {int(t.max())} frames after the first ({int(numbers.min())}); "
                            f"a video may span at most {MAX_TIMELINE_FRAMES} frames (a wrong frame number?)", last)
    counts = np.bincount(t)
    if (counts > 1).any():
        twice = int(numbers.min() + np.argmax(counts > 1))
        raise TimelineError(f"frame number {twice} appears twice", twice)
    placed = np.zeros(len(counts), np.int64)
    placed[t] = frames.counts
    points = frames.points
    if (np.diff(t) < 0).any():  # written out of order: move each frame's people to its time
        starts = frames.starts
        points = points[np.concatenate([np.arange(starts[k], starts[k + 1]) for k in np.argsort(t)])]
    return Frames(points, placed)


@njit(cache=True, nogil=True)
def _pairwise_sum(x):
    """numpy's float32 add.reduce of ``x`` (its pairwise summation, 8 accumulators), for identical decisions."""
    n = x.size
    if n < 8:
        res = np.float32(0.0)
        for i in range(n):
            res += x[i]
        return res
    r = x[:8].copy()
    i = 8
    while i < n - n % 8:
        for j in range(8):
            r[j] += x[i + j]
        i += 8
    res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    while i < n:
        res += x[i]
        i += 1
    return res


@njit(cache=True, nogil=True)
def _scores(points):
    """Summed joint confidence of each person: ``(N, V, 3) -> (N,)`` float32."""
    out = np.empty(points.shape[0], np.float32)
    for i in range(points.shape[0]):
        out[i] = _pairwise_sum(np.ascontiguousarray(points[i, :, 2]))
    return out


@njit(cache=True, nogil=True)
def _select_stgcn(points, counts, max_persons, persons_in):
    v = points.shape[1]
    out = np.zeros((counts.size, max_persons, v, 3), np.float32)
    scores = _scores(points)
    start = 0
    for t in range(counts.size):
        p = min(counts[t], persons_in)
        order = np.argsort(-scores[start:start + p], kind="mergesort")[:max_persons]
        for m in range(order.size):
            out[t, m] = points[start + order[m]]
        start += counts[t]
    return out


def select_stgcn(frames, max_persons: int) -> np.ndarray:
    """The st-gcn reference: per frame, the first 5 people sorted by summed joint score, top ``max_persons`` kept.

    The sort is per frame, so identities can swap between frames (reproduced on purpose). ``frames``: a list of
    ``(P, V, 3)`` or :class:`Frames`. -> (T, M, V, 3)
    """
    frames = Frames.of(frames)
    return jit.call(_select_stgcn, frames.points, frames.counts, max_persons, STGCN_PERSONS_IN)


@njit(cache=True, nogil=True)
def _box_size(pose):
    """Diagonal of the box around the joints seen in ``pose`` ``(V, 3)``; 0 with fewer than 2 seen.

    NaN propagates as in numpy's min/max."""
    lo = np.full(2, np.inf, np.float32)
    hi = np.full(2, -np.inf, np.float32)
    seen = 0
    for j in range(pose.shape[0]):
        if pose[j, 2] > 0:
            seen += 1
            for c in range(2):
                x = pose[j, c]
                if x < lo[c] or x != x:
                    lo[c] = x if lo[c] == lo[c] else lo[c]
                if x > hi[c] or x != x:
                    hi[c] = x if hi[c] == hi[c] else hi[c]
    if seen < 2:
        return np.float32(0.0)
    d0, d1 = hi[0] - lo[0], hi[1] - lo[1]
    return np.sqrt(d0 * d0 + d1 * d1)


@njit(cache=True, nogil=True)
def _match_costs(tracks, people):
    """Mean distance over the joints seen in both, over the larger box size: ``(K, V, 3), (P, V, 3) -> (K * P,)``
    float64, row-major; inf where no joint is seen in both. The same float operations as numpy's vectorized
    form, so ties and thresholds decide the same way."""
    k_n, p_n, v = tracks.shape[0], people.shape[0], tracks.shape[1]
    track_box = np.empty(k_n, np.float32)
    for k in range(k_n):
        track_box[k] = _box_size(tracks[k])
    people_box = np.empty(p_n, np.float32)
    for p in range(p_n):
        people_box[p] = _box_size(people[p])
    terms = np.empty(v, np.float32)
    out = np.empty(k_n * p_n, np.float64)
    for k in range(k_n):
        for p in range(p_n):
            n = 0
            for j in range(v):
                both = tracks[k, j, 2] > 0 and people[p, j, 2] > 0
                dx = people[p, j, 0] - tracks[k, j, 0]
                dy = people[p, j, 1] - tracks[k, j, 1]
                terms[j] = np.sqrt(dx * dx + dy * dy) * np.float32(1.0 if both else 0.0)
                n += both
            a, b = people_box[p], track_box[k]
            size = a if (a > b or a != a) else b  # np.maximum: NaN wins
            size = size if (size > np.float32(1e-6) or size != size) else np.float32(1e-6)
            mean = np.float64(_pairwise_sum(terms)) / max(n, 1) if n > 0 else np.inf
            out[k * p_n + p] = mean / np.float64(size)
    return out


@njit(cache=True, nogil=True)
def _select_tracked(points, counts, max_persons, max_cost):
    n_all, v = points.shape[0], points.shape[1]
    pose = np.empty((n_all, v, 3), np.float32)  # per track: last seen pose, frame, velocity (per frame)
    frame = np.empty(n_all, np.int64)
    velocity = np.zeros((n_all, v, 2), np.float32)
    predicted = np.empty((n_all, v, 3), np.float32)
    owner = np.empty(n_all, np.int64)  # per person: its track
    n_tracks = 0
    start = 0
    for t in range(counts.size):
        p_n = counts[t]
        ids = owner[start:start + p_n]
        ids[:] = -1
        if n_tracks and p_n:
            for k in range(n_tracks):
                dt = np.float32(t - frame[k])
                for j in range(v):
                    predicted[k, j, 0] = pose[k, j, 0] + velocity[k, j, 0] * dt
                    predicted[k, j, 1] = pose[k, j, 1] + velocity[k, j, 1] * dt
                    predicted[k, j, 2] = pose[k, j, 2]
            costs = _match_costs(predicted[:n_tracks], points[start:start + p_n])
            taken = np.zeros(n_tracks, np.bool_)
            for flat in np.argsort(costs, kind="mergesort"):
                if costs[flat] >= max_cost:
                    break
                k, p = flat // p_n, flat % p_n
                if ids[p] < 0 and not taken[k]:
                    ids[p] = k
                    taken[k] = True
        for p in range(p_n):
            person = points[start + p]
            k = ids[p]
            if k < 0:
                k = ids[p] = n_tracks
                n_tracks += 1
                velocity[k] = 0.0
            else:
                dt = np.float32(t - frame[k])
                for j in range(v):
                    both = pose[k, j, 2] > 0 and person[j, 2] > 0
                    for c in range(2):
                        velocity[k, j, c] = (person[j, c] - pose[k, j, c]) / dt if both else np.float32(0.0)
            pose[k] = person
            frame[k] = t
        start += p_n
    totals = np.zeros(n_tracks, np.float64)
    scores = _scores(points)
    for i in range(n_all):
        totals[owner[i]] += scores[i]
    keep = np.argsort(-totals, kind="mergesort")[:max_persons]
    slot = np.full(n_tracks, -1, np.int64)
    slot[keep] = np.arange(keep.size)
    out = np.zeros((counts.size, max_persons, v, 3), np.float32)
    start = 0
    for t in range(counts.size):
        for p in range(counts[t]):
            s = slot[owner[start + p]]
            if s >= 0:
                out[t, s] = points[start + p]
        start += counts[t]
    return out


def select_tracked(frames, max_persons: int, max_cost: float = 3.0) -> np.ndarray:
    """Track people across frames, then keep the ``max_persons`` tracks with the highest total score.

    Each frame's people are matched greedily (cheapest first, by mean joint distance over the larger box size,
    below ``max_cost``) to where the tracks are predicted to be (last pose moved at its last velocity); an
    unmatched person starts a track. Who goes with whom among several people is decided by the cheapest-first
    order; the loose ``max_cost`` only stops a far-away newcomer from taking over a track (OpenPose output jitters
    by about a box size between frames on real video). Dividing by the box diagonal makes the cost the same in
    pixels and in normalised coordinates; the larger of the two boxes keeps it stable when one pose has only a
    few joints. Tracks keep their slot in every frame; frames where a track is not seen are zero. Slots are
    ordered by total score, highest first. ``frames``: a list of ``(P, V, 3)`` or :class:`Frames`.
    -> (T, M, V, 3)
    """
    frames = Frames.of(frames)
    return jit.call(_select_tracked, frames.points, frames.counts, max_persons, float(max_cost))


@njit(cache=True, nogil=True)
def _any_value(block):
    for x in block.ravel():
        if x != 0:
            return True
    return False


@njit(cache=True, nogil=True)
def selection_losses(points, counts, data):
    """What person selection left out: (person-frames with any non-zero value before ``points (N, V, 3)`` with
    ``counts (T,)``, those kept in ``data (T, M, V, 3)``, frames that had somebody but keep nobody)."""
    present = kept = emptied = 0
    start = 0
    for t in range(counts.size):
        seen = False
        for i in range(start, start + counts[t]):
            if _any_value(points[i]):
                present += 1
                seen = True
        start += counts[t]
        left = 0
        for m in range(data.shape[1]):
            left += _any_value(data[t, m])
        kept += left
        emptied += seen and left == 0
    return present, kept, emptied


def map_joints(data: np.ndarray, sources: tuple[tuple[int, ...], ...]) -> np.ndarray:
    """``(..., V, 3) -> (..., len(sources), 3)``: joint j copied from joint ``sources[j][0]``, or, for a pair, their
    midpoint (x, y averaged) with the lower of the two scores; a midpoint is ``0, 0, 0`` (undetected) when either
    joint is undetected (score 0), since one joint alone does not place it."""
    out = data[..., [s[0] for s in sources], :]
    for j, pair in enumerate(sources):
        if len(pair) == 2:
            a, b = data[..., pair[0], :], data[..., pair[1], :]
            mid = np.concatenate([(a[..., :2] + b[..., :2]) / 2, np.minimum(a[..., 2:], b[..., 2:])], axis=-1)
            out[..., j, :] = np.where((a[..., 2:] > 0) & (b[..., 2:] > 0), mid, 0.0)
    return out


def normalize_stgcn(data: np.ndarray, image_size: tuple[float, float] | None = None, flip_y: bool = False) -> np.ndarray:
    """st-gcn: x, y in [0, 1] (pixels divided by ``image_size`` W, H when given) minus 0.5, zeroed where the score
    is 0; ``flip_y`` negates y as the 2s-AGCN / MS-G3D copies do. ``(..., 3)`` float32 in, new array out."""
    data = np.ascontiguousarray(data, np.float32)
    scale = np.asarray(image_size if image_size is not None else (1, 1), np.float32)
    out = _normalize_stgcn(data.reshape(-1, 3), scale, image_size is not None, flip_y)
    return out.reshape(data.shape)


@njit(cache=True, nogil=True)
def _normalize_stgcn(points, scale, divide, flip_y):
    """The float32 operations of the numpy form, in the same order: ``(N, 3) -> (N, 3)``."""
    out = np.empty_like(points)
    half = np.float32(0.5)
    for i in range(points.shape[0]):
        x, y, score = points[i, 0], points[i, 1], points[i, 2]
        if divide:
            x, y = x / scale[0], y / scale[1]
        x, y = x - half, y - half
        if flip_y:
            y = y * np.float32(-1.0)
        seen = score != 0
        out[i, 0] = x if seen else np.float32(0.0)
        out[i, 1] = y if seen else np.float32(0.0)
        out[i, 2] = score
    return out

"""pyskl / mmaction2 skeleton annotation pickles: a restricted unpickler and one annotation -> frames.

An annotation (pyskl ``tools/data/README.md``) is a dict with ``frame_dir`` (the sample id), ``label``,
``total_frames`` and ``keypoint (M, T, V, C)`` float16/float32; 2D ones add ``keypoint_score (M, T, V)``,
``img_shape`` and ``original_shape`` (H, W). Kinetics-400's table of contents has no keypoints: ``raw_file`` names a
"kpfile", a dict ``{frame_dir: {"keypoint": (N, V, 3)}}`` of every detected skeleton (x, y, score), placed in time
by the annotation's ``frame_inds (N,)`` (see :func:`decompress_skeletons`).

A pickle can run code when loaded. :func:`load_pickle` resolves only the globals these files contain (numpy array,
scalar and dtype reconstruction, ``_codecs.encode`` for protocol-2 bytes, builtins containers); any other global
is refused before anything is imported or called.
"""
from __future__ import annotations

import importlib
import io
import pickle
import struct
from typing import Any, Mapping

import numpy as np

# (module, name) -> where the object lives now: numpy 2 moved numpy.core to numpy._core, pickles hold either.
_NUMPY_CORE = ("numpy._core", "numpy.core")
_ALLOWED = {
    ("numpy", "ndarray"): ("numpy", "ndarray"),
    ("numpy", "dtype"): ("numpy", "dtype"),
    ("_codecs", "encode"): ("_codecs", "encode"),
    ("builtins", "set"): ("builtins", "set"),
    ("builtins", "frozenset"): ("builtins", "frozenset"),
    ("builtins", "bytearray"): ("builtins", "bytearray"),
    ("collections", "OrderedDict"): ("collections", "OrderedDict"),
} | {(f"{core}.{module}", name): ("numpy._core." + module, name)
     for core in _NUMPY_CORE for module, name in (("multiarray", "_reconstruct"), ("multiarray", "scalar"),
                                                  ("numeric", "_frombuffer"))}


class PysklError(ValueError):
    """A pickle or annotation that cannot be read; the message names the file (and sample) and what was expected."""


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        target = _ALLOWED.get((module, name))
        if target is None:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        return getattr(importlib.import_module(target[0]), target[1])


def load_pickle(path) -> Any:
    """The object in pickle file ``path``, unpickled with only the globals annotation files use; raises PysklError
    naming the file for a refused global, a truncated file or anything that is not a pickle."""
    return _load(path, lambda fh: _RestrictedUnpickler(fh).load())


def _load(path, load) -> Any:
    try:
        with open(path, "rb") as fh:
            return load(io.BufferedReader(fh, 1 << 20))
    except pickle.UnpicklingError as exc:
        if str(exc).startswith("refused global"):
            raise PysklError(f"{path}: refused: the pickle asks for the global {str(exc)[15:]}, which annotation "
                             "files never hold; nothing was executed") from None
        problem = "truncated" if "truncated" in str(exc) else str(exc)
        raise PysklError(f"{path}: not a readable pickle ({problem})") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, MemoryError, OSError,
            struct.error) as exc:
        problem = "truncated" if isinstance(exc, EOFError) else f"{type(exc).__name__}: {exc}"
        raise PysklError(f"{path}: not a readable pickle ({problem})") from None


_ANNOTATION_KEYS = frozenset(("frame_dir", "keypoint", "raw_file"))
_FORGOTTEN = object()
_LARGE = 1024  # bytes (or characters: protocol 2 pickles carry array bytes as latin-1 text)


def _handed_over_part(value) -> bool:
    """Whether a memo entry is part of a handed-over annotation that no later object refers to: the annotation
    dicts, arrays, bytes and texts over 1 kB (small ones, such as dtype codes, are shared between arrays) and the
    tuples holding them."""
    if isinstance(value, dict):
        return not _ANNOTATION_KEYS.isdisjoint(value)
    if isinstance(value, tuple):  # an array's state, or the arguments that rebuilt its bytes
        return any(_handed_over_part(x) for x in value if not isinstance(x, tuple))
    if isinstance(value, np.ndarray):
        return value.nbytes > _LARGE
    return isinstance(value, (bytes, bytearray, str)) and len(value) > _LARGE


class _ForgetfulMemo(dict):
    """The unpickler's memo, which forgets the parts of annotations once they are handed over (an entry becomes a
    marker, so that memo indices, which count entries, stay right)."""

    def __init__(self):
        super().__init__()
        self._recent: list = []

    def __setitem__(self, key, value):
        if isinstance(value, (np.ndarray, dict, tuple, bytes, bytearray, str)):
            self._recent.append(key)
        super().__setitem__(key, value)

    def __getitem__(self, key):
        value = super().__getitem__(key)
        if value is _FORGOTTEN:
            raise pickle.UnpicklingError("an object refers back to part of an annotation already read; such a file "
                                         "cannot be streamed")
        return value

    def forget_handed_over(self) -> None:
        for key in self._recent:
            if _handed_over_part(super().__getitem__(key)):
                super().__setitem__(key, _FORGOTTEN)
        self._recent.clear()


class _StreamingUnpickler(pickle._Unpickler):  # the pure-Python unpickler: its opcodes can be overridden
    """The restricted unpickler, handing each annotation appended to a list to ``sink`` as soon as it is complete,
    instead of keeping it: memory holds one append batch (at most 1000 annotations), not the file."""

    dispatch = dict(pickle._Unpickler.dispatch)
    find_class = _RestrictedUnpickler.find_class

    def __init__(self, file, sink):
        super().__init__(file)
        self.memo = _ForgetfulMemo()
        self._sink = sink

    def _hand_over(self, items) -> bool:
        if not any(isinstance(x, dict) and not _ANNOTATION_KEYS.isdisjoint(x) for x in items):
            return False
        for item in items:
            self._sink(item)
        self.memo.forget_handed_over()
        return True

    def load_append(self):
        value = self.stack.pop()
        if not self._hand_over([value]):
            self.stack[-1].append(value)

    def load_appends(self):
        items = self.pop_mark()
        if not self._hand_over(items):
            target = self.stack[-1]
            for item in items:
                target.append(item)

    dispatch[pickle.APPEND[0]] = load_append
    dispatch[pickle.APPENDS[0]] = load_appends


def stream_pickle(path, sink) -> Any:
    """Unpickle ``path`` as :func:`load_pickle` does, but hand every annotation that a list holds to
    ``sink(annotation)`` in file order, as soon as it is read, and leave it out of the result (whose
    ``annotations`` list comes back empty). Other objects, one annotation alone among them, are returned."""
    return _load(path, lambda fh: _StreamingUnpickler(fh, sink).load())


def annotation_list(doc, path) -> tuple[list, dict | None]:
    """(annotations, split or None) of a loaded pickle: ``{"split", "annotations"}``, ``{"annotations"}``, a plain
    list of annotations (mmaction2 0.x) or one annotation (one per file)."""
    if isinstance(doc, Mapping) and "annotations" in doc:
        annotations, split = doc["annotations"], doc.get("split")
        if split is not None and not isinstance(split, Mapping):
            raise PysklError(f"{path}: 'split' is a {type(split).__name__}, expected a dict of name -> frame_dirs")
    elif isinstance(doc, Mapping) and ("keypoint" in doc or "raw_file" in doc):
        annotations, split = [doc], None
    else:
        annotations, split = doc, None
    if not isinstance(annotations, (list, tuple)):
        raise PysklError(f"{path}: expected a dict with 'annotations', a list of annotations or one annotation, "
                         f"got a {type(doc).__name__}")
    return list(annotations), None if split is None else dict(split)


def frame_dir(annotation, position: int) -> str:
    """An annotation's sample id, or ``#position`` when it has none (it will fail with a clear reason)."""
    name = annotation.get("frame_dir") if isinstance(annotation, Mapping) else None
    return str(name) if isinstance(name, (str, int, np.integer)) else f"#{position}"


def annotation_label(annotation) -> int:
    """The integer label of an annotation; PysklError otherwise."""
    label = annotation.get("label")
    if isinstance(label, (int, np.integer)) and not isinstance(label, bool) and label >= 0:
        return int(label)
    raise PysklError(f"label {label!r}: expected a class number >= 0")


def _float_array(annotation, key: str, ndim: int) -> np.ndarray:
    value = annotation.get(key)
    if value is None:
        raise PysklError(f"no {key!r}")
    if not isinstance(value, np.ndarray) or value.ndim != ndim or not np.issubdtype(value.dtype, np.floating):
        shape = getattr(value, "shape", None)
        raise PysklError(f"{key!r} is {type(value).__name__} {getattr(value, 'dtype', '')} shape {shape}, expected a "
                         f"float array of {ndim} dims")
    return value


def annotation_frames(annotation, coords: str, num_joints: int, max_persons: int) -> tuple[np.ndarray, int]:
    """One annotation -> (``(T, max_persons, V, C)`` float32, its number of person slots M); raises PysklError
    saying what is wrong. The first ``max_persons`` slots are kept, zero-padded (pyskl ``FormatGCNInput``).

    ``coords``: ``xyz`` (``keypoint`` C = 3), ``xy`` (C = 2) or ``xyc`` (C = 2 with ``keypoint_score`` as the third
    channel, or C = 3 with the score inside). float16 values convert exactly; NaN/inf values are refused.
    """
    if not isinstance(annotation, Mapping):
        raise PysklError(f"expected an annotation dict, got {type(annotation).__name__}")
    keypoint = _float_array(annotation, "keypoint", 4)
    m, t, v, c = keypoint.shape
    if v != num_joints:
        raise PysklError(f"'keypoint' shape {keypoint.shape}: {v} joints, the layout has {num_joints}")
    total = annotation.get("total_frames", t)
    if not isinstance(total, (int, np.integer)) or int(total) != t:
        raise PysklError(f"total_frames {total!r} differs from the {t} frames of 'keypoint'")
    arrays = [keypoint]
    if coords == "xyc" and c == 2:
        if annotation.get("keypoint_score") is None:
            raise PysklError("'keypoint' has 2 channels and there is no 'keypoint_score' for the third")
        score = _float_array(annotation, "keypoint_score", 3)
        if score.shape != (m, t, v):
            raise PysklError(f"'keypoint_score' shape {score.shape}, expected {(m, t, v)} as 'keypoint' "
                             f"{keypoint.shape}")
        arrays.append(score[..., None])
    elif c != (2 if coords == "xy" else 3):
        raise PysklError(f"'keypoint' shape {keypoint.shape}: {c} channels, {coords} needs "
                         f"{'2 (with keypoint_score) or 3' if coords == 'xyc' else 2 if coords == 'xy' else 3}")
    bad = sum(int(a.size - np.isfinite(a).sum()) for a in arrays)
    if bad:
        raise PysklError(f"{bad} NaN/inf values in {' or '.join(('keypoint', 'keypoint_score')[:len(arrays)])}")
    kept = min(m, max_persons)
    out = np.zeros((t, max_persons, v, sum(a.shape[-1] for a in arrays)), np.float32)
    channel = 0
    for a in arrays:
        out[:, :kept, :, channel:channel + a.shape[-1]] = a[:kept].transpose(1, 0, 2, 3)
        channel += a.shape[-1]
    return out, m


DECOMPRESS_MAX_PERSON = 10  # pyskl DecompressPose's default max_person


def decompress_skeletons(keypoint: np.ndarray, frame_inds: np.ndarray, max_persons: int) -> np.ndarray:
    """A kpfile video -> ``(T, max_persons, V, 3)`` float32, as pyskl ``DecompressPose(squeeze=True)`` followed by
    ``FormatGCNInput(num_person=max_persons)``.

    ``keypoint (N, V, 3)``: every skeleton (x, y, score) in frame order; ``frame_inds (N,)`` non-decreasing. Frames
    without a skeleton are dropped (squeeze); a frame's skeletons fill slots in file order, except that when some
    frame has more than 10 (``DecompressPose``'s ``max_person``) every frame's are sorted by summed score, highest
    first; the first ``max_persons`` slots are kept.
    """
    if keypoint.ndim != 3 or keypoint.shape[2] != 3 or not np.issubdtype(keypoint.dtype, np.floating):
        raise PysklError(f"kpfile 'keypoint' is {keypoint.dtype} shape {keypoint.shape}, expected (N, V, 3) floats")
    frame_inds = np.asarray(frame_inds)
    if frame_inds.shape != (len(keypoint),):
        raise PysklError(f"frame_inds shape {frame_inds.shape}, expected ({len(keypoint)},) as the kpfile keypoints")
    if (np.diff(frame_inds) < 0).any():
        raise PysklError("frame_inds are not non-decreasing")
    if len(keypoint) == 0:
        raise PysklError("no skeleton in any frame")
    _, t = np.unique(frame_inds, return_inverse=True)
    counts = np.bincount(t)
    slot = np.arange(len(t)) - np.concatenate([[0], np.cumsum(counts)[:-1]])[t]
    if counts.max() > DECOMPRESS_MAX_PERSON:  # sort each frame's skeletons by summed score, highest first (stable)
        order = np.lexsort((-keypoint[..., 2].astype(np.float32).sum(-1), t))
        keypoint = keypoint[order]
    out = np.zeros((len(counts), max_persons, keypoint.shape[1], 3), np.float32)
    keep = slot < max_persons
    out[t[keep], slot[keep]] = keypoint[keep]
    if not np.isfinite(out).all():
        raise PysklError("NaN/inf values in the kpfile keypoints")
    return out


PRENORMALIZE_IMG_SHAPE = (1080, 1920)  # pyskl PreNormalize2D's default (H, W) for annotations without img_shape
PRENORMALIZE_THRESHOLD = 0.01


def image_shape(annotation) -> tuple[float, float]:
    """(H, W) of a 2D annotation's ``img_shape``, or pyskl ``PreNormalize2D``'s default (1080, 1920)."""
    shape = annotation.get("img_shape") if isinstance(annotation, Mapping) else None
    try:
        h, w = (float(s) for s in shape)
    except (TypeError, ValueError):
        return PRENORMALIZE_IMG_SHAPE
    return (h, w) if h > 0 and w > 0 else PRENORMALIZE_IMG_SHAPE


def prenormalize_2d(frames: np.ndarray, img_shape: tuple[float, float]) -> np.ndarray:
    """pyskl ``PreNormalize2D(mode='fix')`` on ``(..., 3)`` x, y, score float32, in place: x, y mapped from the
    image (H, W) to [-1, 1], and zeroed where the score is <= 0.01. Returns ``frames``."""
    h, w = img_shape
    frames[..., 0] = (frames[..., 0] - (w / 2)) / (w / 2)
    frames[..., 1] = (frames[..., 1] - (h / 2)) / (h / 2)
    frames[..., :2][frames[..., 2] <= PRENORMALIZE_THRESHOLD] = 0
    return frames

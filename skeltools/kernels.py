"""Numba kernels for the derived modalities (bone, motion) and for cutting training clips.

Axis orders: store frames ``(F, M, V, C)`` (all samples concatenated); one sample ``(T, M, V, C)``; a clip
``(M, K, V, C)`` (K sampled frames; person-major, as models take it).

**The pair rule.** Bone and motion both combine two values of the same channel: bone pairs a joint with its
parent (``x[v]`` with ``x[parent[v]]``), motion pairs a frame with the next one (``x[t + 1]`` with ``x[t]``).
A coordinate channel gives the difference ``a - b``; the confidence channel of a 2D layout (coords ``xyc``)
gives the mean ``(a + b) / 2`` (pyskl's ``JointToBone`` / ``ToMotion`` rule; 2s-AGCN and MS-G3D subtract the
score like a coordinate). A joint that is its own parent gets a zero bone (its score stays its own score).
Motion is ``x[t + 1] - x[t]`` inside each sample; the last frame of every sample is zero in every channel, and
no value ever pairs frames of two samples. Persons that are absent (zero-filled) stay zero in every modality.

Each whole-array pass comes in a ``parallel`` (prange, GNU OpenMP threads) and a serial flavour: never run a
parallel kernel in a process that was forked from one that already ran one (the child aborts); the clip
kernels used by DataLoader workers are serial.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from skeltools import jit  # before the kernels: picks numba's cache folder

BONE = 1    # op bit: pair each joint with its parent
MOTION = 2  # op bit: pair each frame with the next one
_BLOCK_ROWS = 4096  # rows per parallel task: large enough to stream, small enough to balance two threads
_NO_FLAGS, _NO_COLUMNS = np.zeros(0, np.bool_), np.zeros(0, np.int64)  # the argument the other op ignores


@dataclass(frozen=True)
class PairRule:
    """The pair rule of one layout and channel set.

    ``parents`` (V,) int64 bone parents; ``mean`` (C,) bool: channels paired by their mean (the confidence of a
    2D layout) instead of their difference. ``(a + b) / 2`` is computed as ``0.5 * (a + b)``: the same float.
    """

    parents: np.ndarray
    mean: np.ndarray

    @classmethod
    def make(cls, parents, channels: int, score: bool = False) -> "PairRule":
        """``score``: channel 2 is a confidence (store coords ``xyc``)."""
        mean = np.zeros(channels, np.bool_)
        mean[2:3] = score
        return cls(np.asarray(parents, np.int64), mean)

    @property
    def channels(self) -> int:
        return len(self.mean)

    def columns(self, persons: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """For rows of ``persons * V * C`` values: each column's parent column, and the mean-paired columns."""
        v, c = len(self.parents), self.channels
        parent_col = (self.parents[:, None] * c + np.arange(c)).ravel()
        parent_col = (parent_col[None, :] + np.arange(persons)[:, None] * v * c).ravel()
        return parent_col, np.flatnonzero(np.tile(self.mean, persons * v))


# --------------------------------------------------------------------------------------------------------------
# Whole arrays: rows of V*C (bone) or M*V*C (motion) values. Differences first (a tight loop the compiler
# unrolls), then the few mean-paired columns are overwritten.


@njit(cache=True, nogil=True)
def _bone_rows(x, parent_col, mean_cols, out, r0, r1):
    for r in range(r0, r1):
        row, dst = x[r], out[r]
        for k in range(row.shape[0]):
            dst[k] = row[k] - row[parent_col[k]]
        for k in mean_cols:
            dst[k] = 0.5 * (row[k] + row[parent_col[k]])


@njit(cache=True, nogil=True)
def _motion_rows(x, last, mean_cols, out, r0, r1):
    for r in range(r0, r1):
        dst = out[r]
        if last[r]:
            dst[:] = 0.0
            continue
        now, nxt = x[r], x[r + 1]
        for k in range(dst.shape[0]):
            dst[k] = nxt[k] - now[k]
        for k in mean_cols:
            dst[k] = 0.5 * (nxt[k] + now[k])


@njit(cache=True, nogil=True)
def _pair_rows(motion, x, parent_col, last, mean_cols, out, r0, r1):
    if motion:
        _motion_rows(x, last, mean_cols, out, r0, r1)
    else:
        _bone_rows(x, parent_col, mean_cols, out, r0, r1)


@njit(cache=True, nogil=True)
def _pairs_serial(motion, x, parent_col, last, mean_cols, out):
    _pair_rows(motion, x, parent_col, last, mean_cols, out, 0, out.shape[0])


@njit(cache=True, parallel=True)
def _pairs_parallel(motion, x, parent_col, last, mean_cols, out):
    n = out.shape[0]
    for b in prange((n + _BLOCK_ROWS - 1) // _BLOCK_ROWS):
        _pair_rows(motion, x, parent_col, last, mean_cols, out, b * _BLOCK_ROWS, min(n, (b + 1) * _BLOCK_ROWS))


def _frames_out(x: np.ndarray, out: np.ndarray | None, frames: int) -> np.ndarray:
    if x.dtype != np.float32 or not x.flags.c_contiguous:
        raise ValueError(f"expected a C-contiguous float32 (F, M, V, C) array, got {x.dtype} {x.shape}")
    shape = (frames, *x.shape[1:])
    if out is None:
        return np.empty(shape, np.float32)
    if out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {shape}")
    return out


def bones(x: np.ndarray, rule: PairRule, out: np.ndarray | None = None, parallel: bool = True) -> np.ndarray:
    """Bones of frames ``x`` (F, M, V, C) float32 -> (F, M, V, C): ``pair(x[..., v, :], x[..., parent[v], :])``."""
    out = _frames_out(x, out, len(x))
    f, m, v, c = x.shape
    parent_col, mean_cols = rule.columns()
    kernel = _pairs_parallel if parallel else _pairs_serial
    jit.call(kernel, False, x.reshape(f * m, v * c), parent_col, _NO_FLAGS, mean_cols, out.reshape(f * m, v * c))
    return out


def motion(x: np.ndarray, last: np.ndarray, rule: PairRule, out: np.ndarray | None = None,
           parallel: bool = True) -> np.ndarray:
    """Motion of frames ``x`` -> (len(last), M, V, C): ``pair(x[t + 1], x[t])``, zero where ``last[t]``.

    ``last`` (F,) bool marks the last frame of each sample. ``x`` holds F frames, or F + 1 when the block is cut
    from a longer array and its final frame continues into the next one (the extra frame is only read).
    """
    frames = len(last)
    if not frames <= len(x) <= frames + 1 or (len(x) == frames and frames and not last[-1]):
        raise ValueError(f"motion: {len(x)} frames for {frames} flags; the final frame must be a sample's last "
                         "or be followed by one more frame")
    out = _frames_out(x, out, frames)
    row = int(np.prod(x.shape[1:]))
    _, mean_cols = rule.columns(x.shape[1])
    kernel = _pairs_parallel if parallel else _pairs_serial
    jit.call(kernel, True, x.reshape(len(x), row), _NO_COLUMNS, np.ascontiguousarray(last, np.bool_), mean_cols,
             out.reshape(frames, row))
    return out


def last_frames(offsets: np.ndarray, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Bool (stop - start,): True at frames [start, stop) that end a sample (``offsets``: int64 (N + 1,))."""
    stop = int(offsets[-1]) if stop is None else stop
    ends = np.asarray(offsets[1:], np.int64) - 1
    ends = ends[(ends >= start) & (ends < stop)]
    flags = np.zeros(stop - start, np.bool_)
    flags[ends - start] = True
    return flags


# --------------------------------------------------------------------------------------------------------------
# Clips: a few frames of one sample, gathered, derived and transposed in one pass (serial: loader workers).


@njit(cache=True, nogil=True)
def _pair(a, b, mean):
    return 0.5 * (a + b) if mean else a - b


@njit(cache=True, nogil=True)
def _value(src, t, m, v, c, op, parents, mean):
    if op & BONE:
        return _pair(src[t, m, v, c], src[t, m, parents[v], c], mean[c])
    return src[t, m, v, c]


@njit(cache=True, nogil=True)
def _gather_clip(src, inds, op, parents, mean, out):
    num_frames, persons, joints, channels = src.shape
    for m in range(out.shape[0]):
        for k in range(out.shape[1]):
            t = inds[k]
            if m >= persons or t < 0 or (op & MOTION and t == num_frames - 1):
                out[m, k] = 0.0
                continue
            for v in range(joints):
                for c in range(channels):
                    here = _value(src, t, m, v, c, op, parents, mean)
                    if op & MOTION:
                        here = _pair(_value(src, t + 1, m, v, c, op, parents, mean), here, mean[c])
                    out[m, k, v, c] = here


def gather_clip(src: np.ndarray, inds: np.ndarray, op: int, rule: PairRule, out: np.ndarray) -> np.ndarray:
    """Fill ``out`` (M', K, V, C) with frames ``inds`` of sample ``src`` (T, M, V, C), derived by ``op``.

    ``op``: 0 (copy), BONE, MOTION or BONE | MOTION (bone motion), computed at the sample's full frame rate
    exactly as the whole-array kernels do, so stored and on-the-fly modalities agree bit for bit. An index of
    -1 gives a zero frame (zero padding); persons beyond the sample's M are zero (padding), beyond M' dropped.
    ``out`` may be a channel slice of a larger clip (for concatenated modalities).
    """
    jit.call(_gather_clip, src, np.asarray(inds, np.int64), op, rule.parents, rule.mean, out)
    return out


def pad_indices(length: int, target: int, mode: str = "loop") -> np.ndarray:
    """Frame indices that bring a ``length``-frame sample to ``target`` frames.

    Shorter samples: ``loop`` repeats the sequence (``t % length``, pyskl ``PadTo('loop')``), ``zero`` pads with
    -1 (zero frames). Longer samples are evenly subsampled (``floor(i * length / target)``).
    """
    if mode not in ("loop", "zero"):
        raise ValueError(f"pad mode {mode!r}: expected 'loop' or 'zero'")
    steps = np.arange(target, dtype=np.int64)
    if length >= target:
        return steps * length // target
    if mode == "loop":
        return steps % length
    return np.where(steps < length, steps, -1)


# --------------------------------------------------------------------------------------------------------------
# Augmentation on a clip: x' = A x + shift for each 3-channel group of every person-frame that is present.


@njit(cache=True, nogil=True)
def _present(frame):
    for v in range(frame.shape[0]):
        for c in range(frame.shape[1]):
            if frame[v, c] != 0.0:
                return True
    return False


@njit(cache=True, nogil=True)
def _affine_clip(x, matrix, shift):
    persons, frames, joints, channels = x.shape
    for m in range(persons):
        for k in range(frames):
            if not _present(x[m, k]):
                continue
            for v in range(joints):
                for g in range(channels // 3):
                    p0, p1, p2 = x[m, k, v, 3 * g], x[m, k, v, 3 * g + 1], x[m, k, v, 3 * g + 2]
                    for i in range(3):
                        x[m, k, v, 3 * g + i] = (matrix[i, 0] * p0 + matrix[i, 1] * p1 + matrix[i, 2] * p2
                                                 + shift[g, i])


def affine_clip(x: np.ndarray, matrix: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """In place on a 3D clip ``x`` (M, K, V, 3G): each group of 3 channels becomes ``matrix @ p + shift[g]``.

    ``matrix`` (3, 3); ``shift`` (G, 3); computed in float64. Person-frames that are all zero (absent,
    padding) are left untouched.
    """
    if x.shape[-1] % 3:
        raise ValueError(f"affine_clip: {x.shape[-1]} channels is not a multiple of 3 (3D coordinates only)")
    jit.call(_affine_clip, x, np.asarray(matrix, np.float64), np.asarray(shift, np.float64))
    return x

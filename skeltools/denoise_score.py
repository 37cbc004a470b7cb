"""Score a preset's body selection on a synthetic NTU file against its ground truth (``synth.ground_truth``).

Every non-zero person-frame of a preset's output ``(T, M, 25, 3)`` is traced back to the body-frame of the file it
came from by a fingerprint that survives every preset's normalisation (translation, per-frame centring,
rotation): the distances from joint 1 (SpineMid) to the other 24 joints. Then, for one file:

noise kept     an output person-frame comes from a noise body (or from no body of the file at all)
actor lost     an actor appears nowhere in the output, or one of its body-frames is missing from a file frame
               the output kept (a frame another person was kept in)
frames shifted one output frame holds persons taken from different file frames (an actor moved in time
               relative to the other)
skipped        the preset raised :class:`skeltools.presets.EmptySkeletonError` on a file with an actor in it
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Two body-frames are the same when every fingerprint distance agrees to within this (metres); float32 rotations
#: change them by ~1e-6, two frames of a moving, jittering body by ~1e-3.
MATCH_TOLERANCE = 1e-4
CENTER = 1


@dataclass(frozen=True)
class Score:
    """The outcome for one file and one preset (see the module docstring); ``unmatched`` counts output
    person-frames traced to no body-frame."""

    noise_kept: bool = False
    actor_lost: bool = False
    shifted: bool = False
    skipped: bool = False
    unmatched: int = 0


def fingerprint(xyz: np.ndarray) -> np.ndarray:
    """Distances from joint 1 to the other joints, ``(..., 25, 3) -> (..., 24)`` float64."""
    d = np.linalg.norm(xyz.astype(np.float64) - xyz[..., CENTER:CENTER + 1, :].astype(np.float64), axis=-1)
    return np.delete(d, CENTER, axis=-1)


def actor_of_bodies(truth: dict) -> dict[int, int]:
    """bodyID -> actor index (0, 1) or -1 for a noise body, from a ground-truth record."""
    out = {int(b["body_id"]): -1 for b in truth["noise"]}
    for actor in truth["actors"]:
        out.update({int(b): actor["actor"] for b in actor["body_ids"]})
    return out


def trace(data: np.ndarray, skel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Trace output person-frames to body-frames of ``skel``.

    Returns ``(t, m, body)`` int64 arrays over the non-zero person-frames of ``data`` (T, M, 25, 3): the output
    frame, the person slot, and the index of the matching body-frame in ``skel`` (-1 when none matches).
    """
    t, m = np.nonzero(np.any(data.reshape(data.shape[0], data.shape[1], -1) != 0, axis=-1))
    if len(t) == 0 or len(skel.frame) == 0:
        return t, m, np.full(len(t), -1)
    out = fingerprint(data[t, m])
    bodies = fingerprint(skel.xyz)
    diff = np.abs(out[:, None, :] - bodies[None, :, :]).max(-1)
    best = diff.argmin(1)
    return t, m, np.where(diff[np.arange(len(t)), best] <= MATCH_TOLERANCE, best, -1)


def score_output(data: np.ndarray, skel, truth: dict) -> Score:
    """Score one preset output ``data`` (T, M, 25, 3) of the parsed file ``skel`` against its ground truth."""
    t, _, body = trace(data, skel)
    owner = actor_of_bodies(truth)
    matched = body >= 0
    label = np.array([owner.get(int(b), -1) for b in skel.body_id[body[matched]]], np.int64)
    file_frame = np.asarray(skel.frame, np.int64)[body[matched]]
    noise = bool((label < 0).any()) or not matched.all()

    kept_frames = set(file_frame.tolist())
    lost = False
    for actor in truth["actors"]:
        a = actor["actor"]
        mine = np.isin(skel.body_id, [int(b) for b in actor["body_ids"]])
        seen = set(file_frame[label == a].tolist())
        if mine.any() and not seen:
            lost = True
        if (set(np.asarray(skel.frame)[mine].tolist()) & kept_frames) - seen:
            lost = True

    shifted = False
    out_t = t[matched]
    if len(out_t):
        order = np.argsort(out_t, kind="stable")
        same_t = np.diff(out_t[order]) == 0
        shifted = bool(np.any(same_t & (np.diff(file_frame[order]) != 0)))
    return Score(noise_kept=noise, actor_lost=lost, shifted=shifted, unmatched=int((~matched).sum()))


def score_preset(skel, truth: dict, preset: str) -> Score:
    """Run ``preset`` on the parsed file ``skel`` and score it against its ground truth (skipped: it raised
    :class:`skeltools.presets.EmptySkeletonError`)."""
    from skeltools.presets import EmptySkeletonError, preprocess

    try:
        out = preprocess(skel, preset)
    except EmptySkeletonError:
        return Score(skipped=True)
    return score_output(out.data, skel, truth)

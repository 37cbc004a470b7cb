"""Normalization steps of the NTU RGB+D presets: centring, spine/shoulder alignment, frame handling.

Every function takes and returns person-major arrays ``(P, T, V, C)`` (persons, frames, 25 joints, xyz) of
float32 and is pure (inputs are never modified). Joint indices are 0-based Kinect v2 indices: 0 SpineBase,
1 SpineMid, 4 ShoulderLeft, 8 ShoulderRight.

``pyskl_prenormalize``    pyskl ``PreNormalize3D(align_center=True, align_spine=...)``.
``ctrgcn_seq_translation`` / ``ctrgcn_second_actor``   CTR-GCN ``seq_translation`` and ``align_frames``.
``msg3d_pre_normalization``   2s-AGCN / MS-G3D ``pre_normalization`` (null-frame padding, per-frame centring,
                          spine -> +z and shoulders -> +x rotations).

Dtypes follow the references: rotation matrices are float64; pyskl rotates in float64 and rounds once at the
end, MS-G3D rounds to float32 after each rotation (it writes into a float32 array); centring is float32.
"""
from __future__ import annotations

import numpy as np

from skeltools.select import NothingToKeep

#: Spine (bottom, top) and shoulder (right, left) joints used by both references' alignment.
SPINE = (0, 1)
SHOULDERS = (8, 4)
CENTER_JOINT = 1
Z_AXIS = np.array([0.0, 0.0, 1.0])
X_AXIS = np.array([1.0, 0.0, 0.0])
#: MS-G3D's fixed clip length (``max_frame``).
MSG3D_LENGTH = 300
#: Below this, both references treat a vector or an angle as zero (no rotation).
ROT_EPS = 1e-6
#: pyskl's ``np.isclose(x, 0)`` default tolerance: a frame is empty when every |value| is at most this.
ISCLOSE_ATOL = 1e-8


# --------------------------------------------------------------------------------------------------------------
# rotations


def angle_to(v: np.ndarray, target: np.ndarray) -> float:
    """Angle in radians between ``v`` (3,) and ``target`` (3,); 0 when either has L1 norm below 1e-6.

    ``v`` is normalised in its own dtype and the dot product taken in float64, as the references do.
    """
    if float(np.abs(v).sum()) < ROT_EPS or float(np.abs(target).sum()) < ROT_EPS:
        return 0.0
    u = v / np.linalg.norm(v)
    t = np.asarray(target, np.float64) / np.linalg.norm(target)
    return float(np.arccos(np.clip(np.dot(u.astype(np.float64), t), -1.0, 1.0)))


def rodrigues(axis: np.ndarray, theta: float) -> np.ndarray:
    """Float64 (3, 3) matrix of the counter-clockwise rotation by ``theta`` about ``axis`` (Euler-Rodrigues).

    Identity when the axis has L1 norm below 1e-6 or ``|theta| < 1e-6`` (so an exactly opposite vector, whose
    cross product with the target is zero, is left unrotated, as in the references).
    """
    axis = np.asarray(axis, np.float64)
    if float(np.abs(axis).sum()) < ROT_EPS or abs(theta) < ROT_EPS:
        return np.eye(3)
    axis = axis / np.sqrt(np.dot(axis, axis))
    w = np.cos(theta / 2.0)
    x, y, z = axis * np.sin(theta / 2.0)
    return np.array([
        [w * w + x * x - y * y - z * z, 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), w * w + y * y - x * x - z * z, 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), w * w + z * z - x * x - y * y],
    ])


def alignment_matrix(v: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Float64 (3, 3) rotation taking the direction of ``v`` onto ``target`` (about ``v x target``)."""
    axis = np.cross(np.asarray(v, np.float64), target)
    return rodrigues(axis, angle_to(v, target))


def rotate(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply ``matrix`` to points ``(..., 3)``: ``p' = matrix @ p``, computed in float64."""
    return np.asarray(points, np.float64) @ matrix.T


# --------------------------------------------------------------------------------------------------------------
# pyskl


def pyskl_prenormalize(kp: np.ndarray, align_spine: bool = False) -> tuple[np.ndarray, list[str]]:
    """pyskl ``PreNormalize3D`` with centring. ``(P, T, 25, 3) -> (P, T', 25, 3)`` float32, P in {1, 2}.

    1. Main person = the person with more non-empty frames (person 0 on a tie; a frame is empty when all
       |values| <= 1e-8); it is moved to slot 0.
    2. Frames where the main person is empty are dropped.
    3. The main person's joint 1 in the first kept frame is subtracted from every joint that has a non-zero
       coordinate (exactly-zero joints stay zero).
    4. ``align_spine``: rotate so that the main person's joint 0 -> joint 1 in the first frame points to +z,
       then joint 4 -> joint 8 to +x (float64, rounded to float32 once at the end).

    An all-zero input is returned unchanged, as the reference does.
    """
    notes: list[str] = []
    if kp.sum() == 0:
        return kp.copy(), ["all joints are zero"]
    present = np.any(np.abs(kp) > ISCLOSE_ATOL, axis=(2, 3))  # (P, T)
    main = 1 if kp.shape[0] == 2 and present[0].sum() < present[1].sum() else 0
    if main:
        kp = kp[::-1]
        notes.append("main person reordered (person 1 has more frames)")
    kp = kp[:, present[main]]
    dropped = present.shape[1] - kp.shape[1]
    if dropped:
        notes.append(f"dropped {dropped} frames without the main person")
    if kp.shape[1] == 0:
        raise NothingToKeep("no frame with a non-zero main person (pyskl's PreNormalize3D would fail)")
    center = kp[0, 0, CENTER_JOINT].copy()
    has_value = (kp != 0).any(axis=-1, keepdims=True)
    kp = (kp - center) * has_value
    if not align_spine:
        return np.ascontiguousarray(kp, np.float32), notes
    rz = alignment_matrix(kp[0, 0, SPINE[1]] - kp[0, 0, SPINE[0]], Z_AXIS)
    kp64 = rotate(kp, rz)
    rx = alignment_matrix(kp64[0, 0, SHOULDERS[0]] - kp64[0, 0, SHOULDERS[1]], X_AXIS)
    return rotate(kp64, rx).astype(np.float32), notes


# --------------------------------------------------------------------------------------------------------------
# CTR-GCN


def _row_sums(person: np.ndarray) -> np.ndarray:
    """Float32 sum of each frame's 75 values ``(T, 25, 3) -> (T,)`` (the references' per-frame ``sum``)."""
    return np.ascontiguousarray(person).reshape(person.shape[0], -1).sum(axis=1)


def ctrgcn_seq_translation(kp: np.ndarray) -> np.ndarray:
    """CTR-GCN ``seq_translation``. ``(P, T, 25, 3) -> (P, T, 25, 3)`` float32, P in {1, 2}.

    Origin = actor 0's joint 1 in the first frame where actor 0 has any non-zero value; it is subtracted from
    every joint of every frame and actor (zero joints included), then, with two actors, frames where an actor's
    coordinates summed to exactly 0 are set back to zero. A lone actor is never re-zeroed.
    """
    if kp.shape[1] == 0:
        raise NothingToKeep("no frame left after removing frames without any actor")
    missing = [_row_sums(p) == 0 for p in kp] if kp.shape[0] == 2 else []
    nonzero = np.flatnonzero(np.any(kp[0].reshape(kp.shape[1], -1) != 0, axis=1))
    if len(nonzero) == 0:
        raise NothingToKeep("the first actor is zero in every frame (CTR-GCN's seq_translation would fail)")
    origin = kp[0, nonzero[0], CENTER_JOINT].copy()
    out = kp - origin
    for person, gone in enumerate(missing):
        out[person, gone] = 0
    return out


def ctrgcn_second_actor(kp: np.ndarray, dataset: str) -> tuple[np.ndarray, list[str]]:
    """CTR-GCN ``align_frames`` for a one-actor sample: ``(1, T, V, C) -> (2, T, V, C)``.

    NTU60 fills the second actor with zeros; NTU120 duplicates the actor (the reference's NTU120 script).
    Two-actor input is returned as is (even when the second actor is all zeros, as the reference does).
    """
    if kp.shape[0] != 1:
        return kp, []
    if dataset == "ntu120":
        return np.concatenate([kp, kp]), ["second actor duplicates the first (CTR-GCN's NTU120 rule)"]
    return np.concatenate([kp, np.zeros_like(kp)]), []


# --------------------------------------------------------------------------------------------------------------
# MS-G3D / 2s-AGCN


def msg3d_pad_null_frames(person: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """MS-G3D's null-frame padding of one person ``(T, 25, 3)`` float32 (a frame is null when it sums to 0).

    If frame 0 is null, every non-null frame is moved to the front in order (interior gaps vanish too).
    Then, at the first null frame ``i`` after which everything is null, the frames ``[0, i)`` are repeated
    cyclically up to ``T`` (loop padding). Null frames followed by data stay zero.
    """
    out = person.copy()
    notes: list[str] = []
    if out.sum() == 0:
        return out, notes
    if out[0].sum() == 0:
        live = out.sum(-1).sum(-1) != 0
        kept = out[live]
        out[:] = 0
        out[: len(kept)] = kept
        notes.append(f"{np.flatnonzero(live)[-1] + 1 - len(kept)} leading/interior null frames squeezed out")
    length = len(out)
    for i in np.flatnonzero(_row_sums(out) == 0):
        if out[i:].sum() == 0:
            if i > 0:  # i == 0 cannot happen for a non-empty person; guarded so it never divides by zero
                out[i:] = out[np.arange(length - i) % i]
            break
    return out, notes


def msg3d_center(s: np.ndarray) -> np.ndarray:
    """Per-frame centring: subtract person 0's joint 1 *of the same frame* from every person.

    Joints whose x + y + z is exactly 0 stay zero; all-zero persons are skipped. ``(M, T, 25, 3)`` float32.
    """
    out = s.copy()
    if out.sum() == 0:
        return out
    center = out[0, :, CENTER_JOINT : CENTER_JOINT + 1].copy()  # (T, 1, 3)
    for p in range(len(out)):
        if out[p].sum() == 0:
            continue
        keep = (out[p].sum(-1) != 0)[..., None]
        out[p] = (out[p] - center) * keep
    return out


def msg3d_align(s: np.ndarray, joints: tuple[int, int], target: np.ndarray) -> np.ndarray:
    """Rotate so that person 0's ``joints[1] -> joints[0]`` vector in frame 0 points along ``target``.

    Only non-null frames of non-empty persons are rotated; each result is rounded to float32.
    """
    out = s.copy()
    if out.sum() == 0:
        return out
    matrix = alignment_matrix(out[0, 0, joints[0]] - out[0, 0, joints[1]], target)
    for p in range(len(out)):
        if out[p].sum() == 0:
            continue
        live = _row_sums(out[p]) != 0
        out[p, live] = rotate(out[p, live], matrix).astype(np.float32)
    return out


def msg3d_pre_normalization(data: np.ndarray, length: int = MSG3D_LENGTH) -> tuple[np.ndarray, list[str]]:
    """MS-G3D ``pre_normalization``. ``(M, T, 25, 3) -> (M, max(T, length), 25, 3)`` float32.

    The sample is placed in a ``length``-frame zero clip (MS-G3D's 300), each person is padded by
    :func:`msg3d_pad_null_frames`, centred per frame on person 0's joint 1, then the spine (joint 0 -> 1) of
    person 0 in frame 0 is rotated onto +z and its shoulders (joint 4 -> 8) onto +x.

    Deviation: MS-G3D cannot store a sample longer than 300 frames (a broadcast error); here the clip grows to
    the sample's length instead, so nothing is truncated.
    """
    m, t = data.shape[:2]
    s = np.zeros((m, max(t, length)) + data.shape[2:], np.float32)
    s[:, :t] = data
    notes: list[str] = []
    if t > length:
        notes.append(f"{t} frames > {length}: all frames kept (MS-G3D would fail)")
    if s.sum() == 0:
        return s, notes + ["all joints are zero"]
    for p in range(m):
        s[p], person_notes = msg3d_pad_null_frames(s[p])
        notes.extend(f"person {p}: {n}" for n in person_notes)
    s = msg3d_center(s)
    s = msg3d_align(s, (SPINE[1], SPINE[0]), Z_AXIS)
    s = msg3d_align(s, SHOULDERS, X_AXIS)
    return s, notes

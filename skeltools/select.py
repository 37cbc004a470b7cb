"""Body selection for NTU RGB+D: which Kinect bodies become the persons of a sample.

One function per preset, each a faithful re-statement of the reference it is named after
(facts in ``specs/formats-ntu.md`` §3):

``select_pyskl``   pyskl ``tools/data/ntu_preproc.py``: bodies keyed by bodyID, length and spread denoising
                   applied to every body, interval merge with exclusive ends, leading/trailing zero frames
                   trimmed, persons swapped when person 0 is absent from the first frame.
``select_ctrgcn``  CTR-GCN ``get_raw_skes_data.py`` + ``get_raw_denoised_data.py``: bodies keyed by bodyID,
                   spread denoising that stops when one body is left, interval merge with inclusive ends,
                   frames without either actor removed.
``select_msg3d``   2s-AGCN / MS-G3D ``read_xyz``: bodies keyed by their slot in the frame, only the first 4
                   slots read, the top persons by "energy" (sum of per-axis std over non-zero frames) kept.
``select_none``    the first ``max_persons`` slots of every frame, raw coordinates, every header frame kept.

Axis order of every person array returned here: ``(P, T, V, C)`` = persons, frames, 25 joints, xyz
(person-major, as the references hold them); ``skeltools.presets`` turns it into ``(T, M, V, C)``.

Input: a :class:`skeltools.readers.ntu.SkeletonFile` whose body-frames are finite (the converter zeroes a
body-frame holding NaN/inf; a caller may also drop it). A frame counts as non-empty when at least one
body-frame of the input lies in it, so a frame whose only bodies were dropped upstream is a 0-body frame,
while a zeroed body-frame still counts, as the NaN body did in the references.

Numerical fidelity: motions are ``sum(var(joints.reshape(-1, 3), axis=0))`` on the float32 joints, exactly as both
bodyID-based references compute them; the spread test compares ``float32`` extents in float64, as
``0.8 * numpy.float32`` evaluated under the NumPy 1.x promotion rules those scripts ran with; sorts are stable,
as Python's ``sorted`` and NumPy 1.x's insertion sort for 4-element ``argsort`` are.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NUM_JOINTS = 25

#: Denoising thresholds shared by CTR-GCN and pyskl (``noise_len_thres``, ``noise_spr_thres1/2``).
NOISE_LENGTH = 11
SPREAD_RATIO = 0.8
SPREAD_NOISE_RATE = 0.69754
#: pyskl's ``eps`` for "this frame / joint is empty" in ``non_zero`` and the person swap.
PYSKL_EPS = 1e-3
#: MS-G3D reads this many bodies per frame (``max_body_kinect``).
MSG3D_SLOTS = 4


class NothingToKeep(ValueError):
    """The sample holds nothing a preset can keep (``skeltools.presets`` re-raises it as EmptySkeletonError)."""


@dataclass(frozen=True, eq=False)
class Track:
    """All appearances of one bodyID, in file order.

    body_id  the Kinect bodyID
    start    index of its first appearance among the non-empty frames (0-body frames are not counted)
    xyz      float32 (n, 25, 3): its joints at each appearance, packed one after another (a body that vanishes
             and comes back is still packed contiguously from ``start``, as both bodyID-based references do)
    """

    body_id: int
    start: int
    xyz: np.ndarray

    @property
    def length(self) -> int:
        return int(self.xyz.shape[0])

    @property
    def stop(self) -> int:
        """Exclusive end of the packed interval: ``start + length``."""
        return self.start + self.length


# --------------------------------------------------------------------------------------------------------------
# shared building blocks


def nonempty_frames(skel) -> np.ndarray:
    """Sorted int64 indices (header numbering) of the frames that hold at least one body-frame."""
    return np.unique(np.asarray(skel.frame, dtype=np.int64))


def group_tracks(skel) -> tuple[list[Track], int]:
    """Group body-frames by bodyID.

    Returns ``(tracks, n_valid)``: the tracks in order of first appearance (the insertion order of the
    references' dicts) and the number of non-empty frames.
    """
    frames = nonempty_frames(skel)
    if len(frames) == 0:
        return [], 0
    compact = np.searchsorted(frames, np.asarray(skel.frame, dtype=np.int64))
    ids = np.asarray(skel.body_id, dtype=np.int64)
    uniq, first = np.unique(ids, return_index=True)
    tracks = []
    for k in np.argsort(first, kind="stable"):
        rows = np.flatnonzero(ids == uniq[k])
        tracks.append(Track(int(uniq[k]), int(compact[rows[0]]), np.ascontiguousarray(skel.xyz[rows], np.float32)))
    return tracks, len(frames)


def body_motion(xyz: np.ndarray) -> np.float32:
    """Motion of a body: the summed per-axis variance of all its joints, float32 ``(n, 25, 3) -> scalar``."""
    flat = np.ascontiguousarray(xyz, dtype=np.float32).reshape(-1, 3)
    return np.sum(np.var(flat, axis=0))


def spread_valid(xyz: np.ndarray) -> np.ndarray:
    """Per-frame bool ``(n,)``: True where the x-extent is at most 0.8 times the y-extent (a plausible body).

    Extents are float32 differences; the comparison runs in float64 as the references' ``0.8 * float32`` did.
    """
    ext_x = xyz[:, :, 0].max(axis=1) - xyz[:, :, 0].min(axis=1)
    ext_y = xyz[:, :, 1].max(axis=1) - xyz[:, :, 1].min(axis=1)
    return ext_x.astype(np.float64) <= SPREAD_RATIO * ext_y.astype(np.float64)


def _by_motion(tracks: list[Track], motion: dict[int, np.float32]) -> list[Track]:
    """Tracks sorted by motion, largest first; ties keep their current order (stable)."""
    keys = np.array([-motion[t.body_id] for t in tracks], dtype=np.float32)
    return [tracks[i] for i in np.argsort(keys, kind="stable")]


def _place(out: np.ndarray, person: int, track: Track) -> None:
    """Write a track's packed joints into ``out[person, start:stop]`` (rows past the end are dropped)."""
    stop = min(track.stop, out.shape[1])
    out[person, track.start:stop] = track.xyz[: stop - track.start]


def _merge_into_two(tracks: list[Track], n_frames: int, disjoint, virtual: tuple[int, int]) -> tuple[np.ndarray, int]:
    """Interval merge shared by pyskl and CTR-GCN: ``(2, n_frames, 25, 3)`` float32 and the number dropped.

    Spans are exclusive ``[start, stop)``. Person 0 starts with the first track's span, person 1 with the
    reference's *virtual* interval ``virtual`` (so its span always reaches back to frame 0 once used). Each later
    track goes to the first person whose span it is ``disjoint(lo, hi, start, stop)`` from, overwriting its
    frames there, and the span becomes the hull of both; a track disjoint from neither is dropped.
    """
    kp = np.zeros((2, n_frames, NUM_JOINTS, 3), np.float32)
    spans = [[tracks[0].start, tracks[0].stop], list(virtual)]
    _place(kp, 0, tracks[0])
    dropped = 0
    for t in tracks[1:]:
        for person, (lo, hi) in enumerate(spans):
            if disjoint(lo, hi, t.start, t.stop):
                _place(kp, person, t)
                spans[person] = [min(lo, t.start), max(hi, t.stop)]
                break
        else:
            dropped += 1
    return kp, dropped


def _disjoint_exclusive(lo: int, hi: int, start: int, stop: int) -> bool:
    """pyskl: ``max(s1, s) >= min(e1, e)`` on exclusive ends."""
    return max(lo, start) >= min(hi, stop)


def _disjoint_inclusive(lo: int, hi: int, start: int, stop: int) -> bool:
    """CTR-GCN: ``min(e1, e) - max(s1, s) <= 0`` on inclusive ends (``e = stop - 1``): sharing one frame is
    "no overlap"."""
    return (min(hi, stop) - 1) - max(lo, start) <= 0


# --------------------------------------------------------------------------------------------------------------
# pyskl


def _pyskl_spread(tracks: list[Track], motion: dict[int, np.float32]) -> list[Track]:
    """pyskl's spread denoising over every track; updates ``motion`` in place, returns the survivors."""
    kept = []
    for t in tracks:
        valid = spread_valid(t.xyz)
        n_valid = int(valid.sum())
        if n_valid == t.length:
            kept.append(t)
            continue
        if 1.0 - n_valid / t.length >= SPREAD_NOISE_RATE:
            continue
        motion[t.body_id] = min(motion[t.body_id], body_motion(t.xyz[valid]))
        kept.append(t)
    return kept


def _pyskl_trim(kp: np.ndarray) -> tuple[np.ndarray, int]:
    """Trim leading and trailing frames whose summed |value| over all persons is below ``PYSKL_EPS``."""
    def empty(t: int) -> bool:
        return bool(np.sum(np.abs(kp[:, t])) < PYSKL_EPS)

    n = kp.shape[1]
    s, e = 0, n
    while s < n and empty(s):
        s += 1
    if s == n:
        raise NothingToKeep("every frame of the selected bodies is (near) zero (pyskl's non_zero would fail)")
    while empty(e - 1):
        e -= 1
    return kp[:, s:e], n - (e - s)


def select_pyskl(skel) -> tuple[np.ndarray, list[str]]:
    """pyskl offline selection. Returns ``(keypoint (P, T, 25, 3) float32, notes)`` with P in {1, 2}.

    1. Non-empty frames only; bodies keyed by bodyID; motion per body; stable sort by motion, largest first.
    2. One body: returned as is. Otherwise drop bodies seen in <= 11 frames, then (if more than one is left)
       apply spread denoising to every body and sort again.
    3. Two or more left: interval merge into two slots with exclusive ends (``max(s1, s) >= min(e1, e)`` means
       no overlap), trim leading/trailing empty frames, swap the persons if person 0 lacks joint 1 in frame 0.

    Raises :class:`NothingToKeep` where pyskl returns ``None`` (no body at all) or fails (denoising left no body).
    """
    tracks, _ = group_tracks(skel)
    if not tracks:
        raise NothingToKeep("no body in any frame")
    notes: list[str] = []
    motion = {t.body_id: body_motion(t.xyz) for t in tracks}
    tracks = _by_motion(tracks, motion)
    if len(tracks) == 1:
        return tracks[0].xyz[None].copy(), notes

    long_enough = [t for t in tracks if t.length > NOISE_LENGTH]
    if len(long_enough) < len(tracks):
        notes.append(f"{len(tracks) - len(long_enough)} noise bodies removed (<= {NOISE_LENGTH} frames)")
    if not long_enough:
        raise NothingToKeep(f"all {len(tracks)} bodies last <= {NOISE_LENGTH} frames (pyskl would fail an assert)")
    tracks = long_enough
    if len(tracks) == 1:
        return tracks[0].xyz[None].copy(), notes

    survivors = _pyskl_spread(tracks, motion)
    if len(survivors) < len(tracks):
        notes.append(f"{len(tracks) - len(survivors)} noise bodies removed (spread)")
    if not survivors:
        raise NothingToKeep("spread denoising removed every body (pyskl would fail an assert)")
    tracks = _by_motion(survivors, motion)
    if len(tracks) == 1:
        return tracks[0].xyz[None].copy(), notes

    kp, dropped = _merge_into_two(tracks, max(t.stop for t in tracks), _disjoint_exclusive, (0, 0))
    if dropped:
        notes.append(f"{dropped} bodies dropped (they overlap both persons)")

    kp, trimmed = _pyskl_trim(kp)
    if trimmed:
        notes.append(f"{trimmed} leading/trailing empty frames trimmed")
    if np.sum(np.abs(kp[0, 0, 1])) < PYSKL_EPS and np.sum(np.abs(kp[1, 0, 1])) > PYSKL_EPS:
        kp = kp[::-1]
        notes.append("persons swapped (person 0 absent from the first frame)")
    return np.ascontiguousarray(kp), notes


# --------------------------------------------------------------------------------------------------------------
# CTR-GCN


def _ctrgcn_spread(tracks: list[Track], motion: dict[int, np.float32]) -> list[Track]:
    """CTR-GCN's spread denoising: visits tracks in order and stops as soon as one track is left."""
    alive = list(tracks)
    for t in tracks:
        if len(alive) == 1:
            break
        valid = spread_valid(t.xyz)
        n_noise = t.length - int(valid.sum())
        if n_noise == 0:
            continue
        if n_noise / t.length >= SPREAD_NOISE_RATE:
            alive = [a for a in alive if a is not t]
        else:
            motion[t.body_id] = min(motion[t.body_id], body_motion(t.xyz[valid]))
    return alive


def _drop_empty_rows(kp: np.ndarray) -> tuple[np.ndarray, int]:
    """Remove frames where the row of all persons' coordinates sums to exactly 0 (CTR-GCN's missing frames).

    The sum runs over the reference's ``(T, P*75)`` float32 row layout.
    """
    rows = np.ascontiguousarray(kp.transpose(1, 0, 2, 3)).reshape(kp.shape[1], -1)
    keep = rows.sum(axis=1) != 0
    return np.ascontiguousarray(kp[:, keep]), int((~keep).sum())


def select_ctrgcn(skel) -> tuple[np.ndarray, list[str]]:
    """CTR-GCN denoising. Returns ``(joints (P, T, 25, 3) float32, notes)`` with P in {1, 2}.

    1. 0-body frames are dropped; bodies keyed by bodyID.
    2. A single bodyID: placed on its interval, nothing else.
    3. Several: drop bodies seen in <= 11 frames; spread denoising, stopping once one body is left; if one is
       left it is the only actor, else stable sort by motion (largest first) and interval merge into two actors
       with inclusive ends (``min(e1, e) - max(s1, s) <= 0`` means no overlap, so touching intervals share a
       frame and the later body overwrites it). Frames where every actor is zero are then removed.

    Raises :class:`NothingToKeep` where CTR-GCN fails: every frame empty (its assert) or every body
    shorter than 12 frames (an IndexError there). Where a bodyID listed twice in one frame packs past the last
    frame (a broadcast error there), the rows past the end are dropped.
    """
    tracks, n_valid = group_tracks(skel)
    if not tracks:
        raise NothingToKeep(f"all {skel.num_frames} frames are empty (CTR-GCN asserts)")
    notes: list[str] = []
    if max(t.stop for t in tracks) > n_valid:
        notes.append("a bodyID is listed twice in one frame: its packed rows past the last frame are dropped "
                     "(CTR-GCN would fail on them)")
    if len(tracks) == 1:
        kp = np.zeros((1, n_valid, NUM_JOINTS, 3), np.float32)
        _place(kp, 0, tracks[0])
        return kp, notes

    motion = {t.body_id: body_motion(t.xyz) for t in tracks}
    long_enough = [t for t in tracks if t.length > NOISE_LENGTH]
    if len(long_enough) < len(tracks):
        notes.append(f"{len(tracks) - len(long_enough)} noise bodies removed (<= {NOISE_LENGTH} frames)")
    if not long_enough:
        raise NothingToKeep(f"all {len(tracks)} bodies last <= {NOISE_LENGTH} frames (CTR-GCN would fail)")
    survivors = long_enough if len(long_enough) == 1 else _ctrgcn_spread(long_enough, motion)
    if len(survivors) < len(long_enough):
        notes.append(f"{len(long_enough) - len(survivors)} noise bodies removed (spread)")

    if len(survivors) == 1:
        kp = np.zeros((1, n_valid, NUM_JOINTS, 3), np.float32)
        _place(kp, 0, survivors[0])
    else:
        # CTR-GCN's virtual actor-2 interval is the inclusive [0, 0], i.e. the exclusive [0, 1)
        kp, dropped = _merge_into_two(_by_motion(survivors, motion), n_valid, _disjoint_inclusive, (0, 1))
        if dropped:
            notes.append(f"{dropped} bodies dropped (they overlap both actors)")
    kp, removed = _drop_empty_rows(kp)
    if removed:
        notes.append(f"{removed} frames without any actor removed")
    return kp, notes


# --------------------------------------------------------------------------------------------------------------
# MS-G3D / 2s-AGCN and none


def slot_array(skel, slots: int, dtype=np.float32) -> np.ndarray:
    """Bodies by slot: ``(slots, num_frames, 25, 3)``, body ``s`` of frame ``f`` at ``[s, f]``, zeros elsewhere.

    Body-frames in slot ``>= slots`` are ignored.
    """
    out = np.zeros((slots, skel.num_frames, NUM_JOINTS, 3), dtype)
    slot = np.asarray(skel.slot)
    take = slot < slots
    out[slot[take], np.asarray(skel.frame)[take]] = skel.xyz[take]
    return out


def _slot_notes(skel, slots: int) -> list[str]:
    """Check that a slot-based preset has a body to read; note the body-frames it cannot read."""
    if len(skel.frame) == 0:
        raise NothingToKeep(f"all {skel.num_frames} frames are empty")
    ignored = int((np.asarray(skel.slot) >= slots).sum())
    return [f"{ignored} body-frames beyond the first {slots} of their frame ignored"] if ignored else []


def msg3d_energy(person: np.ndarray) -> float:
    """MS-G3D's body energy ``(T, 25, 3) float64 -> float``: std(x) + std(y) + std(z) over the frames whose
    coordinate sum is non-zero; 0 for a body with no such frame."""
    frames = person[person.sum(-1).sum(-1) != 0]
    if len(frames) == 0:
        return 0.0
    return float(frames[:, :, 0].std() + frames[:, :, 1].std() + frames[:, :, 2].std())


def select_msg3d(skel, max_persons: int = 2) -> tuple[np.ndarray, list[str]]:
    """MS-G3D ``read_xyz``. Returns ``(data (max_persons, num_frames, 25, 3) float32, notes)``.

    Reads the first 4 bodies of each frame by slot (float64, as the reference parses them), ranks the slots by
    :func:`msg3d_energy` with a stable ascending sort reversed (ties: the later slot first, as NumPy 1.x's
    insertion sort gave), keeps the top ``max_persons`` (zero persons beyond 4).
    """
    notes = _slot_notes(skel, MSG3D_SLOTS)
    data = slot_array(skel, MSG3D_SLOTS, np.float64)
    energy = np.array([msg3d_energy(p) for p in data])
    order = np.argsort(energy, kind="stable")[::-1][:max_persons]
    out = np.zeros((max_persons,) + data.shape[1:], np.float32)
    out[: len(order)] = data[order]
    return out, notes


def select_none(skel, max_persons: int = 2) -> tuple[np.ndarray, list[str]]:
    """The first ``max_persons`` bodies of every frame by slot: ``(max_persons, num_frames, 25, 3)`` float32."""
    return slot_array(skel, max_persons), _slot_notes(skel, max_persons)

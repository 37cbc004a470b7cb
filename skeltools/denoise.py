"""Body selection of preset ``clean``: track bodies over time, keep the persons, never the noise.

The references decide what a person is from one frame's x/y extent (the "spread" rule, which a real actor seen
side-on with extended arms fails) and merge bodyIDs by interval arithmetic (which drops an actor whose bodyID
changes and shifts an actor that drops out). Here:

1. :func:`tracklets` groups the body-frames by bodyID, each at its file frame numbers.
2. :func:`link_tracklets` chains tracklets that never share a frame and meet with a continuous pose (an ID switch,
   an ID flicker, a re-acquisition after a dropout) into one *track*, longest tracklets first.
3. :func:`track_evidence` measures each track: plausible bone lengths and torso angles (pose-invariant, so a
   side-on or bent actor passes), motion over time, duration.
4. :func:`choose_persons` keeps up to two persons: bodies with a human shape, lasting more than 11
   frames, not still over 2 s or more (a still body only when nothing moves); a second tracking of a person
   already kept (its position: a few centimetres away in the frames both hold) only adds the frames that person
   lacks. The main person (more frames, then more motion, as pyskl orders them) comes first. When nothing
   passes, the longest track is kept, so a file with a body in it is never skipped.
5. :func:`select_clean` places each person at the file's frame numbers (gaps are zeros, nothing is shifted).
   ``skeltools.presets`` then normalises as pyskl's ``PreNormalize3D`` does.

Axis order: tracklet and track poses are ``(n, 25, 3)`` float32 (appearances, joints, xyz) with ``frames`` (n,)
int64 file frame numbers; :func:`select_clean` returns ``(P, num_frames, 25, 3)`` float32, P in {1, 2}.
Joint tracking states are not used: the reader keeps only x, y, z.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skeltools.select import NUM_JOINTS, NothingToKeep

#: Typical adult Kinect v2 bone lengths in metres: (joint, joint, length). Pose-invariant evidence of a person.
HUMAN_BONES = ((0, 1, 0.28), (1, 20, 0.24), (20, 4, 0.17), (20, 8, 0.17), (4, 5, 0.27), (8, 9, 0.27),
               (5, 6, 0.24), (9, 10, 0.24), (12, 13, 0.40), (16, 17, 0.40), (13, 14, 0.39), (17, 18, 0.39))
_BONE_A = np.array([a for a, _, _ in HUMAN_BONES])
_BONE_B = np.array([b for _, b, _ in HUMAN_BONES])
_BONE_LEN = np.array([n for _, _, n in HUMAN_BONES], np.float32)
#: Left/right pairs among HUMAN_BONES (shoulders, upper arms, forearms, thighs, shins).
_BONE_PAIRS = np.array([(2, 3), (4, 5), (6, 7), (8, 9), (10, 11)])
#: Body scale (median bone length / typical) of a person: a child to a tall adult, with Kinect's errors.
SCALE_RANGE = (0.5, 1.6)
#: A bone fits when its length / (scale x typical) lies in this range, a left/right pair when the longer is at
#: most MAX_ASYMMETRY times the shorter, the torso when each TORSO_ANGLES test holds; a person has at most
#: MAX_MISFITS misfits of any kind.
BONE_RATIO_RANGE = (0.65, 1.55)
MAX_ASYMMETRY = 1.4
MAX_MISFITS = 2
#: Torso tests that hold in any pose (a rigid torso): (bone a, bone b, lowest and highest median cosine of their
#: angle). The spine does not fold back (0->1 vs 1->20), the shoulder and hip lines cross the spine (4->8 vs
#: 0->20, 12->16 vs 0->1), the head continues the upper spine (2->3 vs 1->20, within 70 degrees).
TORSO_ANGLES = (((0, 1), (1, 20), 0.0, 1.0), ((4, 8), (0, 20), -0.5, 0.5), ((12, 16), (0, 1), -0.5, 0.5),
                ((2, 3), (1, 20), 0.34, 1.0))
_TORSO_U = np.array([u for u, _, _, _ in TORSO_ANGLES])
_TORSO_V = np.array([v for _, v, _, _ in TORSO_ANGLES])
_TORSO_LOW = np.array([low for _, _, low, _ in TORSO_ANGLES])
_TORSO_HIGH = np.array([high for _, _, _, high in TORSO_ANGLES])
#: Tracks seen in fewer frames are flickers unless nothing longer exists (the references keep > 11 frames).
MIN_FRAMES = 12
#: A track seen in at least STILL_FRAMES frames (2 s) whose median joint standard deviation over time stays below
#: STILL (metres) is still, like furniture (over a shorter time a person may well keep still).
STILL = 0.006
STILL_FRAMES = 60
#: Linking: the mean joint distance (metres) allowed between the poses at a junction, plus this per frame of gap,
#: across at most MAX_LINK_GAP frames; a piece seen in fewer than MIN_FRAMES frames (an ID flicker) links only
#: across SHORT_LINK_GAP frames, so a short false detection does not join a person entering later.
LINK_DISTANCE = 0.15
LINK_PER_FRAME = 0.03
MAX_LINK_GAP = 15
SHORT_LINK_GAP = 2
#: A candidate whose mean joint distance to a person already kept, over their shared frames, is below this is the
#: same person tracked twice (a ghost).
GHOST_DISTANCE = 0.1
MAX_PERSONS = 2
#: Shape and stillness are measured on this many frames of a track, evenly spaced.
EVIDENCE_FRAMES = 32


@dataclass(frozen=True, eq=False)
class Tracklet:
    """All appearances of one bodyID: ``frames`` (n,) int64 increasing file frame numbers, ``xyz`` (n, 25, 3)."""

    body_id: int
    frames: np.ndarray
    xyz: np.ndarray


@dataclass(frozen=True, eq=False)
class Track:
    """Tracklets chained into one body over time (sorted by frame, no frame twice)."""

    body_ids: tuple[int, ...]
    frames: np.ndarray
    xyz: np.ndarray


@dataclass(frozen=True)
class Evidence:
    """What :func:`choose_persons` knows about a track.

    frames     how many frames it is seen in
    valid      frames with any non-zero joint (a body zeroed upstream for NaN is not evidence)
    human      a person's shape: bone lengths (scale and proportions) and torso angles
    still      it is seen long enough to be sure its joints do not move (see :data:`STILL`)
    motion     pyskl's motion (summed per-axis variance of all joints) over the sampled frames, to order persons
    """

    frames: int
    valid: int
    human: bool
    still: bool
    motion: float


def tracklets(skel) -> list[Tracklet]:
    """Body-frames grouped by bodyID, in order of first appearance; a bodyID listed twice in one frame keeps
    its first listing."""
    ids = np.asarray(skel.body_id, np.int64)
    frame = np.asarray(skel.frame, np.int64)
    order = np.lexsort((frame, ids))  # by bodyID, then frame; stable, so a repeat keeps file order
    ids_s, frame_s = ids[order], frame[order]
    first = np.ones(len(order), bool)
    first[1:] = (ids_s[1:] != ids_s[:-1]) | (frame_s[1:] != frame_s[:-1])
    order, ids_s, frame_s = order[first], ids_s[first], frame_s[first]
    starts = np.flatnonzero(np.r_[True, ids_s[1:] != ids_s[:-1]])
    stops = np.r_[starts[1:], len(order)]
    groups = sorted(zip(starts, stops), key=lambda g: order[g[0]])
    return [Tracklet(int(ids_s[a]), frame_s[a:b], np.ascontiguousarray(skel.xyz[order[a:b]], np.float32))
            for a, b in groups]


def _junction_cost(track: Track, piece: Tracklet) -> float:
    """How far ``piece`` is from continuing ``track`` (<= 1: it does; inf: it cannot).

    It cannot when a track frame lies within the piece's span (a shared frame, or interleaving) or when they
    meet nowhere within :data:`MAX_LINK_GAP` frames (:data:`SHORT_LINK_GAP` when either is short). At each
    junction (the track's frame just before the piece, and just after it) the mean joint distance is divided by
    what that gap allows; the cost is the worst one.
    """
    i = int(np.searchsorted(track.frames, piece.frames[0]))
    if i != int(np.searchsorted(track.frames, piece.frames[-1], side="right")):
        return np.inf
    junctions = []
    if i > 0:
        junctions.append((piece.frames[0] - track.frames[i - 1], track.xyz[i - 1], piece.xyz[0]))
    if i < len(track.frames):
        junctions.append((track.frames[i] - piece.frames[-1], track.xyz[i], piece.xyz[-1]))
    max_gap = MAX_LINK_GAP if min(len(track.frames), len(piece.frames)) >= MIN_FRAMES else SHORT_LINK_GAP
    costs = [float(_norm(theirs - mine).mean()) / (LINK_DISTANCE + LINK_PER_FRAME * (gap - 1))
             for gap, theirs, mine in junctions if gap <= max_gap]
    return max(costs) if costs else np.inf


def _extend(track: Track, body_ids: tuple[int, ...], frames: np.ndarray, xyz: np.ndarray) -> Track:
    """``track`` with more appearances (``frames`` none of its own), kept sorted by frame."""
    frames = np.concatenate([track.frames, frames])
    order = np.argsort(frames, kind="stable")
    return Track(track.body_ids + body_ids, frames[order], np.concatenate([track.xyz, xyz])[order])


def link_tracklets(pieces: list[Tracklet]) -> list[Track]:
    """Chain tracklets into tracks: longest first, each joins the track it continues best (cost <= 1) or starts
    its own. Tracks come out in order of their first tracklet's appearance."""
    rank = {id(p): k for k, p in enumerate(pieces)}
    tracks: list[Track] = []
    first: list[int] = []
    for piece in sorted(pieces, key=lambda p: -len(p.frames)):
        costs = [_junction_cost(t, piece) for t in tracks]
        best = int(np.argmin(costs)) if costs else -1
        if best >= 0 and costs[best] <= 1.0:
            tracks[best] = _extend(tracks[best], (piece.body_id,), piece.frames, piece.xyz)
            first[best] = min(first[best], rank[id(piece)])
        else:
            tracks.append(Track((piece.body_id,), piece.frames, piece.xyz))
            first.append(rank[id(piece)])
    return [tracks[k] for k in np.argsort(first, kind="stable")]


def _lower_median(x: np.ndarray, axis: int = 0) -> np.ndarray:
    """The lower median along ``axis`` (one sort; cheaper than ``np.median`` on the small arrays here)."""
    return np.sort(x, axis=axis).take((x.shape[axis] - 1) // 2, axis=axis)


def _norm(v: np.ndarray) -> np.ndarray:
    """Euclidean length over the last axis."""
    return np.sqrt((v * v).sum(-1))


def _torso_misfits(xyz: np.ndarray) -> np.ndarray:
    """How many :data:`TORSO_ANGLES` tests the median cosines fail: ``(..., n, 25, 3) -> (...)`` int."""
    u = xyz[..., _TORSO_U[:, 1], :] - xyz[..., _TORSO_U[:, 0], :]  # (..., n, tests, 3)
    v = xyz[..., _TORSO_V[:, 1], :] - xyz[..., _TORSO_V[:, 0], :]
    cos = _lower_median((u * v).sum(-1) / np.maximum(_norm(u) * _norm(v), 1e-9), axis=-2)
    return np.count_nonzero((cos < _TORSO_LOW) | (cos > _TORSO_HIGH), axis=-1)


def human_body(xyz: np.ndarray) -> np.ndarray:
    """Whether each ``(n, 25, 3)`` of ``xyz`` (..., n, 25, 3) has a person's shape in any pose: median bone
    lengths at a body scale in :data:`SCALE_RANGE`, and at most :data:`MAX_MISFITS` bones outside
    :data:`BONE_RATIO_RANGE` of it, left/right pairs more than :data:`MAX_ASYMMETRY` apart, or failed
    :data:`TORSO_ANGLES` tests. Returns bool ``(...)``."""
    lengths = _lower_median(_norm(xyz[..., _BONE_A, :] - xyz[..., _BONE_B, :]), axis=-2) / _BONE_LEN
    scale = _lower_median(lengths, axis=-1)[..., None]
    ratio = lengths / np.maximum(scale, 1e-9)
    misfits = np.count_nonzero((ratio < BONE_RATIO_RANGE[0]) | (ratio > BONE_RATIO_RANGE[1]), axis=-1)
    left, right = lengths[..., _BONE_PAIRS[:, 0]], lengths[..., _BONE_PAIRS[:, 1]]
    misfits += np.count_nonzero(np.maximum(left, right) > MAX_ASYMMETRY * np.minimum(left, right), axis=-1)
    sized = (scale[..., 0] >= SCALE_RANGE[0]) & (scale[..., 0] <= SCALE_RANGE[1])
    return sized & (misfits + _torso_misfits(xyz) <= MAX_MISFITS)


def joint_spread(xyz: np.ndarray) -> np.ndarray:
    """Median over joints of the length of each joint's per-axis standard deviation over time:
    ``(..., n, 25, 3) -> (...)``."""
    return _lower_median(_norm(xyz.std(axis=-3)), axis=-1)


def track_evidence(tracks: list[Track]) -> list[Evidence]:
    """Measure each track on :data:`EVIDENCE_FRAMES` of its non-zero frames, evenly spaced (repeated when it has
    fewer), all tracks in one batch."""
    samples, valid = [], []
    for track in tracks:
        live = np.flatnonzero(np.any(track.xyz.reshape(len(track.xyz), -1) != 0, axis=1))
        valid.append(len(live))
        pick = live[np.linspace(0, len(live) - 1, EVIDENCE_FRAMES).astype(np.int64)] if len(live) else [0]
        samples.append(np.broadcast_to(track.xyz[pick], (EVIDENCE_FRAMES, NUM_JOINTS, 3)))
    batch = np.stack(samples)  # (tracks, EVIDENCE_FRAMES, 25, 3)
    human, spread = human_body(batch), joint_spread(batch)
    motion = batch.reshape(len(tracks), -1, 3).var(axis=1).sum(-1)
    return [Evidence(len(t.frames), n, bool(human[k]) and n > 0, n >= STILL_FRAMES and bool(spread[k] < STILL),
                     float(motion[k])) for k, (t, n) in enumerate(zip(tracks, valid))]


def _is_ghost(track: Track, kept: Track) -> bool:
    """``track`` follows ``kept`` closely over their shared frames (or shares none: not a ghost)."""
    at = np.minimum(np.searchsorted(kept.frames, track.frames), len(kept.frames) - 1)
    shared = kept.frames[at] == track.frames
    if not shared.any():
        return False
    return float(_norm(track.xyz[shared] - kept.xyz[at[shared]]).mean()) < GHOST_DISTANCE


def _absorb(kept: Track, ghost: Track) -> Track:
    """``kept`` completed with the frames only its second tracking ``ghost`` has (a bodyID switch whose two IDs
    share a frame, a duplicate that outlasts the original)."""
    extra = ~np.isin(ghost.frames, kept.frames)
    return _extend(kept, ghost.body_ids, ghost.frames[extra], ghost.xyz[extra]) if extra.any() else kept


def _verdict(e: Evidence, something_moves: bool) -> str:
    """Why a track is not a person ("" when it is one)."""
    if e.valid == 0:
        return "a body zero in every frame"
    if not e.human:
        return "a body without a human shape"
    if e.frames < MIN_FRAMES:
        return f"a body seen in fewer than {MIN_FRAMES} frames"
    if something_moves and e.still:
        return "a still body"
    return ""


def _main_first(evidence: list[Evidence], candidates: list[int]) -> list[int]:
    """Candidates by frames seen, most first; ties by motion, largest first (pyskl's order)."""
    return sorted(candidates, key=lambda k: (-evidence[k].frames, -evidence[k].motion))


def choose_persons(tracks: list[Track], evidence: list[Evidence]) -> tuple[list[Track], list[str]]:
    """The persons to keep (main person first; a second tracking of a person is merged into it) and why each
    other track was dropped."""
    something_moves = any(not _verdict(e, False) and not e.still for e in evidence)
    verdicts = [_verdict(e, something_moves) for e in evidence]
    candidates = [k for k, v in enumerate(verdicts) if not v]
    if not candidates:  # nothing looks like a person: keep the most person-like, longest body rather than none
        candidates = [max(range(len(tracks)), key=lambda k: (evidence[k].valid > 0, evidence[k].human,
                                                            evidence[k].frames))]
    persons: list[Track] = []
    for k in _main_first(evidence, candidates):
        twin = next((p for p, kept in enumerate(persons) if _is_ghost(tracks[k], kept)), None)
        if twin is not None:
            persons[twin] = _absorb(persons[twin], tracks[k])
            verdicts[k] = "a second tracking of a kept person (merged)"
        elif len(persons) == MAX_PERSONS:
            verdicts[k] = "a third person"
        else:
            persons.append(tracks[k])
            verdicts[k] = ""
    return persons, [v for v in verdicts if v]


def select_clean(skel) -> tuple[np.ndarray, list[str]]:
    """Preset ``clean``'s selection. Returns ``(keypoint (P, num_frames, 25, 3) float32, notes)``, P in {1, 2}:
    each person at the file's frame numbers, zeros where it is not seen.

    Raises :class:`NothingToKeep` only when no frame holds a body.
    """
    pieces = tracklets(skel)
    if not pieces:
        raise NothingToKeep("no body in any frame")
    tracks = link_tracklets(pieces)
    if len(tracks) == 1:  # kept whatever its evidence (the fallback), so none is measured
        persons, reasons = tracks, []
    else:
        persons, reasons = choose_persons(tracks, track_evidence(tracks))
    notes = [f"{len(pieces)} bodyIDs linked into {len(tracks)} tracks"] if len(tracks) < len(pieces) else []
    if reasons:
        notes.append(f"dropped {len(reasons)} of {len(tracks)} tracks: " + ", ".join(sorted(set(reasons))))
    kp = np.zeros((len(persons), skel.num_frames, NUM_JOINTS, 3), np.float32)
    for p, person in enumerate(persons):
        kp[p, person.frames] = person.xyz
    return kp, notes

"""The numpy person selection that the numba kernels of ``skeltools.readers.openpose`` replaced, kept as the
oracle the kernels must match bit for bit (same decisions, NaN included). Lists of per-frame ``(P, V, 3)`` in,
``(T, M, V, 3)`` out."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STGCN_PERSONS_IN = 5


def select_stgcn(frames: list[np.ndarray], max_persons: int) -> np.ndarray:
    """The st-gcn reference: per frame, the first 5 people sorted by summed joint score, top ``max_persons`` kept.

    The sort is per frame, so identities can swap between frames (reproduced on purpose). -> (T, M, V, 3)
    """
    v = frames[0].shape[1]
    out = np.zeros((len(frames), max_persons, v, 3), np.float32)
    for t, people in enumerate(frames):
        people = people[:STGCN_PERSONS_IN]
        order = np.argsort(-people[:, :, 2].sum(axis=1), kind="stable")[:max_persons]
        out[t, :len(order)] = people[order]
    return out


def _box_size(people: np.ndarray) -> np.ndarray:
    """Diagonal of the box around each person's seen joints: ``(P, V, 3) -> (P,)`` (0 with fewer than 2 seen)."""
    seen = people[..., 2:] > 0
    lo = np.where(seen, people[..., :2], np.inf).min(axis=1)
    hi = np.where(seen, people[..., :2], -np.inf).max(axis=1)
    return np.where(seen.sum(axis=(1, 2)) > 1, np.sqrt(((hi - lo) ** 2).sum(axis=-1)), 0.0)


def match_cost(tracks: np.ndarray, people: np.ndarray) -> np.ndarray:
    """Mean distance over the joints seen in both, over the larger box size: ``(K, V, 3), (P, V, 3) -> (K, P)``.

    inf where no joint is seen in both. Dividing by the box diagonal makes the cost the same in pixels and in
    normalised coordinates; the larger of the two boxes keeps it stable when one pose has only a few joints.
    """
    both = (tracks[:, None, :, 2] > 0) & (people[None, :, :, 2] > 0)
    dist = np.sqrt(((people[None, :, :, :2] - tracks[:, None, :, :2]) ** 2).sum(axis=-1))
    n = both.sum(axis=-1)
    mean = np.where(n > 0, (dist * both).sum(axis=-1) / np.maximum(n, 1), np.inf)
    size = np.maximum(_box_size(people)[None], _box_size(tracks)[:, None])
    return mean / np.maximum(size, 1e-6)


@dataclass
class _Track:
    pose: np.ndarray  # (V, 3) last seen
    frame: int  # when it was last seen
    velocity: np.ndarray  # (V, 2) per frame, over joints seen in the last two sightings (else 0)

    def predict(self, t: int) -> np.ndarray:
        out = self.pose.copy()
        out[:, :2] += self.velocity * (t - self.frame)
        return out

    def update(self, pose: np.ndarray, t: int) -> None:
        both = (self.pose[:, 2:] > 0) & (pose[:, 2:] > 0)
        self.velocity = np.where(both, (pose[:, :2] - self.pose[:, :2]) / (t - self.frame), 0.0)
        self.pose, self.frame = pose, t


def select_tracked(frames: list[np.ndarray], max_persons: int, max_cost: float = 3.0) -> np.ndarray:
    """Track people across frames, then keep the ``max_persons`` tracks with the highest total score.

    Each frame's people are matched greedily (cheapest first, :func:`match_cost` below ``max_cost``) to where the
    tracks are predicted to be (last pose moved at its last velocity); an unmatched person starts a track. Who
    goes with whom among several people is decided by the cheapest-first order; the loose ``max_cost`` only stops
    a far-away newcomer from taking over a track (OpenPose output jitters by about a box size between frames on
    real video). Tracks keep their slot in every frame; frames where a track is not seen are zero. Slots are
    ordered by total score, highest first. -> (T, M, V, 3)
    """
    v = frames[0].shape[1]
    tracks: list[_Track] = []
    owner: list[np.ndarray] = []  # per frame: track of each person
    for t, people in enumerate(frames):
        ids = np.full(len(people), -1)
        if tracks and len(people):
            costs = match_cost(np.stack([track.predict(t) for track in tracks]), people)  # (tracks, P)
            for flat in np.argsort(costs, axis=None, kind="stable"):
                k, p = divmod(int(flat), len(people))
                if costs[k, p] >= max_cost:
                    break
                if ids[p] < 0 and k not in ids:
                    ids[p] = k
        for p in range(len(people)):
            if ids[p] < 0:
                ids[p] = len(tracks)
                tracks.append(_Track(people[p], t, np.zeros((v, 2), np.float32)))
            else:
                tracks[ids[p]].update(people[p], t)
        owner.append(ids)
    totals = np.zeros(len(tracks))
    for people, ids in zip(frames, owner):
        np.add.at(totals, ids, people[:, :, 2].sum(axis=1))
    keep = np.argsort(-totals, kind="stable")[:max_persons]
    slot = np.full(len(tracks), -1)
    slot[keep] = np.arange(len(keep))
    out = np.zeros((len(frames), max_persons, v, 3), np.float32)
    for t, (people, ids) in enumerate(zip(frames, owner)):
        s = slot[ids]
        out[t, s[s >= 0]] = people[s >= 0]
    return out

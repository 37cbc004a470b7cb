"""OpenPose per-frame JSON and Kinetics-Skeleton JSON -> per-frame person arrays, person selection, normalization.

Array conventions: one frame's people are ``(P, V, 3)`` float32 with channels x, y, confidence; a video's
selected people are ``(T, M, V, 3)``. Undetected joints are ``0, 0, 0`` as OpenPose writes them.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

POSE_KEYS = ("pose_keypoints_2d", "pose_keypoints")  # the second is the key before OpenPose 1.2 (Feb 2018)
MODEL_JOINTS = {"coco18": 18, "body25": 25, "body25b": 25}
STGCN_PERSONS_IN = 5  # st-gcn's feeder reads only the first 5 skeletons of a frame

_OPENPOSE_NAME = re.compile(r"^(.*)_(\d{12})_keypoints\.json$")
_LAST_INT = re.compile(r"^(.*?)[._-]?(\d+)(?:_keypoints)?\.json$")


class OpenPoseError(ValueError):
    """A malformed input file; the message names the file and the key."""


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


def _load(path) -> dict:
    try:
        with open(path, "rb") as fh:
            doc = json.loads(fh.read())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OpenPoseError(f"{path}: not readable JSON ({exc})") from None
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
    doc = _load(path)
    people = doc.get("people")
    if not isinstance(people, list):
        raise OpenPoseError(f"{path}: missing key 'people'")
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


@dataclass
class KineticsVideo:
    frame_index: np.ndarray  # (K,) int, as written
    people: list[np.ndarray]  # K arrays (P_k, V, 3)
    label_index: int | None  # None when absent or an empty string


def read_kinetics_video(path, num_joints: int = 18) -> KineticsVideo:
    """One Kinetics-Skeleton JSON (``data[].frame_index``, ``data[].skeleton[].pose/score``)."""
    doc = _load(path)
    data = doc.get("data")
    if not isinstance(data, list):
        raise OpenPoseError(f"{path}: missing key 'data'")
    index, people = [], []
    for k, frame in enumerate(data):
        if not isinstance(frame, dict) or not isinstance(frame.get("frame_index"), int):
            raise OpenPoseError(f"{path}: data[{k}] has no integer 'frame_index'")
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
    try:
        label = parse_label(doc.get("label_index"))
    except ValueError as exc:
        raise OpenPoseError(f"{path}: 'label_index': {exc}") from None
    return KineticsVideo(np.asarray(index, dtype=np.int64), people, label)


def parse_label(value) -> int | None:
    """A label index as written (int, digit string, "" or missing) -> int, or None for unlabelled."""
    if isinstance(value, bool) or value is None or value == "":
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise ValueError(f"label {value!r} is not an integer")


def timeline(numbers, people: list[np.ndarray], num_joints: int) -> list[np.ndarray]:
    """Place frames numbered ``numbers`` (any base, gaps allowed) on a time axis starting at the smallest number.

    A number missing in between gives a frame with nobody, so 0-based and 1-based numbering both keep their first
    frame and the spacing of the rest. A number given twice raises OpenPoseError.
    """
    numbers = np.asarray(numbers, dtype=np.int64)
    if len(numbers) == 0:
        return []
    t = numbers - numbers.min()
    counts = np.bincount(t)
    if (counts > 1).any():
        raise OpenPoseError(f"frame number {int(numbers.min() + np.argmax(counts > 1))} appears twice")
    out = [np.zeros((0, num_joints, 3), np.float32)] * len(counts)
    for ti, p in zip(t, people):
        out[ti] = p
    return out


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


def normalize_stgcn(data: np.ndarray, image_size: tuple[float, float] | None = None, flip_y: bool = False) -> np.ndarray:
    """st-gcn: x, y in [0, 1] (pixels divided by ``image_size`` W, H when given) minus 0.5, zeroed where the score
    is 0; ``flip_y`` negates y as the 2s-AGCN / MS-G3D copies do. ``(..., 3)`` in, new array out."""
    out = data.copy()
    if image_size is not None:
        out[..., :2] /= np.asarray(image_size, np.float32)
    out[..., :2] -= 0.5
    if flip_y:
        out[..., 1] *= -1
    out[..., :2] = np.where(out[..., 2:] != 0, out[..., :2], 0.0)
    return out

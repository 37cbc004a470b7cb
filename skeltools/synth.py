"""Synthetic NTU RGB+D corpus: format-faithful ``.skeleton`` files whose action classes are learnable.

A sample is built in three steps, each a small pure function:

1. a rest pose (metres; body frame: x to the person's right, y up, z backwards) scaled to the performer;
2. per-class *drives* (root shift, torso bend, head nod, wrist goals) turned into joint trajectories by two-bone
   inverse kinematics, then placed in Kinect camera space;
3. the Kinect side fields (pixels, orientations, tracking states, body line) and the text: ``%.7g`` numbers,
   CRLF line endings, exactly the grammar of ``formats-ntu.md`` §1.

``SynthSample`` keeps the ground truth in file order (body-frames as listed), so tests need not parse the text;
:func:`ground_truth` turns it into the JSON record of the corpus manifest (``write_ntu_corpus(manifest=True)``).

Hard cases for body selection (all opt-in: at rate 0 no random number is drawn for them, so a corpus written
without them is byte-identical to one written before they existed), each applied to a sample with its rate:

``side_on_ratio``     one actor turned side-on to the camera, crouching and bowing with both arms stretched ahead
                      (its x-extent exceeds 0.8 times its y-extent in most frames: the references' spread rule
                      calls it noise)
``id_switch2_ratio``  the second actor's bodyID changes once, between a third and two thirds of its frames
                      (``id_switch_ratio`` does the same to the first actor)
``dropout_ratio``     one actor vanishes for 3-10 consecutive frames mid-sequence, keeping its bodyID
``flicker_ratio``     one actor's bodyID changes for 1-5 frames and then comes back
``furniture_ratio``   a static, oddly proportioned body (a chair or coat rack seen as a person) in 50-100 % of
                      the frames, beside the actors; half of them are wide (spread noise), half narrow
``late_ratio``        (two-person actions) the second actor enters at 30-60 % of the sequence
``noise_body_ratio``  (already on by default) a short false detection of <= 11 frames: kind "flicker" noise
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from schemas.datasets import ntu_class_names, ntu_missing_samples
from schemas.layouts import NTU25

FPS = 30.0
J = {name: i for i, name in enumerate(NTU25.joint_names)}
# Joints whose orientation Kinect leaves at 0 0 0 0 (head, feet, hand tips, thumbs).
ZERO_ORIENTATION = tuple(J[n] for n in ("Head", "FootLeft", "FootRight", "HandTipLeft", "ThumbLeft",
                                        "HandTipRight", "ThumbRight"))
MANIFEST = "ground_truth.jsonl"  # the corpus manifest written beside the .skeleton files
BODY_ID_BASE = 2 ** 56  # Kinect v2 tracking IDs count up from here (about 7.2e16)
_EXTREMITIES = [J[s + side] for s in ("Wrist", "Hand", "HandTip", "Thumb", "Ankle", "Foot")
                for side in ("Left", "Right")]

# Rest pose of a ~1.75 m person, left side; the right side mirrors x.
_REST_AXIAL = {"SpineBase": (0, 0, 0), "SpineMid": (0, .28, 0), "SpineShoulder": (0, .52, 0),
               "Neck": (0, .60, 0), "Head": (0, .72, -.01)}
_REST_LEFT = {"Shoulder": (-.17, .49, 0), "Elbow": (-.20, .22, .01), "Wrist": (-.21, -.02, 0),
              "Hand": (-.21, -.09, -.01), "HandTip": (-.21, -.17, -.01), "Thumb": (-.19, -.08, -.04),
              "Hip": (-.08, -.03, 0), "Knee": (-.09, -.43, 0), "Ankle": (-.09, -.82, .02),
              "Foot": (-.09, -.86, -.08)}

# Kinect v2 camera model fitted on genuine NTU files: depth (512x424) and colour (1920x1080) pixels of x, y, z.
# The colour camera sits beside the depth camera, hence its parallax term (pixels x metres / z).
_DEPTH = (364.8, 260.3, -367.7, 209.3)                      # fx, cx, fy, cy
_COLOUR = (1043.9, -43.47, 986.5, -1036.0, -249.4, 621.7)   # fx, parallax x, cx, fy, parallax y, cy


@dataclass
class Drive:
    """What one actor does per frame, in its own body frame (metres, radians)."""

    root: np.ndarray   # (T, 3) shift of SpineBase
    bend: np.ndarray   # (T,) torso pitch forward
    nod: np.ndarray    # (T,) head pitch forward
    goal: np.ndarray   # (2, T, 3) wrist goals [left, right]
    reach: np.ndarray  # (2, T) 0: the arm hangs, 1: the wrist is at its goal


@dataclass(frozen=True)
class ActionClass:
    action: int   # 1-based NTU action id
    persons: int
    motion: Callable[[np.random.Generator, np.ndarray, np.ndarray], tuple[list[Drive], float]]

    @property
    def name(self) -> str:
        return ntu_class_names()[self.action - 1]


@dataclass(frozen=True)
class SynthSample:
    """Ground truth of one file; body-frames are listed in file order (frame by frame, slot by slot)."""

    name: str                      # SsssCcccPpppRrrrAaaa
    bodies_per_frame: np.ndarray   # int32 (T,)
    body_id: np.ndarray            # int64 (B,)
    actor: np.ndarray              # int8 (B,): 0 or 1 for the performers, -1 for a noise body
    xyz: np.ndarray                # float64 (B, 25, 3), exactly the printed values
    joint_info: np.ndarray         # float64 (B, 25, 8): depthX depthY colorX colorY orientation w x y z
    joint_state: np.ndarray        # int8 (B, 25): 2 tracked, 1 inferred
    body_info: np.ndarray          # int64 (B, 6): clipedEdges, hand confidences and states, isResticted
    lean: np.ndarray               # float64 (B, 2): leanX, leanY
    noise_kind: dict[int, str] = field(default_factory=dict)  # bodyID of each noise body -> "flicker" | "furniture"
    cases: tuple[str, ...] = ()    # hard cases applied, e.g. "side_on:1", "id_switch:0", "late:1"
    dropout: dict[int, np.ndarray] = field(default_factory=dict)  # actor -> frames it dropped out of (int64)

    @property
    def action(self) -> int:
        return int(self.name[-3:])

    @property
    def num_frames(self) -> int:
        return len(self.bodies_per_frame)

    @property
    def frame(self) -> np.ndarray:
        """0-based frame index of every body-frame."""
        return np.repeat(np.arange(self.num_frames, dtype=np.int32), self.bodies_per_frame)


# --- small geometry -------------------------------------------------------------------------------------------
def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def _rot_x(a) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, i = np.zeros_like(c), np.ones_like(c)
    return np.stack([np.stack([i, o, o], -1), np.stack([o, c, -s], -1), np.stack([o, s, c], -1)], -2)


def _rot_y(a) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, i = np.zeros_like(c), np.ones_like(c)
    return np.stack([np.stack([c, o, s], -1), np.stack([o, i, o], -1), np.stack([-s, o, c], -1)], -2)


def _apply(rot: np.ndarray, v) -> np.ndarray:
    """Rotate the fixed vector ``v`` by every matrix of ``rot`` (T, 3, 3) -> (T, 3)."""
    return rot @ np.asarray(v, dtype=np.float64)


def _two_bone(root, goal, a: float, b: float, pole):
    """Middle joint and reachable end of a two-bone chain (shoulder-elbow-wrist, hip-knee-ankle), (T, 3) each.

    The chain bends towards ``pole``; a goal out of reach is pulled in along the root-goal line."""
    v = goal - root
    dist = np.linalg.norm(v, axis=-1, keepdims=True)
    u = v / np.maximum(dist, 1e-9)
    d = np.clip(dist, abs(a - b) + 1e-3, a + b - 1e-3)
    cos = (a * a + d * d - b * b) / (2 * a * d)
    side = _unit(pole - (pole * u).sum(-1, keepdims=True) * u)
    return root + a * (cos * u + np.sqrt(1 - cos ** 2) * side), root + d * u


def _xyz(t: np.ndarray, x, y, z) -> np.ndarray:
    return np.stack(np.broadcast_arrays(x, y, z, t)[:3], -1).astype(np.float64)


def _ramp(x) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _hold(t: np.ndarray, start: float, end: float, ramp: float) -> np.ndarray:
    """0, rising to 1 over [start, start + ramp], 1, falling back to 0 at ``end`` (seconds)."""
    return _ramp((t - start) / ramp) * _ramp((end - t) / ramp)


def _bump(t: np.ndarray, centre: float, width: float) -> np.ndarray:
    return np.exp(-(((t - centre) / width) ** 2))


def _window(rng: np.random.Generator, t: np.ndarray) -> tuple[float, float, float]:
    """Random (start, end, ramp) of the main phase of an action, in seconds."""
    dur = t[-1] + 1 / FPS
    return dur * rng.uniform(0.08, 0.22), dur * rng.uniform(0.78, 0.94), dur * rng.uniform(0.10, 0.18)


# --- skeleton -------------------------------------------------------------------------------------------------
def rest_pose(size: float = 1.0) -> np.ndarray:
    """Standing pose (25, 3) in the body frame, SpineBase at the origin, arms hanging; ``size`` scales it."""
    pose = np.zeros((25, 3))
    for name, p in _REST_AXIAL.items():
        pose[J[name]] = p
    for name, (x, y, z) in _REST_LEFT.items():
        pose[J[name + "Left"]] = (x, y, z)
        pose[J[name + "Right"]] = (-x, y, z)
    return pose * size


def _still(t: np.ndarray) -> Drive:
    n = len(t)
    return Drive(np.zeros((n, 3)), np.zeros(n), np.zeros(n), np.zeros((2, n, 3)), np.zeros((2, n)))


def _dist(rest: np.ndarray, a: str, b: str) -> float:
    return float(np.linalg.norm(rest[J[a]] - rest[J[b]]))


def pose_trajectory(rest: np.ndarray, drive: Drive) -> np.ndarray:
    """Joint positions (T, 25, 3) in the body frame for ``drive``."""
    out = np.empty((len(drive.bend), 25, 3))
    for name in ("SpineBase", "SpineMid", "HipLeft", "HipRight"):
        out[:, J[name]] = drive.root + rest[J[name]]
    torso = _rot_x(-drive.bend)
    mid = out[:, J["SpineMid"]]
    for name in ("SpineShoulder", "Neck", "ShoulderLeft", "ShoulderRight"):
        out[:, J[name]] = mid + _apply(torso, rest[J[name]] - rest[J["SpineMid"]])
    out[:, J["Head"]] = out[:, J["Neck"]] + _apply(torso @ _rot_x(-drive.nod), rest[J["Head"]] - rest[J["Neck"]])
    forward = _apply(torso, (0.0, 0.0, -1.0))
    for k, side, sign in ((0, "Left", -1.0), (1, "Right", 1.0)):
        _place_arm(out, rest, side, torso, forward, drive.goal[k], drive.reach[k], sign)
        _place_leg(out, rest, side, drive.root)
    return out


def _place_arm(out, rest, side, torso, forward, goal, reach, sign) -> None:
    s, e, w = J["Shoulder" + side], J["Elbow" + side], J["Wrist" + side]
    shoulder = out[:, s]
    hang = shoulder + _apply(torso, rest[w] - rest[s])
    target = hang + reach[:, None] * (goal - hang)
    pole = _apply(torso, (0.4 * sign, -0.3, 1.0))
    out[:, e], out[:, w] = _two_bone(shoulder, target, _dist(rest, "Shoulder" + side, "Elbow" + side),
                                     _dist(rest, "Elbow" + side, "Wrist" + side), pole)
    along = _unit(out[:, w] - out[:, e])
    ahead = _unit(forward - (forward * along).sum(-1, keepdims=True) * along)
    for name in ("Hand", "HandTip", "Thumb"):
        offset = rest[J[name + side]] - rest[w]   # rest arm hangs: -y is along the forearm, -z is ahead
        out[:, J[name + side]] = out[:, w] - offset[1] * along - offset[2] * ahead


def _place_leg(out, rest, side, root) -> None:
    h, k, a = J["Hip" + side], J["Knee" + side], J["Ankle" + side]
    lift = np.maximum(root[:, 1], 0.0)            # feet stay on the floor unless the body is in the air
    ankle_goal = rest[a] + np.stack([root[:, 0], lift, root[:, 2]], -1)
    out[:, k], out[:, a] = _two_bone(out[:, h], ankle_goal, _dist(rest, "Hip" + side, "Knee" + side),
                                     _dist(rest, "Knee" + side, "Ankle" + side), np.array([0.0, 0.0, -1.0]))
    out[:, J["Foot" + side]] = out[:, a] + rest[J["Foot" + side]] - rest[a]


# --- action classes -------------------------------------------------------------------------------------------
# Each returns one Drive per actor and, for two persons, their initial distance (they face each other; the
# partner stands at (0, 0, -gap) in the first actor's frame). Wrist goals are relative to the rest pose ``r``.
def _jump_up(rng, t, r):
    a = _still(t)
    start, end, _ = _window(rng, t)
    jumps = 1 if end - start < 1.6 else int(rng.integers(1, 3))
    flight, height = rng.uniform(0.35, 0.5), rng.uniform(0.15, 0.3)
    for centre in start + (np.arange(jumps) + 0.5) * (end - start) / jumps:
        phase = np.clip((t - centre + flight / 2) / flight, 0, 1)
        a.root[:, 1] += height * np.sin(np.pi * phase) - 0.12 * (
            _bump(t, centre - flight / 2 - 0.12, 0.1) + _bump(t, centre + flight / 2 + 0.12, 0.1))
    a.reach[:] = np.clip(a.root[:, 1] / height, 0, 1)
    for k, sign in ((0, -1), (1, 1)):
        a.goal[k] = r[J["SpineShoulder"]] + (0.2 * sign, 0.45, -0.1)
    return [a], 0.0


def _salute(rng, t, r):
    a = _still(t)
    a.goal[1] = r[J["Head"]] + (0.09, 0.06, -0.07)
    a.reach[1] = _hold(t, *_window(rng, t))
    return [a], 0.0


def _palms_together(rng, t, r):
    a = _still(t)
    y = r[J["SpineShoulder"], 1] - 0.17
    a.goal[0], a.goal[1] = (-0.015, y, -0.24), (0.015, y, -0.24)
    a.reach[:] = _hold(t, *_window(rng, t))
    a.bend = 0.15 * a.reach[0]
    return [a], 0.0


def _sneeze(rng, t, r):
    a = _still(t)
    start, end, ramp = _window(rng, t)
    a.goal[0] = r[J["Head"]] + (-0.01, -0.08, -0.09)
    a.reach[0] = _hold(t, start, end, ramp)
    jerk = sum(_bump(t, c, 0.08) for c in rng.uniform(start + ramp, end - ramp, rng.integers(1, 4)))
    a.bend, a.nod = 0.3 * jerk, 0.4 * jerk
    return [a], 0.0


def _touch_back(rng, t, r):
    a = _still(t)
    rub = rng.uniform(0.03, 0.05) * np.sin(2 * np.pi * rng.uniform(1.5, 2.5) * t)
    a.goal[1] = _xyz(t, 0.07, r[J["SpineMid"], 1] - 0.08 + rub, 0.13)
    a.reach[1] = _hold(t, *_window(rng, t))
    a.bend = -0.08 * a.reach[1]
    return [a], 0.0


def _touch_neck(rng, t, r):
    a = _still(t)
    rub = rng.uniform(0.02, 0.04) * np.sin(2 * np.pi * rng.uniform(1.5, 2.5) * t)
    a.goal[1] = r[J["Neck"]] + _xyz(t, 0.04 + rub, 0.0, 0.07)
    a.reach[1] = _hold(t, *_window(rng, t))
    a.nod = 0.3 * a.reach[1]
    return [a], 0.0


def _pushing(rng, t, r):
    pusher, pushed = _still(t), _still(t)
    start, _, ramp = _window(rng, t)
    gap = rng.uniform(0.75, 0.95)
    hit = start + ramp
    step = 0.12 * _ramp((t - start) / ramp)
    back = rng.uniform(0.25, 0.45) * _ramp((t - hit) / 0.35)
    chest = r[J["SpineShoulder"], 1] - 0.1
    for k, sign in ((0, -1), (1, 1)):
        pusher.goal[k] = _xyz(t, 0.15 * sign, chest, -(gap - step + back - 0.14))
    pusher.reach[:] = _hold(t, start, hit + 0.3 + ramp, ramp)
    pusher.root[:, 2] = -step
    pushed.root[:, 2] = back
    pushed.bend = -0.2 * _bump(t, hit + 0.15, 0.15)
    return [pusher, pushed], gap


def _pat_on_back(rng, t, r):
    patter, patted = _still(t), _still(t)
    gap = rng.uniform(0.45, 0.6)
    hold = _hold(t, *_window(rng, t))
    pat = rng.uniform(0.04, 0.06) * np.abs(np.sin(np.pi * rng.uniform(2.0, 3.0) * t))
    patter.goal[1] = _xyz(t, 0.14, r[J["SpineShoulder"], 1] - 0.06 + pat, -(gap + 0.08))
    patter.reach[1] = hold
    patter.root[:, 2] = -0.15 * hold
    patter.bend = 0.1 * hold
    patted.bend = 0.05 * hold
    return [patter, patted], gap


def _giving(rng, t, r):
    giver, taker = _still(t), _still(t)
    start, end, ramp = _window(rng, t)
    gap = rng.uniform(0.8, 1.0)
    lag = 0.3 * (end - start)
    for actor in (giver, taker):
        actor.goal[1] = (0.0, r[J["SpineMid"], 1] + 0.05, -gap / 2)
    giver.reach[1] = _hold(t, start, end - lag, ramp)
    taker.reach[1] = _hold(t, start + lag, end, ramp)
    return [giver, taker], gap


def _handshaking(rng, t, r):
    actors = [_still(t), _still(t)]
    hold = _hold(t, *_window(rng, t))
    gap = rng.uniform(0.75, 0.95)
    pump = rng.uniform(0.03, 0.05) * np.sin(2 * np.pi * rng.uniform(2.0, 3.0) * t) * hold
    step = 0.1 * hold
    for actor in actors:
        actor.root[:, 2] = -step
        actor.goal[1] = _xyz(t, 0.0, r[J["SpineMid"], 1] + 0.02 + pump, -(gap / 2 - step))
        actor.reach[1] = hold
    return actors, gap


# NTU60 actions, ordered so that every prefix mixes one- and two-person classes.
CLASSES: tuple[ActionClass, ...] = (
    ActionClass(58, 2, _handshaking),
    ActionClass(27, 1, _jump_up),
    ActionClass(38, 1, _salute),
    ActionClass(52, 2, _pushing),
    ActionClass(39, 1, _palms_together),
    ActionClass(46, 1, _touch_back),
    ActionClass(56, 2, _giving),
    ActionClass(41, 1, _sneeze),
    ActionClass(47, 1, _touch_neck),
    ActionClass(53, 2, _pat_on_back),
)
_BY_ACTION = {c.action: c for c in CLASSES}


# --- scene ----------------------------------------------------------------------------------------------------
def _vary(rng: np.random.Generator, t: np.ndarray, drive: Drive) -> None:
    """What makes two takes differ: a slow sway of the hips, breathing, hands placed a little differently."""
    f = rng.uniform(0.15, 0.5, 3)
    p = rng.uniform(0, 2 * np.pi, 3)
    drive.root[:, 0] += 0.015 * np.sin(2 * np.pi * f[0] * t + p[0])
    drive.root[:, 2] += 0.015 * np.sin(2 * np.pi * f[1] * t + p[1])
    drive.bend += 0.02 * np.sin(2 * np.pi * f[2] * t + p[2])
    drive.goal += rng.normal(0, 0.02, (2, 1, 3))


def _camera_poses(rng, name: str, persons: int, gap: float) -> list[tuple[float, np.ndarray]]:
    """(yaw, origin) of each actor in camera space. Camera 1 sees the action from the front, 2 and 3 from ±45°;
    the setup fixes the camera height."""
    setup, camera = int(name[1:4]), int(name[5:8])
    yaw = {1: 0.0, 2: np.pi / 4, 3: -np.pi / 4}.get(camera, 0.0) + rng.normal(0, 0.15)
    height = -0.35 + 0.45 * ((setup * 0.618034) % 1.0) + rng.uniform(-0.05, 0.05)
    origin = np.array([rng.uniform(-0.5, 0.5), height, rng.uniform(2.7, 4.2) if persons == 1 else
                       rng.uniform(3.0, 3.8)])
    if persons == 1:
        return [(yaw, origin)]
    axis = _rot_y(yaw) @ np.array([1.0, 0.0, 0.0])
    return [(yaw - np.pi / 2, origin - axis * gap / 2), (yaw + np.pi / 2, origin + axis * gap / 2)]


def _to_camera(own: np.ndarray, yaw: float, origin: np.ndarray, tilt: float) -> np.ndarray:
    return (own @ _rot_y(yaw).T + origin) @ _rot_x(tilt).T


def _empty_frames(rng, num_frames: int, ratio: float) -> np.ndarray:
    """Frames where Kinect saw nobody; sometimes they lead the file, otherwise they are scattered."""
    n = min(rng.binomial(num_frames, ratio), num_frames // 2)
    empty = np.zeros(num_frames, dtype=bool)
    if rng.random() < 0.3:
        empty[:n] = True
    else:
        empty[rng.choice(num_frames, n, replace=False)] = True
    return empty


def _body_id(base: int, k: int) -> int:
    """k-th body tracked in a file. Bodies 2j and 2j+1 differ by 4, so they collide when read as float64."""
    return base + 16 * (k // 2) + (2 if k % 2 == 0 else -2)


def _noise_body(rng, num_frames: int, size: float) -> tuple[np.ndarray, np.ndarray]:
    """A short-lived false detection (<= 11 frames); half of them are wide and flat, like a wall or a table."""
    n = int(rng.integers(1, 12))
    start = int(rng.integers(0, num_frames - n + 1))
    scale = (rng.uniform(2.5, 4.0), rng.uniform(0.3, 0.5), 1.0) if rng.random() < 0.5 else rng.uniform(0.5, 1.0)
    centre = np.array([rng.uniform(-1.2, 1.2), rng.uniform(-0.4, 0.3), rng.uniform(2.5, 4.5)])
    xyz = centre + rest_pose(size) * scale + rng.normal(0, 0.03, (n, 25, 3))
    return np.arange(start, start + n), xyz


# --- Kinect side fields ---------------------------------------------------------------------------------------
def round_sig(v: np.ndarray) -> np.ndarray:
    """``v`` rounded to 7 significant digits: ``'%.7g' % x`` prints each result exactly and reads back equal.

    Valid for 1e-15 < |v| < 1e6 (camera-space metres); zeros stay zero."""
    a = np.abs(v)
    scale = 10.0 ** (6 - np.floor(np.log10(np.where(a > 0, a, 1.0))))
    return np.round(v * scale) / scale


def _pixels(xyz: np.ndarray) -> np.ndarray:
    """depthX depthY colorX colorY (..., 4) of camera-space points."""
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    fx, cx, fy, cy = _DEPTH
    gx, px, ux, gy, py, uy = _COLOUR
    return np.stack([fx * x / z + cx, fy * y / z + cy, (gx * x + px) / z + ux, (gy * y + py) / z + uy], -1)


def _tree_parents(root: int, edges) -> np.ndarray:
    """Parent of every joint when the undirected tree ``edges`` hangs from ``root`` (the root is its own)."""
    parent = np.full(1 + max(max(e) for e in edges), -1)
    parent[root], todo = root, [root]
    while todo:
        j = todo.pop()
        for a, b in edges:
            for u, v in ((a, b), (b, a)):
                if u == j and parent[v] < 0:
                    parent[v] = j
                    todo.append(v)
    return parent


_PARENT = _tree_parents(J["SpineBase"], NTU25.edges)


def _heading(xyz: np.ndarray) -> np.ndarray:
    """Yaw of each body (..., ) from its hip line."""
    hips = xyz[..., J["HipRight"], :] - xyz[..., J["HipLeft"], :]
    return np.arctan2(-hips[..., 2], hips[..., 0])


def _orientations(xyz: np.ndarray) -> np.ndarray:
    """Kinect-like joint quaternions w x y z (B, 25, 4): each bone's direction and the body heading."""
    bone = xyz - xyz[:, _PARENT]
    bone[:, J["SpineBase"]] = xyz[:, J["HipRight"]] - xyz[:, J["HipLeft"]]
    ref = _unit(np.ones(3))
    half = _unit(_unit(bone) + ref)
    swing = np.concatenate([(half * ref).sum(-1, keepdims=True), np.cross(ref, half)], -1)
    psi = _heading(xyz)[:, None] / 2
    w1, y1 = np.cos(psi), np.sin(psi)                       # heading quaternion (w1, 0, y1, 0)
    w2, x2, y2, z2 = np.moveaxis(swing, -1, 0)
    q = np.stack([w1 * w2 - y1 * y2, w1 * x2 + y1 * z2, w1 * y2 + y1 * w2, w1 * z2 - y1 * x2], -1)
    q[:, list(ZERO_ORIENTATION)] = 0.0
    return q


def _tracking_states(rng, n: int) -> np.ndarray:
    """2 (tracked) or 1 (inferred) per frame and joint; inferred comes in runs of 5, mostly on extremities."""
    rate = np.full(25, 0.004)
    rate[_EXTREMITIES] = 0.02
    started = np.cumsum(rng.random((n, 25)) < rate, axis=0)
    before = np.concatenate([np.zeros((5, 25), dtype=started.dtype), started[:-5]])[:n]
    return np.where(started - before > 0, 1, 2).astype(np.int8)


def _hand_flags(rng, n: int) -> np.ndarray:
    """Body-line integers (n, 6): clipedEdges, hand confidences and states (mostly one pair per body), 0."""
    pairs = np.array([[1, 1], [0, 0], [1, 2], [1, 3], [0, 1], [1, 4]])
    out = np.zeros((n, 6), dtype=np.int64)
    for col in (1, 3):
        usual = pairs[rng.integers(0, 3)]
        other = pairs[rng.integers(0, len(pairs), n)]
        out[:, col:col + 2] = np.where(rng.random((n, 1)) < 0.8, usual, other)
    return out


@dataclass(frozen=True)
class _Track:
    """One body as listed over the frames where it appears."""

    frames: np.ndarray
    body_id: np.ndarray
    actor: int
    xyz: np.ndarray
    state: np.ndarray
    info: np.ndarray
    lean: np.ndarray


def _kinect_track(rng, frames, xyz, body_id, actor: int) -> _Track:
    """Sensor view of a body: jitter (larger on inferred joints), 7-digit coordinates, body-line fields."""
    state = _tracking_states(rng, len(frames))
    jitter = np.where(state[..., None] == 1, 0.015, 0.002)
    xyz = round_sig(xyz + rng.normal(0, 1, xyz.shape) * jitter)
    spine = _unit(xyz[:, J["SpineShoulder"]] - xyz[:, J["SpineBase"]])
    psi = _heading(xyz)
    lean = np.stack([(spine[:, 0] * np.cos(psi) - spine[:, 2] * np.sin(psi)),
                     -(spine[:, 0] * np.sin(psi) + spine[:, 2] * np.cos(psi))], -1)
    if actor < 0:
        lean[:, 0] = -1.0                         # Kinect's mark of a noise body
    return _Track(frames, np.broadcast_to(body_id, frames.shape), actor, xyz, state,
                  _hand_flags(rng, len(frames)), lean)


def _assemble(name: str, num_frames: int, tracks: list[_Track], noise_kind: dict[int, str] | None = None,
              cases: tuple[str, ...] = (), dropout: dict[int, np.ndarray] | None = None) -> SynthSample:
    """Interleave tracks into file order: frame by frame, tracks in list order within a frame."""
    frame = np.concatenate([tr.frames for tr in tracks])
    slot = np.concatenate([np.full(len(tr.frames), k) for k, tr in enumerate(tracks)])
    order = np.lexsort((slot, frame))

    def cat(field):
        return np.concatenate([getattr(tr, field) for tr in tracks])[order]

    xyz = cat("xyz")

    return SynthSample(
        name=name,
        bodies_per_frame=np.bincount(frame, minlength=num_frames).astype(np.int32),
        body_id=cat("body_id").astype(np.int64),
        actor=np.concatenate([np.full(len(tr.frames), tr.actor, np.int8) for tr in tracks])[order],
        xyz=xyz,
        joint_info=np.concatenate([_pixels(xyz), _orientations(xyz)], -1),
        joint_state=cat("state"),
        body_info=cat("info"),
        lean=cat("lean"),
        noise_kind=dict(noise_kind or {}),
        cases=cases,
        dropout=dict(dropout or {}),
    )


# --- samples, text and corpora --------------------------------------------------------------------------------
@dataclass(frozen=True)
class HardCases:
    """Rates (0..1 per sample) of the opt-in hard cases of body selection (see the module docstring)."""

    side_on_ratio: float = 0.0
    id_switch2_ratio: float = 0.0
    dropout_ratio: float = 0.0
    flicker_ratio: float = 0.0
    furniture_ratio: float = 0.0
    late_ratio: float = 0.0

    def __post_init__(self):
        for name, rate in vars(self).items():
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be a rate in [0, 1], got {rate}")


@dataclass(frozen=True)
class _Plan:
    """The hard cases drawn for one sample; -1 or None where a case is off."""

    side_on: int = -1                          # actor turned side-on
    side_sign: float = 1.0                     # which way it faces
    switch2: float | None = None               # where actor 2's bodyID changes (fraction of its frames)
    dropout: tuple[int, float, int] | None = None   # (actor, start as a fraction of its frames, frames)
    flicker: tuple[int, float, int] | None = None   # (actor, start as a fraction of its frames, frames)
    furniture: bool = False
    late: float | None = None                  # actor 2's first frame as a fraction of the sequence


def _happens(rng: np.random.Generator, rate: float) -> bool:
    """True with probability ``rate``; draws nothing at rate 0 (keeps corpora without the case unchanged)."""
    return rate > 0 and bool(rng.random() < rate)


def _plan_cases(rng: np.random.Generator, actors: int, hard: HardCases) -> _Plan:
    def which() -> int:
        return int(rng.integers(actors))

    return _Plan(
        side_on=which() if _happens(rng, hard.side_on_ratio) else -1,
        side_sign=float(rng.choice([-1.0, 1.0])) if hard.side_on_ratio > 0 else 1.0,
        switch2=float(rng.uniform(1 / 3, 2 / 3)) if actors == 2 and _happens(rng, hard.id_switch2_ratio) else None,
        dropout=(which(), float(rng.uniform(0.2, 0.7)), int(rng.integers(3, 11)))
        if _happens(rng, hard.dropout_ratio) else None,
        flicker=(which(), float(rng.uniform(0.2, 0.8)), int(rng.integers(1, 6)))
        if _happens(rng, hard.flicker_ratio) else None,
        furniture=_happens(rng, hard.furniture_ratio),
        late=float(rng.uniform(0.3, 0.6)) if actors == 2 and _happens(rng, hard.late_ratio) else None,
    )


def _reach_out(t: np.ndarray, drive: Drive, rest: np.ndarray) -> None:
    """Crouch, bow forward and stretch both arms far ahead for nearly the whole take (wide when seen side-on)."""
    dur = t[-1] + 1 / FPS
    hold = _hold(t, 0.03 * dur, 0.97 * dur, 0.05 * dur)
    for k, side in ((0, "Left"), (1, "Right")):
        drive.goal[k] = (rest[J["Shoulder" + side], 0], 0.0, -1.0)
        drive.reach[k] = np.maximum(drive.reach[k], hold)
    drive.bend = drive.bend + 1.1 * hold
    drive.root[:, 1] -= 0.45 * hold
    drive.root[:, 2] += 0.15 * hold


def _furniture(rng, num_frames: int, size: float) -> tuple[np.ndarray, np.ndarray]:
    """A static false detection over 50-100 % of the frames: a body-like shape with random proportions."""
    n = int(rng.integers(num_frames // 2, num_frames + 1))
    start = int(rng.integers(0, num_frames - n + 1))
    wide = rng.random() < 0.5
    scale = np.array([rng.uniform(2.0, 3.0), rng.uniform(0.3, 0.5), 1.0]) if wide else rng.uniform(0.5, 0.8, 3)
    shape = rest_pose(size) * scale + rng.normal(0, 0.12, (25, 3))
    side = rng.choice([-1.0, 1.0])
    centre = np.array([side * rng.uniform(1.0, 1.6), rng.uniform(-0.5, 0.1), rng.uniform(2.5, 4.5)])
    return np.arange(start, start + n), np.broadcast_to(centre + shape, (n, 25, 3)).copy()


def _frame_cut(shown: np.ndarray, where: float) -> int:
    """The frame at fraction ``where`` of ``shown`` (at least its second, at most its last)."""
    return int(shown[min(max(1, int(where * len(shown))), len(shown) - 1)])


def generate_ntu_sample(
    rng: np.random.Generator,
    action: int,
    *,
    name: str | None = None,
    frames: int | None = None,
    frames_range: tuple[int, int] = (50, 110),
    empty_frame_ratio: float = 0.03,
    noise_body_ratio: float = 0.15,
    id_switch_ratio: float = 0.1,
    hard: HardCases = HardCases(),
) -> SynthSample:
    """One synthetic sample of NTU action ``action`` (one of ``CLASSES``).

    ``name`` (SsssCcccPpppRrrrAaaa) sets the view (camera), the camera height (setup) and the body size
    (performer); the frame count is ``frames`` or drawn from ``frames_range`` (inclusive). ``hard`` adds the
    opt-in hard cases of body selection at their rates."""
    if action not in _BY_ACTION:
        raise ValueError(f"no synthetic motion for action A{action:03d}; known: {sorted(_BY_ACTION)}")
    cls = _BY_ACTION[action]
    name = name or f"S001C001P001R001A{action:03d}"
    if len(name) != 20 or int(name[-3:]) != action:
        raise ValueError(f"sample name {name!r} is not SsssCcccPpppRrrrAaaa for action {action}")
    num_frames = int(frames if frames is not None else rng.integers(frames_range[0], frames_range[1], endpoint=True))
    if num_frames < 20:
        raise ValueError(f"{num_frames} frames is too short for an action (need >= 20)")
    t = np.arange(num_frames) / FPS
    size = 0.9 + 0.2 * ((int(name[9:12]) * 0.618034) % 1.0)
    rests = [rest_pose(size), rest_pose(size * rng.uniform(0.92, 1.08))]
    drives, gap = cls.motion(rng, t, rests[0])
    tilt = rng.uniform(-0.07, 0.07)
    empty = _empty_frames(rng, num_frames, empty_frame_ratio)
    shown = np.flatnonzero(~empty)
    base = BODY_ID_BASE + 16 * int(rng.integers(100, 4000))
    next_id = len(drives)
    poses = _camera_poses(rng, name, cls.persons, gap)
    plan = _plan_cases(rng, len(drives), hard)
    cases, noise_kind, dropout = [], {}, {}
    tracks = []
    for k, (drive, (yaw, origin)) in enumerate(zip(drives, poses)):
        _vary(rng, t, drive)
        if k == plan.side_on:
            _reach_out(t, drive, rests[k])
            yaw = plan.side_sign * np.pi / 2
            cases.append(f"side_on:{k}")
        xyz = _to_camera(pose_trajectory(rests[k], drive), yaw, origin, tilt)
        mine = shown
        if k == 1 and plan.late is not None:
            mine = shown[shown >= int(plan.late * num_frames)]
            cases.append("late:1")
        if plan.dropout is not None and plan.dropout[0] == k:
            cut = _frame_cut(mine, plan.dropout[1])
            gone = (mine >= cut) & (mine < cut + plan.dropout[2])
            dropout[k], mine = mine[gone], mine[~gone]
            cases.append(f"dropout:{k}")
        ids = np.full(len(mine), _body_id(base, k), dtype=np.int64)
        if k == 0 and rng.random() < id_switch_ratio:   # Kinect lost the actor and re-acquired it
            ids[mine >= int(rng.integers(num_frames // 3, 2 * num_frames // 3))] = _body_id(base, next_id)
            next_id += 1
            cases.append("id_switch:0")
        if k == 1 and plan.switch2 is not None:
            ids[mine >= _frame_cut(mine, plan.switch2)] = _body_id(base, next_id)
            next_id += 1
            cases.append("id_switch:1")
        if plan.flicker is not None and plan.flicker[0] == k:
            cut = _frame_cut(mine, plan.flicker[1])
            ids[(mine >= cut) & (mine < cut + plan.flicker[2])] = _body_id(base, next_id)
            next_id += 1
            cases.append(f"id_flicker:{k}")
        tracks.append(_kinect_track(rng, mine, xyz[mine], ids, k))
    if rng.random() < noise_body_ratio:
        frames_, xyz = _noise_body(rng, num_frames, size)
        keep = ~empty[frames_]
        if keep.any():
            noise_kind[_body_id(base, next_id)] = "flicker"
            tracks.append(_kinect_track(rng, frames_[keep], xyz[keep], _body_id(base, next_id), -1))
    if plan.furniture:
        next_id += 1
        frames_, xyz = _furniture(rng, num_frames, size)
        keep = ~empty[frames_]
        if keep.any():
            noise_kind[_body_id(base, next_id)] = "furniture"
            tracks.append(_kinect_track(rng, frames_[keep], xyz[keep], _body_id(base, next_id), -1))
    return _assemble(name, num_frames, tracks, noise_kind, tuple(cases), dropout)


def _ranges(frames: np.ndarray) -> list[list[int]]:
    """Sorted frame indices as inclusive ``[first, last]`` runs."""
    if len(frames) == 0:
        return []
    breaks = np.flatnonzero(np.diff(frames) != 1)
    return [[int(frames[a]), int(frames[b])] for a, b in zip(np.r_[0, breaks + 1], np.r_[breaks, len(frames) - 1])]


def ground_truth(sample: SynthSample) -> dict:
    """The manifest record of one sample (JSON-serialisable; frame runs are inclusive ``[first, last]``).

    actors[k]   body_ids (in order of first appearance: more than one after an ID switch or flicker), frames
                (runs where the actor is listed) and dropout (runs of frames the sensor recorded but lost the
                actor in; a frame left with no body is also in ``empty``)
    noise       per noise body: body_id, kind ("flicker" or "furniture") and frames
    empty       runs of 0-body frames; cases: the hard cases applied
    """
    frame = sample.frame
    actors = []
    for k in range(int(sample.actor.max(initial=-1)) + 1):
        mine = sample.actor == k
        ids, first = np.unique(sample.body_id[mine], return_index=True)
        actors.append({"actor": k, "body_ids": [int(i) for i in ids[np.argsort(first)]],
                       "frames": _ranges(np.unique(frame[mine])),
                       "dropout": _ranges(sample.dropout.get(k, np.zeros(0, np.int64)))})
    noise = [{"body_id": int(bid), "kind": kind, "frames": _ranges(frame[sample.body_id == bid])}
             for bid, kind in sample.noise_kind.items()]
    return {"name": sample.name, "num_frames": sample.num_frames, "actors": actors, "noise": noise,
            "empty": _ranges(np.flatnonzero(sample.bodies_per_frame == 0)), "cases": list(sample.cases)}


_JOINT_LINE = " ".join(["%.7g"] * 11) + " %d\n"
_JOINT_BLOCK = _JOINT_LINE * 25
_BODY_LINE = "%d %d %d %d %d %d %d %.7g %.7g 2\n"


def format_skeleton(sample: SynthSample, line_ending: str = "\r\n") -> bytes:
    """The ``.skeleton`` text of ``sample``: the NTU grammar, ``%.7g`` numbers, ``line_ending`` after every line."""
    joints = np.concatenate([sample.xyz, sample.joint_info, sample.joint_state[..., None]], -1)
    rows = joints.reshape(len(joints), -1).tolist()
    bodies = iter(zip(sample.body_id.tolist(), sample.body_info.tolist(), sample.lean.tolist(), rows))
    parts = [f"{sample.num_frames}\n"]
    for count in sample.bodies_per_frame.tolist():
        parts.append(f"{count}\n")
        for _ in range(count):
            body_id, info, lean, row = next(bodies)
            parts.append(_BODY_LINE % (body_id, *info, *lean))
            parts.append("25\n")
            parts.append(_JOINT_BLOCK % tuple(row))
    text = "".join(parts)
    return (text if line_ending == "\n" else text.replace("\n", line_ending)).encode("ascii")


def corpus_actions(samples: int, num_classes: int | None = None,
                   two_person_ratio: float | None = None) -> list[int]:
    """Action id of each sample: the first ``num_classes`` of ``CLASSES`` in turn, or, with
    ``two_person_ratio``, two-person and one-person classes interleaved in that proportion."""
    n = len(CLASSES) if num_classes is None else num_classes
    if not 1 <= n <= len(CLASSES):
        raise ValueError(f"num_classes must be 1..{len(CLASSES)}, got {num_classes}")
    chosen = CLASSES[:n]
    if two_person_ratio is None:
        return [chosen[i % n].action for i in range(samples)]
    groups = [[c.action for c in chosen if c.persons == p] for p in (1, 2)]
    if not 0 <= two_person_ratio <= 1 or any(not g and share > 0 for g, share in
                                             zip(groups, (1 - two_person_ratio, two_person_ratio))):
        raise ValueError(f"two_person_ratio {two_person_ratio} cannot be met by classes {[c.action for c in chosen]}")
    out, used = [], [0, 0]
    for i in range(samples):
        g = int(np.floor((i + 1) * two_person_ratio) > np.floor(i * two_person_ratio))
        out.append(groups[g][used[g] % len(groups[g])])
        used[g] += 1
    return out


def sample_names(actions: list[int], dataset: str = "ntu60") -> list[str]:
    """Distinct SsssCcccPpppRrrrAaaa names. Each action walks through performers, cameras and setups on its own
    counter, so every class is spread evenly over both sides of X-Sub, X-View and X-Set (the split never predicts
    the class), and consecutive samples of different actions already land on both sides. Names on the official
    missing-skeleton lists are skipped, since converters exclude them by default."""
    if dataset not in ("ntu60", "ntu120"):
        raise ValueError(f"dataset must be 'ntu60' or 'ntu120', got {dataset!r}")
    setups, performers = {"ntu60": (17, 40), "ntu120": (32, 106)}[dataset]
    cells = setups * 3 * performers * 2
    used = set(ntu_missing_samples("ntu120"))   # a superset of the ntu60 list
    rank = {a: k for k, a in enumerate(dict.fromkeys(actions))}  # actions in order of first appearance
    seen: dict[int, int] = {}
    names = []
    for action in actions:
        j, k = seen.get(action, 0), rank[action]
        seen[action] = j + 1
        s, c, p, r = (5 * j + k) % setups, (j + k) % 3, (7 * j + 3 * k) % performers, (j // 3 + k) % 2
        cell = ((s * 3 + c) * performers + p) * 2 + r
        for _ in range(cells):
            s, rest = divmod(cell, 3 * performers * 2)
            c, rest = divmod(rest, performers * 2)
            p, r = divmod(rest, 2)
            name = f"S{s + 1:03d}C{c + 1:03d}P{p + 1:03d}R{r + 1:03d}A{action:03d}"
            if name not in used:
                break
            cell = (cell + 1) % cells
        else:
            raise ValueError(f"too many samples of action A{action:03d} for the {cells} {dataset} names")
        used.add(name)
        names.append(name)
    return names


def write_ntu_corpus(
    out_dir: str | Path,
    samples: int,
    seed: int = 0,
    *,
    dataset: str = "ntu60",
    num_classes: int | None = None,
    two_person_ratio: float | None = None,
    line_ending: str = "\r\n",
    progress: Callable[[Path], None] | None = None,
    manifest: bool = False,
    **sample_options,
) -> list[Path]:
    """Write ``samples`` synthetic ``.skeleton`` files into ``out_dir``; return their paths in generation order.

    The same arguments give byte-identical files; sample ``i`` depends only on ``seed`` and ``i``.
    ``sample_options`` go to ``generate_ntu_sample`` (``frames_range``, ``empty_frame_ratio``,
    ``noise_body_ratio``, ``id_switch_ratio``, ``hard``). ``progress`` is called with each path once written.
    ``manifest``: also write :data:`MANIFEST` in ``out_dir``, one :func:`ground_truth` record per line."""
    if samples < 0:
        raise ValueError(f"samples must be >= 0, got {samples}")
    actions = corpus_actions(samples, num_classes, two_person_ratio)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths, records = [], []
    for i, (name, action) in enumerate(zip(sample_names(actions, dataset), actions)):
        sample = generate_ntu_sample(np.random.default_rng([seed, i]), action, name=name, **sample_options)
        path = out / f"{name}.skeleton"
        path.write_bytes(format_skeleton(sample, line_ending))
        paths.append(path)
        if manifest:
            records.append(json.dumps(ground_truth(sample), separators=(",", ":")))
        if progress is not None:
            progress(path)
    if manifest:
        (out / MANIFEST).write_text("".join(r + "\n" for r in records))
    return paths


def read_manifest(out_dir: str | Path) -> dict[str, dict]:
    """The ground-truth records of a corpus written with ``manifest=True``, by sample name."""
    lines = (Path(out_dir) / MANIFEST).read_text().splitlines()
    return {r["name"]: r for r in map(json.loads, lines)}


# --- OpenPose per-frame JSON and Kinetics-Skeleton JSON ---------------------------------------------------------
# BODY_25 joint -> NTU joint whose colour pixel it takes; -1: placed from the head or a foot (face and foot points).
_NTU_FOR_BODY25 = (J["Head"], J["SpineShoulder"], J["ShoulderRight"], J["ElbowRight"], J["WristRight"],
                   J["ShoulderLeft"], J["ElbowLeft"], J["WristLeft"], J["SpineBase"], J["HipRight"], J["KneeRight"],
                   J["AnkleRight"], J["HipLeft"], J["KneeLeft"], J["AnkleLeft"], -1, -1, -1, -1, J["FootLeft"], -1, -1,
                   J["FootRight"], -1, -1)
# Offsets (in head-to-neck lengths, image axes) of the derived BODY_25 points from their anchor joint.
_DERIVED_BODY25 = {15: (0, (-.15, -.15)), 16: (0, (.15, -.15)), 17: (0, (-.3, -.05)), 18: (0, (.3, -.05)),
                   20: (19, (.12, 0)), 21: (14, (0, .1)), 23: (22, (-.12, 0)), 24: (11, (0, .1))}
OPENPOSE_IMAGE_SIZE = (1920, 1080)  # the NTU colour frame the synthetic pixels live in


def openpose_people(sample: SynthSample, rng: np.random.Generator, model: str = "coco18",
                    miss_ratio: float = 0.08) -> list[np.ndarray]:
    """OpenPose-style detections of ``sample``: per frame ``(P, V, 3)`` colour pixels x, y and a confidence.

    Performers and noise bodies become people; a joint is missed (``0, 0, 0``) with ``miss_ratio``."""
    from schemas.layouts import BODY25_TO_COCO18

    if model not in ("coco18", "body25"):
        raise ValueError(f"synthetic OpenPose output is coco18 or body25, not {model!r}")
    colour = sample.joint_info[..., 2:4]  # (B, 25, 2)
    pts = np.zeros((len(colour), 25, 3))
    for v, ntu in enumerate(_NTU_FOR_BODY25):
        if ntu >= 0:
            pts[:, v, :2] = colour[:, ntu]
    head = np.linalg.norm(pts[:, 0, :2] - pts[:, 1, :2], axis=-1, keepdims=True)
    for v, (anchor, offset) in _DERIVED_BODY25.items():
        pts[:, v, :2] = pts[:, anchor, :2] + head * np.asarray(offset)
    pts[..., 2] = rng.uniform(0.3, 0.95, pts.shape[:2])
    pts[rng.random(pts.shape[:2]) < miss_ratio] = 0.0
    pts = np.round(pts, 3).astype(np.float32)
    if model == "coco18":
        pts = pts[:, list(BODY25_TO_COCO18)]
    return np.split(pts, np.cumsum(sample.bodies_per_frame)[:-1])


def openpose_frame_json(people: np.ndarray, legacy: bool = False) -> str:
    """One OpenPose per-frame file for people ``(P, V, 3)``: version 1.3 compact JSON, or version 1.0 with the
    legacy ``pose_keypoints`` key and no ``person_id`` when ``legacy``. Numbers are written as OpenPose writes them
    (a C++ stream's default: 6 significant digits, ``0`` for zero)."""
    key = "pose_keypoints" if legacy else "pose_keypoints_2d"
    person_id = "" if legacy else '"person_id":[-1],'
    rows = [f'{{{person_id}"{key}":[{",".join(f"{x:.6g}" for x in p.reshape(-1).tolist())}],"face_keypoints_2d":[],'
            '"hand_left_keypoints_2d":[],"hand_right_keypoints_2d":[]}' for p in people]
    return f'{{"version":{"1.0" if legacy else "1.3"},"people":[{",".join(rows)}]}}'


def kinetics_json(frames: list[np.ndarray], label: str = "", label_index: int | str = "", first_index: int = 1,
                  image_size: tuple[float, float] = OPENPOSE_IMAGE_SIZE) -> str:
    """One Kinetics-Skeleton file from per-frame people ``(P, 18, 3)`` in pixels: x, y divided by ``image_size``,
    3 decimals, ``frame_index`` counted from ``first_index``; frames with nobody are kept as ``"skeleton": []``."""
    scale = np.asarray(image_size, np.float64)
    data = [{"frame_index": first_index + t,
             "skeleton": [{"pose": np.round(p[:, :2] / scale, 3).reshape(-1).tolist(),
                           "score": np.round(p[:, 2].astype(np.float64), 3).tolist()} for p in people]}
            for t, people in enumerate(frames)]
    return json.dumps({"data": data, "label": label, "label_index": label_index})


def write_openpose_corpus(out_dir: str | Path, samples: int, seed: int = 0, *, format: str = "frames",
                          model: str = "coco18", num_classes: int | None = None,
                          frames: int | None = None) -> list[Path]:
    """Write ``samples`` synthetic videos built from the NTU synth (learnable classes, label = action - 1), each
    ``frames`` long (default: the NTU synth's 50-110).

    ``frames``: ``NAME/NAME_<12-digit frame>_keypoints.json`` per video and ``labels.csv``; ``kinetics``:
    ``kinetics_{train,val}/NAME.json`` (every fifth video in val) and ``kinetics_{train,val}_label.json``.
    Returns the video files (kinetics) or folders (frames) in generation order."""
    if format not in ("frames", "kinetics"):
        raise ValueError(f"format must be 'frames' or 'kinetics', got {format!r}")
    out = Path(out_dir)
    actions = corpus_actions(samples, num_classes)
    paths, labels = [], {"train": {}, "val": {}}
    for i, (name, action) in enumerate(zip(sample_names(actions), actions)):
        rng = np.random.default_rng([seed, i])
        video = openpose_people(generate_ntu_sample(rng, action, name=name, frames=frames), rng, model)
        if format == "frames":
            folder = out / name
            folder.mkdir(parents=True, exist_ok=True)
            for t, people in enumerate(video):
                (folder / f"{name}_{t:012d}_keypoints.json").write_text(openpose_frame_json(people))
            labels["train"][name] = action - 1
            paths.append(folder)
        else:
            part = "val" if i % 5 == 4 else "train"
            folder = out / f"kinetics_{part}"
            folder.mkdir(parents=True, exist_ok=True)
            class_name = ntu_class_names()[action - 1]
            path = folder / f"{name}.json"
            path.write_text(kinetics_json(video, class_name, action - 1))
            labels[part][name] = {"has_skeleton": True, "label": class_name, "label_index": action - 1}
            paths.append(path)
    out.mkdir(parents=True, exist_ok=True)
    if format == "frames":
        (out / "labels.csv").write_text("video,label\n" + "".join(f"{k},{v}\n" for k, v in labels["train"].items()))
    else:
        for part, entries in labels.items():
            (out / f"kinetics_{part}_label.json").write_text(json.dumps(entries, indent=4))
    return paths

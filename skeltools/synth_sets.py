"""Synthetic Toyota Smarthome LCR-Net JSON and BABEL joint-position files, format-faithful and class-dependent.

Poses are a rest skeleton moved by one sinusoidal limb swing whose joint, frequency and amplitude depend on the
class, so a model can learn the classes; the files carry the format's awkward parts (empty frames, several
detections, coordinate-major lists; mocap frame rates of 120/100/60/59.94 fps, BABEL's 219-wide ``joint_pos``).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from schemas.datasets import SMARTHOME_CLASSES, smarthome_split_lists

# LCR-Net 13 joints (native order, see schemas.layouts.SMARTHOME13) at rest, metres, y up, person at the origin.
_LCR_REST = np.array([
    (-.10, -.85, 0), (.10, -.85, 0), (-.10, -.45, 0), (.10, -.45, 0), (-.10, 0, 0), (.10, 0, 0),
    (-.22, .05, 0), (.22, .05, 0), (-.20, .30, 0), (.20, .30, 0), (-.18, .55, 0), (.18, .55, 0), (0, .75, 0),
], np.float32)
_SWING = ((6, 8), (7, 9), (0, 2), (1, 3), (12,))  # joint groups one class moves (wrists+elbows, ankles+knees, head)


def class_motion(rest: np.ndarray, label: int, frames: int, rng: np.random.Generator) -> np.ndarray:
    """``(T, V, 3)``: ``rest`` (V, 3) with the joints of class ``label`` swinging; frequency set by the class."""
    t = np.arange(frames, dtype=np.float32)[:, None]
    out = np.repeat(rest[None], frames, axis=0) + rng.normal(0, 0.005, (frames, *rest.shape)).astype(np.float32)
    joints = list(_SWING[label % len(_SWING)])
    freq = 0.02 + 0.015 * (label // len(_SWING) % 7)
    phase = rng.uniform(0, 2 * np.pi)
    out[:, joints, 1] += 0.2 * np.sin(2 * np.pi * freq * t + phase)
    out[:, joints, 2] += 0.1 * np.cos(2 * np.pi * freq * t + phase)
    return out


def _pixels(xyz: np.ndarray) -> np.ndarray:
    """A person about 3 m from a 640x480 camera: ``(..., 3)`` metres -> ``(..., 2)`` pixels."""
    return np.stack([320 + 120 * xyz[..., 0], 240 - 120 * xyz[..., 1]], axis=-1)


def smarthome_document(poses: np.ndarray, empty: np.ndarray, extra: np.ndarray) -> dict:
    """The v1.2 JSON of one clip: ``poses`` ``(T, 13, 3)``; frames where ``empty`` have no detection, frames
    where ``extra`` get a second, shifted detection after the real one."""
    frames = []
    for pose, is_empty, has_extra in zip(poses, empty, extra):
        people = [] if is_empty else [pose] + ([pose + np.float32([1.5, 0, 0])] if has_extra else [])
        frames.append([{"pose2d": [round(float(v), 3) for v in _pixels(p).T.ravel()],
                        "pose3d": [round(float(v), 5) for v in p.T.ravel()]} for p in people])
    return {"njts": 13, "K": 5, "frames": frames}


def write_smarthome_corpus(out_dir, samples: int, seed: int = 0, *, frames_range: tuple[int, int] = (40, 300),
                           empty_ratio: float = 0.05, extra_ratio: float = 0.1) -> list[Path]:
    """Write ``samples`` ``<clip>_pose3d.json`` files named after clips of the official CS lists (drawn at random,
    so every part gets some), cycling through the 31 classes; the same arguments give the same files."""
    names = sorted(n for (p, _), names in smarthome_split_lists().items() if p == "cs" for n in names)
    order = np.random.default_rng(seed)
    by_class = {c: order.permutation([n for n in names if n.startswith(c + "_")]) for c in SMARTHOME_CLASSES}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(samples):
        rng = np.random.default_rng([seed, i])
        label = i % len(SMARTHOME_CLASSES)
        clips = by_class[SMARTHOME_CLASSES[label]]
        name = clips[(i // len(SMARTHOME_CLASSES)) % len(clips)]
        frames = int(rng.integers(*frames_range))
        poses = class_motion(_LCR_REST, label, frames, rng)
        doc = smarthome_document(poses, rng.random(frames) < empty_ratio, rng.random(frames) < extra_ratio)
        path = out / f"{name}_pose3d.json"
        path.write_text(json.dumps(doc, separators=(",", ":")))
        paths.append(path)
    return paths

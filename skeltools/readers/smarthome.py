"""Toyota Smarthome poses: LCR-Net JSON (v1.1/v1.2) and the 2D keypoint npz (``kpts``).

JSON: ``{"njts": 13, "K": k, "frames": [[detection, ...], ...]}``; a frame is a list of detections (``[]``: nobody),
a detection ``{"pose2d": [x0..x12, y0..y12], "pose3d": [x0..x12, y0..y12, z0..z12]}`` (coordinate-major; ``K`` is
LCR-Net's anchor-pose count, not a person count). npz: ``kpts`` ``(T, 17, 2)`` float32 in COCO-17 order.
"""
from __future__ import annotations

import json
import zipfile
import zlib
from pathlib import Path

import numpy as np

NUM_JOINTS = 13
POSE_KEYS = {"xyz": ("pose3d", 3), "xy": ("pose2d", 2)}
SCREEN_WIDTH, SCREEN_HEIGHT = 640, 480


class SmarthomePoseError(ValueError):
    """A pose file that does not follow the format; the message names the file and the offending key."""


def read_pose_json(path, coords: str = "xyz") -> list[np.ndarray]:
    """The detections of every frame: a list of ``(D, 13, C)`` float32 arrays (D = 0 for an empty frame)."""
    key, channels = POSE_KEYS[coords]
    try:
        doc = json.loads(Path(path).read_bytes())
    except (OSError, ValueError, RecursionError) as exc:
        raise SmarthomePoseError(f"{path}: not readable JSON ({exc or 'nested too deeply'})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("frames"), list):
        raise SmarthomePoseError(f"{path}: key 'frames' is missing or not a list")
    if doc.get("njts", NUM_JOINTS) != NUM_JOINTS:
        raise SmarthomePoseError(f"{path}: key 'njts' is {doc['njts']!r}, expected {NUM_JOINTS}")
    frames = []
    for t, detections in enumerate(doc["frames"]):
        if not isinstance(detections, list):
            raise SmarthomePoseError(f"{path}: key 'frames[{t}]' is not a list of detections")
        poses = np.zeros((len(detections), NUM_JOINTS, channels), np.float32)
        for d, det in enumerate(detections):
            flat = det.get(key) if isinstance(det, dict) else None
            where = f"{path}: key 'frames[{t}][{d}].{key}'"
            try:
                values = np.asarray(flat, dtype=np.float64)
            except (TypeError, ValueError):
                raise SmarthomePoseError(f"{where} is not a list of numbers") from None
            if values.shape != (channels * NUM_JOINTS,):
                raise SmarthomePoseError(f"{where} has shape {values.shape}, expected ({channels * NUM_JOINTS},)")
            if not np.isfinite(values).all():
                raise SmarthomePoseError(f"{where} holds NaN or infinity")
            poses[d] = values.reshape(channels, NUM_JOINTS).T  # coordinate-major -> (joint, coord)
        frames.append(poses)
    if not frames:
        raise SmarthomePoseError(f"{path}: key 'frames' is empty")
    return frames


def read_kpts_npz(path) -> np.ndarray:
    """``kpts`` ``(T, 17, 2)`` float32 (COCO-17 order, pixels)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            if "kpts" not in npz:
                raise SmarthomePoseError(f"{path}: key 'kpts' is missing (keys: {', '.join(npz.files) or 'none'})")
            kpts = np.asarray(npz["kpts"])
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:  # damaged or truncated
        raise SmarthomePoseError(f"{path}: not a readable npz ({exc})") from None
    if kpts.ndim != 3 or kpts.shape[1:] != (17, 2) or len(kpts) == 0:
        raise SmarthomePoseError(f"{path}: key 'kpts' has shape {kpts.shape}, expected (T, 17, 2) with T > 0")
    if not np.issubdtype(kpts.dtype, np.number) or not np.isfinite(kpts).all():
        raise SmarthomePoseError(f"{path}: key 'kpts' holds non-numbers, NaN or infinity")
    return kpts.astype(np.float32)


def track_one_person(frames: list[np.ndarray]) -> tuple[np.ndarray, int]:
    """One ``(T, V, C)`` track through per-frame detections ``(D, V, C)``, and the most detections in a frame.

    The track starts at the first detection seen and then takes, in every frame, the detection nearest (mean
    joint distance) to the last one taken; frames without detections stay zero.
    """
    v, c = next((f.shape[1:] for f in frames if len(f)), (NUM_JOINTS, frames[0].shape[-1]))
    track = np.zeros((len(frames), v, c), np.float32)
    last = None
    for t, det in enumerate(frames):
        if not len(det):
            continue
        pick = 0 if last is None else int(np.argmin(np.linalg.norm(det - last, axis=-1).mean(axis=-1)))
        track[t] = last = det[pick]
    return track, max(map(len, frames))


def normalize_screen(xy: np.ndarray, width: int = SCREEN_WIDTH, height: int = SCREEN_HEIGHT) -> np.ndarray:
    """Pixels ``(..., 2)`` -> x in [-1, 1] and y scaled alike, keeping the aspect ratio (UNIK's convention);
    an undetected keypoint, ``(0, 0)``, stays ``(0, 0)`` as in UNIK."""
    out = xy / width * 2 - np.array([1, height / width], dtype=xy.dtype)
    out[(xy == 0).all(axis=-1)] = 0
    return out

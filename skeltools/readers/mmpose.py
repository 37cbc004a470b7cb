"""MMPose / RTMPose prediction JSON: one video's frames of people -> numbers and ``(P, V, 3)`` arrays (x, y, score).

Accepted forms (MMPose 1.x):

- ``demo/topdown_demo_with_mmdet.py --save-predictions``: ``{"meta_info": dataset_meta, "instance_info": [{"frame_id",
  "instances": [...]}, ...]}`` (frame ids from 1), or for an image ``instance_info`` = the instances;
- ``MMPoseInferencer(..., pred_out_dir=...)`` on a video: a plain list ``[{"frame_id", "instances": [...]}, ...]``
  (frame ids from 0); a list of per-frame instance lists is read the same way, frames numbered by position.

An instance holds ``keypoints`` (V lists of x, y in pixels), ``keypoint_scores`` (V) and optionally ``bbox`` and
``bbox_score`` (not used). ``meta_info`` gives ``num_keypoints`` and ``dataset_name``; an image size, when a writer
adds one, is read from ``img_shape`` / ``ori_shape`` (H, W) or ``width`` and ``height``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np


class MMPoseError(ValueError):
    """A prediction file that cannot be read; the message names the file and what was expected."""


@dataclass
class MMPoseVideo:
    numbers: np.ndarray  # (K,) frame numbers as written
    people: list[np.ndarray]  # K arrays (P, V, 3): x, y, score
    num_keypoints: int | None  # from meta_info, or the first instance; None when nobody is in any frame
    dataset_name: str | None
    image_size: tuple[float, float] | None  # (W, H) when meta_info has it


def read_mmpose_json(path, num_joints: int | None = None) -> MMPoseVideo:
    """Read one prediction file (module doc); ``num_joints``: the keypoint count every instance must have."""
    try:
        with open(path, "rb") as fh:
            doc = json.loads(fh.read())
    except (OSError, ValueError) as exc:
        raise MMPoseError(f"{path}: not readable JSON ({exc})") from None
    return parse_mmpose(doc, path, num_joints)


def _frames_of(doc, path) -> tuple[list, Mapping]:
    meta: Mapping = {}
    if isinstance(doc, Mapping):
        if "instance_info" not in doc:
            raise MMPoseError(f"{path}: a JSON object needs 'instance_info' (with 'meta_info'), as "
                              "topdown_demo_with_mmdet.py writes")
        meta = doc.get("meta_info") or {}
        if not isinstance(meta, Mapping):
            raise MMPoseError(f"{path}: 'meta_info' is a {type(meta).__name__}, expected an object")
        doc = doc["instance_info"]
    if not isinstance(doc, list):
        raise MMPoseError(f"{path}: expected a list of frames, got {type(doc).__name__}")
    if doc and isinstance(doc[0], Mapping) and "keypoints" in doc[0]:  # one image's instances
        doc = [{"frame_id": 0, "instances": doc}]
    return doc, meta


def _image_size(meta: Mapping) -> tuple[float, float] | None:
    shape = meta.get("img_shape") or meta.get("ori_shape")
    try:
        if shape is not None:
            h, w = (float(s) for s in list(shape)[:2])
        elif "width" in meta and "height" in meta:
            w, h = float(meta["width"]), float(meta["height"])
        else:
            return None
    except (TypeError, ValueError):
        return None
    return (w, h) if w > 0 and h > 0 else None


def _instance(inst: Any, where: str, v: int | None) -> np.ndarray:
    if not isinstance(inst, Mapping) or "keypoints" not in inst or "keypoint_scores" not in inst:
        raise MMPoseError(f"{where}: expected an instance with 'keypoints' and 'keypoint_scores'")
    try:
        xy = np.asarray(inst["keypoints"], dtype=np.float32)
        score = np.asarray(inst["keypoint_scores"], dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise MMPoseError(f"{where}: keypoints are not numbers ({exc})") from None
    if xy.ndim != 2 or xy.shape[1] != 2 or score.shape != (len(xy),):
        raise MMPoseError(f"{where}: keypoints shape {xy.shape} and keypoint_scores shape {score.shape}, expected "
                          "(V, 2) and (V,) (2D predictions)")
    if v is not None and len(xy) != v:
        raise MMPoseError(f"{where}: {len(xy)} keypoints, expected {v}")
    if not (np.isfinite(xy).all() and np.isfinite(score).all()):
        raise MMPoseError(f"{where}: NaN/inf keypoint values")
    return np.concatenate([xy, score[:, None]], axis=1)


def parse_mmpose(doc, path="<json>", num_joints: int | None = None) -> MMPoseVideo:
    """A loaded prediction document -> :class:`MMPoseVideo` (module doc); MMPoseError for anything else."""
    frames, meta = _frames_of(doc, path)
    v = meta.get("num_keypoints") if isinstance(meta.get("num_keypoints"), int) else None
    if num_joints is not None and v is not None and v != num_joints:
        raise MMPoseError(f"{path}: meta_info num_keypoints is {v}, expected {num_joints}")
    v = num_joints or v
    numbers, people = [], []
    for k, frame in enumerate(frames):
        if isinstance(frame, Mapping):
            number, instances = frame.get("frame_id", k), frame.get("instances", [])
        else:
            number, instances = k, frame
        if not isinstance(number, int) or not isinstance(instances, list):
            raise MMPoseError(f"{path}: frame {k}: expected an integer frame_id and a list of instances")
        rows = [_instance(inst, f"{path}: frame {number} instance {i}", v) for i, inst in enumerate(instances)]
        if rows and v is None:
            v = len(rows[0])
        numbers.append(number)
        people.append(np.stack(rows) if rows else None)
    people = [p if p is not None else np.zeros((0, v or 0, 3), np.float32) for p in people]
    name = meta.get("dataset_name")
    return MMPoseVideo(np.asarray(numbers, np.int64), people, v, name if isinstance(name, str) else None,
                       _image_size(meta))

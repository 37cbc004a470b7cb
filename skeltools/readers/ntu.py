"""NTU RGB+D ``.skeleton`` reader (the numba byte parser is added below this contract)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SkeletonFile:
    """One parsed ``.skeleton`` file. Body-frames are listed in file order.

    num_frames        frame count from the header line
    bodies_per_frame  int32 (num_frames,)  bodies listed in each frame (0 for an empty frame)
    body_id           int64 (B,)  exact Kinect bodyID of each body-frame (B = total body-frames)
    frame             int32 (B,)  0-based frame index (header numbering, empty frames included)
    slot              int32 (B,)  position of the body within its frame (0 = first listed)
    xyz               float32 (B, 25, 3)  camera-space x, y, z in metres
    """

    num_frames: int
    bodies_per_frame: np.ndarray
    body_id: np.ndarray
    frame: np.ndarray
    slot: np.ndarray
    xyz: np.ndarray

    @classmethod
    def from_frames(cls, frames: list[list[tuple[int, np.ndarray]]]) -> "SkeletonFile":
        """Build from a list of frames, each a list of ``(body_id, xyz (25, 3))`` (handy in tests)."""
        body_id, frame, slot, xyz = [], [], [], []
        for f, bodies in enumerate(frames):
            for s, (bid, joints) in enumerate(bodies):
                body_id.append(bid)
                frame.append(f)
                slot.append(s)
                xyz.append(np.asarray(joints, dtype=np.float32))
        return cls(
            num_frames=len(frames),
            bodies_per_frame=np.array([len(b) for b in frames], dtype=np.int32),
            body_id=np.array(body_id, dtype=np.int64),
            frame=np.array(frame, dtype=np.int32),
            slot=np.array(slot, dtype=np.int32),
            xyz=np.array(xyz, dtype=np.float32).reshape(-1, 25, 3),
        )

"""Imported once by the conversion pool's forkserver: loads the heavy modules, and the reader kernels that numba's
cache already holds, so that every forked worker starts with them ready instead of loading them itself. Kernels not
in the cache are not compiled here: a worker compiles what its command really uses, on first use (one worker per
kernel, the others wait and load it: ``skeltools.jit.ready``)."""
import numpy as np

from skeltools import convert, jit, presets  # noqa: F401
from skeltools.readers import jsonscan, ntu, openpose, smallfiles

_pose = "[" + ",".join(["1.5"] * 54) + "]"
_kinetics = (b'{"data": [{"frame_index": 1, "skeleton": [{"pose": [%s], "score": [%s]}]}]}'
             % (",".join(["0.5"] * 36).encode(), ",".join(["1"] * 18).encode()))


def _openpose() -> None:
    for frames in (openpose.parse_kinetics_video(_kinetics).frames,
                   openpose.parse_openpose_frames([b'{"people": [{"pose_keypoints_2d": %s}]}' % _pose.encode()] * 2,
                                                  18, "ab")):
        openpose.select_tracked(frames, 2)
        openpose.select_stgcn(frames, 2)


def _per_frame_files() -> None:
    openpose._frames_from_files(smallfiles.CWD, *smallfiles.encode_paths(["/nonexistent/skeltools-warmup.json"]),
                                18, np.empty((1, 2), np.int64))


_GROUPS = [  # (kernels that must all be cached, the call that loads them)
    ((ntu._parse_bytes, ntu._parse_joints),
     lambda: ntu.parse_skeleton(b"1\n1\n72057594037931101 0 1 1 1 1 0 0.01 -0.25 2\n25\n"
                                + b"0.1 0.2 3.5 1 2 3 4 0 0 0 0 2\n" * 25)),
    ((jsonscan.scan, openpose._kinetics_from_tape, openpose._frames_from_bytes, openpose._select_tracked,
      openpose._select_stgcn), _openpose),
    ((openpose._frames_from_files,) if smallfiles.AVAILABLE else (), _per_frame_files),
]
for _kernels, _load in _GROUPS:
    if _kernels and all(jit.is_cached(k) for k in _kernels):
        _load()

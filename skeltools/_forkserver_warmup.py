"""Imported once by the conversion pool's forkserver: loads the heavy modules and the numba parser from its
cache, so that every forked worker starts with them ready instead of loading them itself."""
import numpy as np

from skeltools import convert, presets  # noqa: F401
from skeltools.readers.ntu import parse_skeleton
from skeltools.readers import smallfiles
from skeltools.readers.openpose import (_frames_from_files, parse_kinetics_video, parse_openpose_frames, select_stgcn,
                                        select_tracked)

parse_skeleton(b"1\n1\n72057594037931101 0 1 1 1 1 0 0.01 -0.25 2\n25\n" + b"0.1 0.2 3.5 1 2 3 4 0 0 0 0 2\n" * 25)
_pose = "[" + ",".join(["1.5"] * 54) + "]"
for _frames in (parse_kinetics_video(b'{"data": [{"frame_index": 1, "skeleton": [{"pose": [%s], "score": [%s]}]}]}'
                                     % (",".join(["0.5"] * 36).encode(), ",".join(["1"] * 18).encode())).frames,
                parse_openpose_frames([b'{"people": [{"pose_keypoints_2d": %s}]}' % _pose.encode()] * 2, 18, "ab")):
    select_tracked(_frames, 2)
    select_stgcn(_frames, 2)
if smallfiles.AVAILABLE:
    _frames_from_files(smallfiles.CWD, *smallfiles.encode_paths(["/nonexistent/skeltools-warmup.json"]), 18,
                       np.empty((1, 2), np.int64))

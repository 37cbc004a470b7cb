"""Benchmark: OpenPose per-frame JSON and Kinetics-Skeleton JSON -> store, against a plain-Python reader.

Writes synthetic corpora of both formats (``skeltools.synth.write_openpose_corpus``), then prints videos/s and
MB/s of JSON for:
  - the plain-Python baseline: ``json`` + Python loops filling the st-gcn ``(3, T, V, M)`` array per video (the
    style of st-gcn's ``feeder_kinetics.py``), one core, nothing written;
  - ``convert_openpose`` end to end in this process (listing, parse, tracking, normalize, zarr write, index) on
    ``--workers`` workers;
and their ratio, measured in the same run.

    python benchmarks/convert_openpose.py --videos 200 --workers 2
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def python_kinetics(path: Path, max_frames: int = 300, persons_in: int = 5) -> np.ndarray:
    """st-gcn style: json.load, then per frame and skeleton, joint values assigned in Python."""
    with open(path) as fh:
        video = json.load(fh)
    data = np.zeros((3, max(max_frames, len(video["data"]) + 1), 18, persons_in))
    for frame in video["data"]:
        for m, skeleton in enumerate(frame["skeleton"][:persons_in]):
            pose, score = skeleton["pose"], skeleton["score"]
            for v in range(18):
                data[0, frame["frame_index"], v, m] = pose[2 * v]
                data[1, frame["frame_index"], v, m] = pose[2 * v + 1]
                data[2, frame["frame_index"], v, m] = score[v]
    return data


def python_frames(folder: Path, persons_in: int = 5) -> np.ndarray:
    """The same for a folder of OpenPose per-frame files, sorted by name."""
    files = sorted(folder.glob("*.json"))
    data = np.zeros((3, len(files), 18, persons_in))
    for t, path in enumerate(files):
        with open(path) as fh:
            people = json.load(fh)["people"]
        for m, person in enumerate(people[:persons_in]):
            keypoints = person["pose_keypoints_2d"]
            for v in range(18):
                for c in range(3):
                    data[c, t, v, m] = keypoints[3 * v + c]
    return data


def _size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*.json"))


def bench(fmt: str, videos: int, workers: int, root: Path) -> dict:
    from skeltools.convert_openpose import convert_openpose
    from skeltools.synth import write_openpose_corpus

    raw = root / fmt
    paths = write_openpose_corpus(raw, videos, seed=0, format=fmt)
    size = _size(raw)
    reader = python_kinetics if fmt == "kinetics" else python_frames
    t0 = time.perf_counter()
    for p in paths:
        reader(p)
    t_python = time.perf_counter() - t0
    t0 = time.perf_counter()
    convert_openpose([raw], root / f"{fmt}.zarr", format=fmt, image_size=(1920, 1080) if fmt == "frames" else None,
                     workers=workers, progress=False)
    t_convert = time.perf_counter() - t0
    return {"format": fmt, "videos": videos, "MB": size / 1e6, "python_s": t_python, "convert_s": t_convert}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("kinetics", "frames"):
            r = bench(fmt, args.videos, args.workers, Path(tmp))
            for name, seconds in (("python json + loops, 1 core", r["python_s"]),
                                  (f"convert_openpose, {args.workers} workers", r["convert_s"])):
                print(f"{fmt:8s} {name:32s} {r['videos'] / seconds:8.1f} videos/s {r['MB'] / seconds:7.1f} MB/s")
            print(f"{fmt:8s} ratio {r['python_s'] / r['convert_s']:.1f}x  ({r['videos']} videos, {r['MB']:.0f} MB)")


if __name__ == "__main__":
    main()

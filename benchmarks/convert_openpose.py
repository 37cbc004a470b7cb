"""Benchmark: OpenPose per-frame JSON and Kinetics-Skeleton JSON -> store, against a plain-Python reader.

Writes synthetic corpora of both formats (``skeltools.synth.write_openpose_corpus``; NTU-synth motions with 1-3
people, ``--frames`` frames per video), then prints, per format, videos/s and MB/s of JSON for:
  - the plain-Python baseline: ``json`` + Python loops filling the st-gcn ``(3, T, V, M)`` array per video (the
    style of st-gcn's ``feeder_kinetics.py``), one core, nothing written;
  - per core, in this process: parsing alone (stdlib ``json.loads``; orjson's ``loads`` when installed; our
    reader, the numba scanner) and our parse + person tracking + normalization (``process_video``);
  - ``convert_openpose`` end to end (listing, pool start, parse, tracking, normalize, zarr write, index) on
    ``--workers`` workers, in a process that has converted before (a fresh process first pays its start-up, about
    1 s: forkserver, imports, kernels, zarr set-up; measured first on two tiny videos and printed, and added in a
    second line);
and the ratios to the baseline, all measured in the same run.

    python benchmarks/convert_openpose.py --videos 2000 --frames 300 --frame-videos 300 --workers 2

The per-frame files are written as OpenPose writes them (6 significant digits, about 1 kB a frame); with one
file per frame, opening and reading costs as much as parsing, so the reader does both inside numba (libc
``openat``/``statx``/``read``, see ``skeltools.readers.smallfiles``).
"""
from __future__ import annotations

import argparse
import json
import os
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


def _timed(func, items) -> float:
    t0 = time.perf_counter()
    for item in items:
        func(item)
    return time.perf_counter() - t0


def _parsers(fmt: str) -> dict:
    """Parse-only functions of one video, by name."""
    from skeltools.readers.openpose import read_kinetics_video, read_openpose_video

    def each_file(load):
        return load if fmt == "kinetics" else (lambda folder: [load(f) for f in sorted(folder.glob("*.json"))])

    parsers = {"json.loads": each_file(lambda f: json.loads(f.read_bytes()))}
    try:
        import orjson

        parsers["orjson.loads"] = each_file(lambda f: orjson.loads(f.read_bytes()))
    except ImportError:
        pass
    parsers["skeltools reader"] = (read_kinetics_video if fmt == "kinetics" else
                                   lambda folder: read_openpose_video(sorted(folder.glob("*.json")), 18))
    return parsers


def bench(fmt: str, videos: int, frames: int, workers: int, root: Path, startup: float) -> tuple[dict, float, dict]:
    from skeltools.convert_openpose import (OpenPoseOptions, _json_folders, frame_items, kinetics_items,
                                            convert_openpose, process_video)
    from skeltools.synth import write_openpose_corpus

    raw = root / fmt
    t0 = time.perf_counter()
    paths = write_openpose_corpus(raw, videos, seed=0, format=fmt, frames=frames)
    os.sync()  # the corpus's write-back would otherwise run during the timings
    print(f"{fmt}: wrote {videos} videos of {frames} frames in {time.perf_counter() - t0:.0f} s")
    size = sum(p.stat().st_size for p in raw.rglob("*.json"))
    image = (1920, 1080) if fmt == "frames" else None
    timings = {"python json + loops (baseline)": _timed(python_kinetics if fmt == "kinetics" else python_frames,
                                                        paths)}
    for name, parse in _parsers(fmt).items():
        parse(paths[0])  # numba: load the cached kernels before timing
        timings[f"parse only: {name}"] = _timed(parse, paths)
    files = _json_folders([raw])
    items = kinetics_items(files) if fmt == "kinetics" else frame_items(files)
    options = OpenPoseOptions(fmt, image_width=image[0] if image else 0.0, image_height=image[1] if image else 0.0)
    process_video(items[0], options)
    timings["skeltools parse + track + normalize"] = _timed(lambda item: process_video(item, options), items)
    def convert(inputs, name):
        t0 = time.perf_counter()
        report = convert_openpose(inputs, root / name, format=fmt, image_size=image, workers=workers,
                                  progress=False, labels=[raw / "labels.csv"] if fmt == "frames" else ())
        assert report["counts"]["converted"] == len(inputs), report["counts"]
        return time.perf_counter() - t0, report

    whole, report = convert(paths, f"{fmt}.zarr")
    timings[f"convert_openpose end to end, {workers} workers"] = whole
    timings["  the same plus the process start-up"] = whole + startup
    return timings, size / 1e6, report["timings"]


def startup(workers: int, root: Path) -> float:
    """Seconds of a process's one-time start-up: the converters' worker pool (forkserver, imports, numba kernels)
    and the first store the process writes (zarr and pyarrow set-up), by converting two tiny videos."""
    from skeltools.convert_openpose import convert_openpose
    from skeltools.synth import write_openpose_corpus

    write_openpose_corpus(root / "warmup", 2, seed=1, format="kinetics", frames=20)
    t0 = time.perf_counter()
    convert_openpose([root / "warmup"], root / "warmup.zarr", workers=workers, progress=False)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=2000, help="Kinetics-Skeleton videos")
    parser.add_argument("--frame-videos", type=int, default=300, help="per-frame videos (one file per frame)")
    parser.add_argument("--frames", type=int, default=300, help="frames per video")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", choices=("kinetics", "frames"), help="run one format")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        startup_s = startup(args.workers, Path(tmp))  # once per process: later conversions reuse the forkserver
        print(f"process start-up (worker pool: forkserver, imports, numba kernels; first store: zarr, pyarrow): "
              f"{startup_s:.2f} s")
        for fmt, videos in (("kinetics", args.videos), ("frames", args.frame_videos)):
            if args.only not in (None, fmt):
                continue
            timings, mb, phases = bench(fmt, videos, args.frames, args.workers, Path(tmp), startup_s)
            base = timings["python json + loops (baseline)"]
            files = videos * (args.frames if fmt == "frames" else 1)
            print(f"{fmt}: {videos} videos, {files} files, {mb:.0f} MB of JSON")
            for name, seconds in timings.items():
                print(f"  {name:44s} {videos / seconds:8.1f} videos/s {mb / seconds:7.1f} MB/s "
                      f"{1e3 * seconds / videos:7.2f} ms/video  {base / seconds:5.1f}x")
            rest = phases["total_s"] - phases["process_wall_s"] - phases["write_wall_s"]
            print(f"  end to end, wall: parse+track+normalize {phases['process_wall_s']:.2f} s, zarr write "
                  f"{phases['write_wall_s']:.2f} s, listing/pool start/index/publish {rest:.2f} s")


if __name__ == "__main__":
    main()

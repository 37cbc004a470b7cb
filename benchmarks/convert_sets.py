"""Benchmark: Toyota Smarthome JSON, BABEL joints and BABEL release conversion, frames/s against plain baselines.

Each input is synthetic and format-faithful (``skeltools.synth_sets``). Baselines run in the same process and do
the same reading and per-sample work with plain json/numpy in a loop, without the store:
  - Smarthome: ``json.load`` per file, first detection per frame reshaped from coordinate-major, concatenated;
  - BABEL joints: ``np.load`` per sequence, then BABEL's steps (``convert_babel.sequence_samples``: 30-fps
    subsampling, chunking, 2s-AGCN pre_normalization per chunk), concatenated;
  - BABEL release: ``np.load`` of the released array, transposed to frames, concatenated.
The converters run warm (imports done) with the given worker count. Frames are output frames (30 fps chunks for
BABEL, input frames for Smarthome).

    python benchmarks/convert_sets.py --workers 2
"""
from __future__ import annotations

import argparse
import json
import pickle
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def smarthome_baseline(files: list[Path]) -> int:
    blocks = []
    for f in files:
        doc = json.loads(f.read_text())
        poses = np.zeros((len(doc["frames"]), 13, 3), np.float32)
        for t, dets in enumerate(doc["frames"]):
            if dets:
                poses[t] = np.asarray(dets[0]["pose3d"], np.float32).reshape(3, 13).T
        blocks.append(poses)
    return len(np.concatenate(blocks))


def babel_baseline(paths: dict) -> int:
    from skeltools.convert_babel import babel_records, sequence_samples
    from skeltools.readers.babel import SMPLH_TO_NTU

    records = babel_records(str(paths["babel_json"]), False)
    fps = json.loads(paths["fps_table"].read_text())
    blocks = []
    for rel, recs in records.items():
        with np.load(paths["joints"] / rel) as npz:
            joints = npz["joint_pos"].reshape(-1, 73, 3)[:, list(SMPLH_TO_NTU)].astype(np.float64)
        _, frames, _ = sequence_samples(joints, fps[recs[0][1]["feat_p"]], recs, 60)
        blocks.append(frames)
    return len(np.concatenate(blocks))


def write_release(folder: Path, samples: int) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", samples), ("val", samples // 4)):
        np.save(folder / f"{split}_ntu_sk_60.npy", rng.normal(size=(n, 3, 150, 25, 1)).astype(np.float32))
        labels = ([f"s{i}" for i in range(n)], (list(rng.integers(0, 60, n)), list(range(n)), [0] * n, ["a"] * n))
        (folder / f"{split}_label_60.pkl").write_bytes(pickle.dumps(labels))


def release_baseline(folder: Path) -> int:
    blocks = [np.load(f).transpose(0, 2, 4, 3, 1).reshape(-1, 1, 25, 3) for f in sorted(folder.glob("*.npy"))]
    return len(np.concatenate(blocks))


def timed(fn, *args) -> tuple[int, float]:
    t0 = time.perf_counter()
    frames = fn(*args)
    return frames, time.perf_counter() - t0


def report(name: str, baseline: tuple[int, float], ours: tuple[int, float]) -> None:
    (bf, bs), (of, os_) = baseline, ours
    print(f"{name:<16} baseline {bf / bs:>11,.0f} frames/s   skeltools {of / os_:>11,.0f} frames/s   "
          f"x{(of / os_) / (bf / bs):.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--smarthome-files", type=int, default=300)
    ap.add_argument("--babel-sequences", type=int, default=120)
    ap.add_argument("--release-samples", type=int, default=4000)
    args = ap.parse_args()

    from skeltools.convert_babel import convert_babel
    from skeltools.convert_smarthome import convert_smarthome
    from skeltools.synth_sets import write_babel_corpus, write_smarthome_corpus

    root = Path(tempfile.mkdtemp(prefix="skeltools-bench-sets-"))
    try:
        files = write_smarthome_corpus(root / "sh", args.smarthome_files, 0, frames_range=(100, 2000))
        base = timed(smarthome_baseline, files)
        ours = timed(lambda: convert_smarthome([root / "sh"], root / "sh.zarr", workers=args.workers,
                                               progress=False)["counts"]["frames"])
        report("smarthome json", base, ours)

        paths = write_babel_corpus(root / "babel", args.babel_sequences, 0, seconds_range=(5.0, 60.0))
        base = timed(babel_baseline, paths)
        ours = timed(lambda: convert_babel([paths["joints"]], root / "b.zarr", source="joints",
                                           babel_json=paths["babel_json"], fps_table=paths["fps_table"],
                                           workers=args.workers, progress=False)["counts"]["frames"])
        report("babel joints", base, ours)

        write_release(root / "release", args.release_samples)
        base = timed(release_baseline, root / "release")
        ours = timed(lambda: convert_babel([root / "release"], root / "r.zarr", workers=args.workers,
                                           progress=False)["counts"]["frames"])
        report("babel release", base, ours)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

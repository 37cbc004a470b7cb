"""Benchmark: pyskl annotation pickle -> store, against plain ``pickle.load`` + numpy stacking.

Writes a synthetic pyskl 2D pickle shaped like ``ntu60_hrnet.pkl`` (``--samples`` annotations, 1-3 persons, 40-160
frames, 17 joints, float16 ``keypoint`` and ``keypoint_score``, xsub splits), then runs, each in a fresh process so
that its peak memory (max RSS) is its own:
  - baseline: ``pickle.load`` (unrestricted) + every annotation's keypoint and score stacked into ``(T, M, V, 3)``
    float32 and concatenated into one array (what a loader written in an afternoon does; nothing written);
  - restricted load only: ``skeltools.readers.pyskl.load_pickle`` (the cost of refusing foreign globals);
  - ``convert_pyskl`` end to end (pool start, load, convert, spill, zarr write, index) on one worker (all in one
    process, so its peak RSS is the whole conversion's), the pickle loaded whole (files up to 256 MiB) or streamed
    through stage files (larger ones), and on ``--workers`` workers (the parent's peak);
and MB/s of pickle for each, with the ratio to the baseline, all measured in the same run; for the conversions also
the part before the zarr write (load, convert, spill files: the baseline's work), from the report's timings.

    python benchmarks/convert_pyskl.py --samples 4000 --workers 2
"""
from __future__ import annotations

import argparse
import json
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def write_pickle(path: Path, samples: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    annotations = []
    for i in range(samples):
        m, t = int(rng.integers(1, 4)), int(rng.integers(40, 161))
        name = f"S{1 + i % 17:03d}C{1 + i % 3:03d}P{1 + i % 40:03d}R{1 + i % 2:03d}A{1 + i % 60:03d}_{i}"
        annotations.append({"frame_dir": name, "label": i % 60, "img_shape": (1080, 1920),
                            "original_shape": (1080, 1920), "total_frames": t,
                            "keypoint": rng.uniform(0, 1900, (m, t, 17, 2)).astype(np.float16),
                            "keypoint_score": rng.uniform(0, 1, (m, t, 17)).astype(np.float16)})
    names = [a["frame_dir"] for a in annotations]
    split = {"xsub_train": names[::2], "xsub_val": names[1::2]}
    with open(path, "wb") as fh:
        pickle.dump({"split": split, "annotations": annotations}, fh, protocol=pickle.HIGHEST_PROTOCOL)


_BASELINE = """
import pickle, numpy as np
with open(PKL, "rb") as fh:
    doc = pickle.load(fh)
blocks = []
for ann in doc["annotations"]:
    kp = np.concatenate([ann["keypoint"], ann["keypoint_score"][..., None]], axis=-1).astype(np.float32)
    out = np.zeros((kp.shape[1], 2, 17, 3), np.float32)
    out[:, :kp.shape[0]] = kp[:2].transpose(1, 0, 2, 3)
    blocks.append(out)
frames = np.concatenate(blocks)
"""
_RESTRICTED = """
from skeltools.readers.pyskl import load_pickle
doc = load_pickle(PKL)
"""
_CONVERT = """
from skeltools.convert_pyskl import convert_pyskl
EXTRA = convert_pyskl([PKL], OUT, workers=WORKERS, progress=False, overwrite=True, stream_bytes=STREAM)["timings"]
"""


def run_child(body: str, **names) -> dict:
    """Run ``body`` in a fresh interpreter; return its wall time (imports of ``body`` included) and peak RSS in MB."""
    setup = "".join(f"{k} = {v!r}\n" for k, v in names.items())
    report = ("seconds = time.perf_counter() - t0\n"
              "rss = lambda who: resource.getrusage(who).ru_maxrss / 1024\n"
              "print(json.dumps({'seconds': seconds, 'rss': rss(resource.RUSAGE_SELF), "
              "'timings': globals().get('EXTRA')}))\n")
    code = "import json, resource, time\n" + setup + "t0 = time.perf_counter()\n" + body + report
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    if out.returncode:
        raise RuntimeError(f"benchmark child failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=4000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pkl = Path(tmp) / "hrnet.pkl"
        write_pickle(pkl, args.samples)
        mb = pkl.stat().st_size / 1e6
        print(f"pickle: {args.samples} annotations, {mb:.1f} MB (float16 2D, 17 joints)")
        base = run_child(_BASELINE, PKL=str(pkl))
        rows = [("baseline pickle.load + numpy stacking", base),
                ("restricted load_pickle only", run_child(_RESTRICTED, PKL=str(pkl)))]
        runs = [(1, False), (1, True)] + ([(args.workers, False)] if args.workers > 1 else [])
        for workers, stream in runs:  # 1 worker: everything in this process, so its peak is the conversion's
            converted = run_child(_CONVERT, PKL=str(pkl), OUT=str(Path(tmp) / "out.zarr"), WORKERS=workers,
                                  STREAM=0 if stream else 1 << 40)
            rows.append((f"convert_pyskl, {workers} worker(s), {'streamed' if stream else 'loaded whole'}",
                         converted))
        for name, result in rows:
            speed = mb / result["seconds"]
            print(f"{name:44s} {result['seconds']:7.2f} s {speed:8.1f} MB/s  x{speed / (mb / base['seconds']):.2f}"
                  f"  peak RSS {result['rss']:6.0f} MB")
            if result["timings"]:  # without the zarr write, the same work as the baseline: load, convert, spill
                seconds = result["seconds"] - result["timings"]["write_wall_s"]
                print(f"{'  of which load + convert + spill':44s} {seconds:7.2f} s {mb / seconds:8.1f} MB/s  "
                      f"x{base['seconds'] / seconds:.2f}")


if __name__ == "__main__":
    main()

"""Benchmark: NTU .skeleton -> store conversion, end to end and the parser alone.

Generates a synthetic, format-faithful corpus (default >= 500 MB; reused from --corpus if present), then prints
MB/s of input text and files/s for:
  - a reference-style Python reader (st-gcn style: every field through float(), dicts per body), on a subset;
  - the numba byte parser alone, one core, files already in memory;
  - `skeltools convert ntu` end to end in a fresh process (interpreter start, imports, worker pool start, parse,
    preset, zarr write, index), with 1 and with N workers;
  - the same conversion in a warm process (imports and forkserver already up), as on a large corpus where the
    fixed start-up of about 0.6 s no longer counts;
and the ratios to the Python reader measured in the same run.

    python benchmarks/convert_ntu.py --size-mb 500 --workers 2
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def python_reader(path: Path) -> dict:
    """The reference style: every field of every line converted with float()/int(), kept in dicts."""
    with open(path) as fh:
        frame_count = int(fh.readline())
        frames = []
        for _ in range(frame_count):
            bodies = []
            for _ in range(int(fh.readline())):
                keys = ["bodyID", "clipedEdges", "handLeftConfidence", "handLeftState", "handRightConfidence",
                        "handRightState", "isResticted", "leanX", "leanY", "trackingState"]
                body = {k: float(v) for k, v in zip(keys, fh.readline().split())}
                joints = []
                for _ in range(int(fh.readline())):
                    keys = ["x", "y", "z", "depthX", "depthY", "colorX", "colorY", "orientationW", "orientationX",
                            "orientationY", "orientationZ", "trackingState"]
                    joints.append({k: float(v) for k, v in zip(keys, fh.readline().split())})
                body["jointInfo"] = joints
                bodies.append(body)
            frames.append(bodies)
    return {"numFrame": frame_count, "frameInfo": frames}


def ensure_corpus(corpus: Path, size_mb: float, seed: int) -> list[Path]:
    """Reuse the corpus in ``corpus`` if it is big enough, else write a fresh one of about ``size_mb``."""
    from skeltools.synth import write_ntu_corpus

    files = sorted(corpus.glob("*.skeleton")) if corpus.exists() else []
    if sum(p.stat().st_size for p in files) >= size_mb * 1e6 * 0.95:
        return files
    shutil.rmtree(corpus, ignore_errors=True)
    t0 = time.perf_counter()
    files = write_ntu_corpus(corpus, max(1, int(size_mb * 1e6 / 270e3)), seed, dataset="ntu120")
    size = sum(p.stat().st_size for p in files)
    print(f"generated {len(files)} files, {size / 1e6:.0f} MB in {time.perf_counter() - t0:.1f} s")
    return sorted(files)


def rate(nbytes: int, nfiles: int, seconds: float) -> str:
    return f"{nbytes / 1e6 / seconds:8.1f} MB/s {nfiles / seconds:8.1f} files/s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=float, default=500)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--preset", default="pyskl")
    ap.add_argument("--corpus", type=Path, default=Path(tempfile.gettempdir()) / "skeltools-bench-ntu")
    ap.add_argument("--python-files", type=int, default=60, help="files for the (slow) Python reader")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from skeltools.convert import convert_ntu
    from skeltools.readers.ntu import parse_skeleton

    files = ensure_corpus(args.corpus, args.size_mb, args.seed)
    total = sum(p.stat().st_size for p in files)
    print(f"corpus: {len(files)} files, {total / 1e6:.0f} MB ({total / len(files) / 1e3:.0f} KB/file) in {args.corpus}")

    subset = files[: args.python_files]
    sub_bytes = sum(p.stat().st_size for p in subset)
    t0 = time.perf_counter()
    for p in subset:
        python_reader(p)
    py_s = time.perf_counter() - t0
    py_rate = sub_bytes / py_s
    print(f"python reader (float() per field)   {rate(sub_bytes, len(subset), py_s)}   1.0x")

    parse_skeleton(files[0].read_bytes())  # JIT / cache load outside the timing
    blobs = [np.fromfile(p, dtype=np.uint8) for p in files]
    t0 = time.perf_counter()
    for b in blobs:
        parse_skeleton(b)
    parse_s = time.perf_counter() - t0
    print(f"numba parser alone, 1 core          {rate(total, len(files), parse_s)} "
          f"{total / parse_s / py_rate:6.1f}x")
    del blobs

    with tempfile.TemporaryDirectory(dir=args.corpus.parent) as tmp:
        for workers in sorted({1, args.workers}):
            out = Path(tmp) / f"cli{workers}.zarr"
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "skeltools.cli", "convert", "ntu", str(args.corpus), "-o", str(out),
                            "--preset", args.preset, "--workers", str(workers), "--exclude-list", os.devnull, "-q"],
                           check=True, stdout=subprocess.DEVNULL)
            wall = time.perf_counter() - t0
            print(f"skeltools convert CLI, {workers} worker(s) {rate(total, len(files), wall)} "
                  f"{total / wall / py_rate:6.1f}x   (a fresh process: interpreter, imports and pool start included)")
        for workers in sorted({1, args.workers}):
            for attempt in ("first", "warm"):  # the second run reuses the process's imports and forkserver
                out = Path(tmp) / f"api{workers}{attempt}.zarr"
                t0 = time.perf_counter()
                report = convert_ntu([args.corpus], out, preset=args.preset, workers=workers, exclude_list=(),
                                     progress=False)
                wall = time.perf_counter() - t0
            t = report["timings"]
            print(f"convert_ntu() steady state, {workers} w.  {rate(total, len(files), wall)} "
                  f"{total / wall / py_rate:6.1f}x   (process {t['process_wall_s']:.2f} s, write {t['write_wall_s']:.2f} s, "
                  f"{report['counts']['converted']} samples, {report['counts']['frames']} frames, "
                  f"store {sum(f.stat().st_size for f in out.rglob('*') if f.is_file()) / 1e6:.0f} MB)")

if __name__ == "__main__":
    main()

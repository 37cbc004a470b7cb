"""Benchmark: the modality kernels against a memory copy of the same bytes and against plain numpy.

    python benchmarks/modalities.py                      # 1 M frames (600 MB), 2 threads, best of 5
    python benchmarks/modalities.py --frames 2250000     # the size of the ecosystem-notes table (1.35 GB)

Input is concatenated (F, 2, 25, 3) float32 frames cut into samples of NTU-like lengths. Every figure is input
GB/s, best of --repeat, with ratios to (a) the numba prange copy on the same threads (the memory ceiling) and
(b) the numpy formulation of the same result. Then `skeltools modalities` end to end on a small store with 1 and
with --threads workers, against zarr writing the same three arrays (``array[:] = data``) in the same run.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np
from numba import njit, prange

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from schemas.layouts import NTU25  # noqa: E402
from skeltools import kernels  # noqa: E402


@njit(parallel=True, cache=True)
def prange_copy(src, dst):
    flat_src, flat_dst = src.reshape(-1), dst.reshape(-1)
    for i in prange(flat_src.size):  # element-wise: faster here than slice assignment per block
        flat_dst[i] = flat_src[i]


def best(fn, repeat: int) -> float:
    fn()  # JIT / cache load and page faults outside the timing
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def numpy_bones(x, parents, out):
    np.subtract(x, np.take(x, parents, axis=2), out=out)


def numpy_motion(x, offsets, out):
    np.subtract(x[1:], x[:-1], out=out[:-1])
    out[offsets[1:] - 1] = 0


def synthetic_frames(frames: int, seed: int):
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(np.log(75), 0.45, frames // 30), 30, 300).astype(np.int64)
    lengths = lengths[:np.searchsorted(np.cumsum(lengths), frames)]
    lengths = np.append(lengths, frames - lengths.sum())
    x = np.cumsum(rng.normal(scale=0.01, size=(frames, 2, 25, 3)), axis=0, dtype=np.float32)  # smooth, like poses
    return x, np.concatenate([[0], np.cumsum(lengths)])


def kernel_table(x, offsets, repeat: int, threads: int) -> None:
    rule = kernels.PairRule.make(NTU25.bone_parents, 3)
    parents = np.asarray(NTU25.bone_parents)
    last = kernels.last_frames(offsets)
    out = np.empty_like(x)
    gb = x.nbytes / 1e9
    numba.set_num_threads(threads)
    copy_s = best(lambda: prange_copy(x, out), repeat)
    memcpy_s = best(lambda: np.copyto(out, x), repeat)
    rows = [("copy, numba prange", copy_s, None), ("copy, np.copyto (1 thread)", memcpy_s, None)]
    np_bone = best(lambda: numpy_bones(x, parents, out), repeat)
    np_motion = best(lambda: numpy_motion(x, offsets, out), repeat)
    rows += [("bone, numpy np.take", np_bone, None),
             ("bone, numba flat gather (parallel)", best(lambda: kernels.bones(x, rule, out), repeat), np_bone),
             ("bone, numba serial", best(lambda: kernels.bones(x, rule, out, parallel=False), repeat), np_bone),
             ("motion, numpy diff + zero last frames", np_motion, None),
             ("motion, numba (parallel)", best(lambda: kernels.motion(x, last, rule, out), repeat), np_motion),
             ("motion, numba serial", best(lambda: kernels.motion(x, last, rule, out, parallel=False), repeat),
              np_motion)]
    print(f"{len(x):,} frames, {gb:.2f} GB, {len(offsets) - 1:,} samples, {threads} thread(s), best of {repeat}")
    print(f"{'kernel':40s} {'ms':>8s} {'GB/s':>7s} {'vs copy':>8s} {'vs numpy':>9s}")
    for name, seconds, numpy_s in rows:
        vs_numpy = f"{numpy_s / seconds:8.1f}x" if numpy_s else ""
        print(f"{name:40s} {seconds * 1e3:8.1f} {gb / seconds:7.1f} {copy_s / seconds:7.0%} {vs_numpy:>9s}")


def store_table(x, offsets, frames: int, threads: int) -> None:
    import pyarrow as pa

    from schemas import store as schema
    from skeltools.modalities import write_modalities
    from skeltools.store import StoreBuilder, shard_ranges, work_dir_for, write_frames

    n = int(np.searchsorted(offsets, frames, side="right")) - 1
    x, offsets = x[:offsets[n]], offsets[:n + 1]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.zarr"
        builder = StoreBuilder(path, work_dir_for(path), len(x), (2, 25, 3))
        builder.create({"schema": 1, "dataset": "bench", "layout": "ntu25", "coords": "xyz", "persons": 2,
                        "num_samples": n, "num_frames": len(x), "preset": "none", "preprocessing": {},
                        "class_names": ["a"], "source": "bench", "created": "", "skeltools_version": ""})
        for s, e in shard_ranges(len(x), builder.shard_frames):
            write_frames(builder.array_path(), s, x[s:e])
        index = pa.Table.from_pydict({"sample_id": [str(i) for i in range(n)], "label": [0] * n,
                                      "length": np.diff(offsets).tolist(), "n_persons": [2] * n},
                                     schema=schema.index_schema({}, []))
        builder.publish(offsets, index, {})
        print(f"\n`skeltools modalities` end to end: {len(x):,} frames ({x.nbytes / 1e6:.0f} MB of joints), "
              "3 arrays written, zstd + crc32c")
        baseline = zarr_write_seconds(Path(tmp) / "plain.zarr", x, offsets, builder.shard_frames,
                                      builder.chunk_frames)
        mb = 3 * x.nbytes / 1e6
        print(f"  baseline, zarr `array[:] = data` of the same 3 arrays (kernels not timed): {baseline:.2f} s, "
              f"{mb / baseline:.0f} MB/s")
        for workers in sorted({1, threads}):
            summary = write_modalities(path, workers=workers, overwrite=True, progress=False)
            rate = mb / summary["seconds"]
            print(f"  {workers} worker(s): {summary['seconds']:.2f} s, {rate:.0f} MB/s of output, "
                  f"{baseline / summary['seconds']:.2f}x the zarr write")


def zarr_write_seconds(path: Path, x, offsets, shard_frames: int, chunk_frames: int) -> float:
    """Seconds for zarr to write the three derived arrays of ``x`` (computed beforehand) with the store's layout."""
    import zarr

    from skeltools.modalities import DERIVED, compute_block
    from skeltools.store import create_frame_array

    rule = kernels.PairRule.make(NTU25.bone_parents, 3)
    derived = compute_block(x, kernels.last_frames(offsets), DERIVED, rule)
    group = zarr.open_group(str(path), mode="w-")
    arrays = {name: create_frame_array(group, name, x.shape, shard_frames, chunk_frames) for name in derived}
    t0 = time.perf_counter()
    for name, data in derived.items():
        arrays[name][:] = data
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=1_000_000)
    ap.add_argument("--store-frames", type=int, default=200_000, help="frames for the end-to-end run (0: skip)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    x, offsets = synthetic_frames(args.frames, 0)
    kernel_table(x, offsets, args.repeat, args.threads)
    if args.store_frames:
        store_table(x, offsets, args.store_frames, args.threads)


if __name__ == "__main__":
    main()

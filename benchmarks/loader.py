"""Benchmark: training clips/s out of ``trainer.data`` (T = 100 UniformSample clips, ...), in RAM and lazy.

    python benchmarks/loader.py                         # 2,000 samples of NTU-like length, 2 workers
    python benchmarks/loader.py --samples 10000 --epochs 3

A synthetic NTU-shaped store (2 persons, 25 joints, 3D, lengths ~ NTU) is written once. For each recipe it
reports clips/s of the dataset alone (``ds[i]`` in a loop) and through ``make_loader`` (batch 64, tensors
handed over by torch's shared-memory IPC) with 0 and --workers forkserver workers, steady state (workers persist
across epochs; their start-up is reported separately), clips/s per worker, and the ratio to the DataLoader's
own ceiling measured in the same run (a dataset that returns ready-made zero batches of the same shape).
Recipes: DG-STGCN joint (RandomRot 0.2), the four streams concatenated (j+b+jm+bm) derived on the fly, and
CTR-GCN joint (64-frame crop_resize clips, RandomRot 0.3).
Lazy reads go through ``skeltools.shardread`` (a chunk read and decoded per miss, a 64 MB cache of decoded chunks
per process); the last line of each recipe is the lazy / in-RAM ratio of the same run.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from trainer.data import Augment, SkeletonDataset, make_loader  # noqa: E402

RECIPES = {"j, RandomRot 0.2 (DG-STGCN)": ("j", Augment(rot_theta=0.2), {}),
           "j+b+jm+bm, on the fly": ("j+b+jm+bm", Augment(), {}),
           "j, crop_resize to 64, RandomRot 0.3 (CTR-GCN)": ("j", Augment(rot_theta=0.3),
                                                             {"sampling": "crop_resize", "clip_len": 64})}


def write_store(path: Path, samples: int, seed: int) -> None:
    """Smooth random trajectories with NTU-like lengths; half the samples have one person."""
    import pyarrow as pa

    from schemas import store as schema
    from skeltools.store import StoreBuilder, shard_ranges, work_dir_for, write_frames

    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(np.log(75), 0.45, samples), 30, 300).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    frames = np.cumsum(rng.normal(scale=0.01, size=(int(offsets[-1]), 2, 25, 3)), axis=0, dtype=np.float32)
    for i in range(0, samples, 2):
        frames[offsets[i]:offsets[i + 1], 1] = 0
    builder = StoreBuilder(path, work_dir_for(path), len(frames), (2, 25, 3))
    builder.create({"schema": 1, "dataset": "bench", "layout": "ntu25", "coords": "xyz", "persons": 2,
                    "num_samples": samples, "num_frames": len(frames), "preset": "none", "preprocessing": {},
                    "class_names": [str(c) for c in range(60)], "source": "bench", "created": "",
                    "skeltools_version": ""})
    for s, e in shard_ranges(len(frames), builder.shard_frames):
        write_frames(builder.array_path(), s, frames[s:e])
    index = pa.Table.from_pydict({"sample_id": [str(i) for i in range(samples)],
                                  "label": (np.arange(samples) % 60).tolist(), "length": lengths.tolist(),
                                  "n_persons": [1 + i % 2 for i in range(samples)],
                                  "xsub_train": [True] * samples}, schema=schema.index_schema({}, ["xsub_train"]))
    builder.publish(offsets, index, {})


class ZeroBatches:
    """The DataLoader ceiling: what make_loader needs from a dataset, returning zero batches of a fixed shape."""

    def __init__(self, like: SkeletonDataset):
        self.shape, self.train, self.seed, self.epoch, self.size = like.clip_shape, True, 0, 0, len(like)

    def __len__(self) -> int:
        return self.size

    def batch(self, items, epoch=None):
        return np.zeros((len(items), *self.shape), np.float32), np.zeros(len(items), np.int64)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch


def dataset_rate(ds: SkeletonDataset, epochs: int) -> float:
    ds[0]  # numba cache load
    t0 = time.perf_counter()
    for epoch in range(epochs):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            ds[i]
    return epochs * len(ds) / (time.perf_counter() - t0)


def loader_rate(ds: SkeletonDataset, workers: int, epochs: int, batch: int) -> tuple[float, float]:
    """(clips/s over epochs 1..epochs, seconds to the first batch of epoch 0: worker start-up)."""
    loader = make_loader(ds, batch, num_workers=workers)
    ds.set_epoch(0)
    t0 = time.perf_counter()
    batches = iter(loader)
    next(batches)
    startup = time.perf_counter() - t0
    for _ in batches:  # the rest of the warm-up epoch
        pass
    clips = 0
    t0 = time.perf_counter()
    for epoch in range(1, epochs + 1):
        ds.set_epoch(epoch)
        clips += sum(len(labels) for _, labels in loader)
    return clips / (time.perf_counter() - t0), startup


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.zarr"
        write_store(path, args.samples, 0)
        for name, (modality, augment, sampling) in RECIPES.items():
            print(f"\n{name}: {args.samples} samples, T = {sampling.get('clip_len', 100)} clips, batch {args.batch}")
            print(f"  {'data':7s} {'how':24s} {'clips/s':>9s} {'per worker':>11s} {'vs ceiling':>11s} "
                  f"{'start-up s':>11s}")
            ds = SkeletonDataset(path, "xsub_train", modality, augment=augment, in_memory=False, **sampling)
            ceiling = {w: loader_rate(ZeroBatches(ds), w, args.epochs, args.batch) for w in sorted({0, args.workers})}
            for workers, (rate, startup) in ceiling.items():
                print(f"  {'zeros':7s} {f'DataLoader, {workers} worker(s)':24s} {rate:9.0f} "
                      f"{rate / max(1, workers):11.0f} {'':11s} {startup:11.2f}")
            rates = {}
            for in_memory in (True, False):
                t0 = time.perf_counter()
                ds = SkeletonDataset(path, "xsub_train", modality, augment=augment, in_memory=in_memory, **sampling)
                where = "RAM" if in_memory else "lazy"
                load = f"{time.perf_counter() - t0:11.2f}"
                rates[where, "alone"] = dataset_rate(ds, args.epochs)
                print(f"  {where:7s} {'dataset alone':24s} {rates[where, 'alone']:9.0f} {'':23s} {load}")
                for workers in sorted({0, args.workers}):
                    rate, startup = loader_rate(ds, workers, args.epochs, args.batch)
                    rates[where, workers] = rate
                    ratio = f"{rate / ceiling[workers][0]:11.0%}" if workers else f"{'-':>11s}"
                    print(f"  {where:7s} {f'DataLoader, {workers} worker(s)':24s} {rate:9.0f} "
                          f"{rate / max(1, workers):11.0f} {ratio} {startup:11.2f}")
            print("  lazy / RAM: " + ", ".join(f"{'dataset alone' if key == 'alone' else f'{key} worker(s)'} "
                                               f"{rates['lazy', key] / rates['RAM', key]:.2f}"
                                               for key in ("alone", *sorted({0, args.workers}))))


if __name__ == "__main__":
    main()

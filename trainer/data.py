"""Training data: ``SkeletonDataset`` over one split of a store -> ``(clip, label)``; numpy in, numpy out.

Per sample, in pyskl's order:

1. **features** at the sample's full frame rate: stored arrays when the store has them, else derived on the fly
   from the joints with the serial kernels (``skeltools.kernels``; ``j+b`` concatenates along C);
2. **frame indices**: ``uniform`` (pyskl ``UniformSampleDecode``, see ``uniform_indices``) or ``full`` (the
   whole sequence brought to ``clip_len`` frames by loop or zero padding, see ``skeltools.kernels.pad_indices``);
   or ``crop_resize`` (CTR-GCN: a random crop, the centre 95 % at test, linearly resized to ``clip_len`` frames,
   see ``crop_resize_frames``; motion is then the difference of the resized frames, as in CTR-GCN's feeder);
3. **gather** into ``(M, T, V, C)``, padding persons with zeros or dropping the extra ones;
4. **augmentation**, training only: ``RandomRot`` (R = Rz·Ry·Rx, angles ~ U(-θ, θ)), random per-axis scale
   ``1 + U(-s, s)`` and random translation of the joints. Rotation and scale are linear, so applying them to the
   clip equals pyskl's order (joints first, features after); absent person-frames stay zero.

Randomness comes from ``numpy.random.default_rng((seed, epoch, sample))`` in training and
``(seed, sample)`` at test time (``sample`` = the row in the store), so worker count, split filtering and resume
never change a draw, and test clips are the same in every run (pyskl reseeds with 255 per sample instead).

Data lives in RAM (POSIX shared memory, which DataLoader workers attach to instead of copying; the default when
it fits) or is read lazily per sample (``SkeletonStore.read``: whole chunks straight from the shard files,
``skeltools.shardread``, with a small cache of decoded chunks per process). ``make_loader`` builds whole batches
in persistent forkserver workers (a process that ran a numba parallel kernel must not fork workers that run one;
the clip kernels here are serial anyway), each batch request carrying the epoch.
"""
from __future__ import annotations

import os
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skeltools import kernels
from skeltools.modalities import FeaturePlan, pair_rule, read_samples

_TRAIN, _TEST, _SHUFFLE = 1, 2, 3  # seed-sequence tags: the three random streams never share a draw


@dataclass(frozen=True)
class Augment:
    """Training augmentation for 3D stores (all off by default)."""

    rot_theta: float = 0.0  # RandomRot: Euler angles ~ U(-θ, θ) per axis (pyskl: 0.2 DG-STGCN X-Sub, 0.3 X-View)
    scale: float = 0.0      # per-axis factor 1 + U(-s, s), after the rotation (pyskl RandomScale)
    shift: float = 0.0      # per-axis translation ~ U(-s, s) of the joint feature (bones and motion ignore it)

    @property
    def active(self) -> bool:
        return bool(self.rot_theta or self.scale or self.shift)


def uniform_indices(length: int, clip_len: int, rng: np.random.Generator) -> np.ndarray:
    """``clip_len`` frame indices of a ``length``-frame sample (pyskl ``UniformSampleDecode``, p_interval 1).

    - ``length < clip_len``: a random start, then consecutive frames wrapping around (``(start + k) % length``);
    - ``clip_len <= length < 2 * clip_len``: consecutive frames with ``length - clip_len`` single-frame skips
      placed in distinct random gaps among the ``clip_len + 1``;
    - otherwise: [0, length) cut into ``clip_len`` segments at ``k * length // clip_len``, one random frame each.
    """
    if length < clip_len:
        return (rng.integers(length) + np.arange(clip_len)) % length
    if length < 2 * clip_len:
        skips = np.zeros(clip_len + 1, np.int64)
        skips[rng.permutation(clip_len + 1)[:length - clip_len]] = 1  # a uniformly random set of gaps
        return np.arange(clip_len) + np.cumsum(skips)[:-1]
    bounds = np.arange(clip_len + 1) * length // clip_len
    return bounds[:-1] + (rng.random(clip_len) * np.diff(bounds)).astype(np.int64)  # uniform in each segment


def crop_resize_frames(length: int, clip_len: int, rng: np.random.Generator | None = None,
                       interval: tuple[float, float] = (0.5, 1.0), test_ratio: float = 0.95):
    """CTR-GCN's ``valid_crop_resize`` as frame pairs: ``(lower, upper, weight)``, output frame ``t`` being
    ``(1 - weight[t])·x[lower[t]] + weight[t]·x[upper[t]]`` of a ``length``-frame sample.

    The crop: with ``rng`` (training) a ratio ``p ~ U(interval)``, ``min(max(floor(length·p), clip_len), length)``
    frames at a random offset (the reference's floor is its 64-frame window); without (test) the centre, dropping
    ``int((1 - test_ratio)·length / 2)`` frames at each end. The crop is resized to ``clip_len`` frames as torch's
    bilinear ``interpolate`` (``align_corners=False``) does, in float32: ``s = max((t + 0.5)·L / clip_len - 0.5, 0)``.
    """
    if length < 1:
        raise ValueError(f"crop-resize needs at least one frame (got {length})")
    if rng is None:
        start = int((1 - test_ratio) * length / 2)
        size = length - 2 * start
    else:
        p = rng.random() * (interval[1] - interval[0]) + interval[0]
        size = min(max(int(np.floor(length * p)), clip_len), length)
        start = int(rng.integers(0, length - size + 1))
    steps = np.arange(clip_len, dtype=np.float32)
    src = np.maximum(np.float32(size) / np.float32(clip_len) * (steps + np.float32(0.5)) - np.float32(0.5), 0)
    lower = np.minimum(np.floor(src).astype(np.int64), size - 1)
    weight = np.clip(src - lower, 0, 1).astype(np.float32)
    return start + lower, start + np.minimum(lower + 1, size - 1), weight


def rotation_matrix(angles) -> np.ndarray:
    """pyskl ``RandomRot``'s matrix for Euler angles (x, y, z), applied as ``x' = R x``::

        R = Rz @ Ry @ Rx,  Rx = [[1, 0, 0], [0, cx, sx], [0, -sx, cx]],  Ry = [[cy, 0, -sy], [0, 1, 0], [sy, 0, cy]],
                           Rz = [[cz, sz, 0], [-sz, cz, 0], [0, 0, 1]]   (c = cos, s = sin of each angle)
    """
    (cx, cy, cz), (sx, sy, sz) = np.cos(angles), np.sin(angles)
    return np.array([[cz * cy, cz * sy * sx + sz * cx, -cz * sy * cx + sz * sx],
                     [-sz * cy, -sz * sy * sx + cz * cx, sz * sy * cx + cz * sx],
                     [sy, -cy * sx, cy * cx]])


# ----------------------------------------------------------------------------------------------------------------
# Shared-memory frames


def _release(shm, owner: bool) -> None:
    try:
        shm.close()
    except BufferError:  # a view of the array is still alive somewhere; the mapping goes with the process
        pass
    if owner:
        shm.unlink()


class SharedArray:
    """A numpy array in POSIX shared memory that pickles by name: workers attach to it instead of copying it.

    The creating process unlinks the memory when the object is collected.
    """

    def __init__(self, shape: tuple[int, ...], dtype=np.float32):
        from multiprocessing import shared_memory

        nbytes = max(1, int(np.prod(shape)) * np.dtype(dtype).itemsize)
        self._attach(shared_memory.SharedMemory(create=True, size=nbytes), shape, dtype, owner=True)

    def _attach(self, shm, shape, dtype, owner: bool) -> None:
        self._shm = shm
        self.array = np.ndarray(shape, dtype, buffer=shm.buf)
        weakref.finalize(self, _release, shm, owner)

    def __getstate__(self):
        return {"name": self._shm.name, "shape": self.array.shape, "dtype": self.array.dtype.str}

    def __setstate__(self, state):
        from multiprocessing import shared_memory

        self._attach(shared_memory.SharedMemory(name=state["name"]), state["shape"], state["dtype"], owner=False)


def _available_ram() -> int:
    try:
        with open("/proc/meminfo") as fh:
            return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("MemAvailable:"))
    except (OSError, StopIteration):
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def _shared_room() -> int:
    """Free bytes for POSIX shared memory (/dev/shm, often small in containers: ``--shm-size``)."""
    if not os.path.isdir("/dev/shm"):
        return _available_ram()
    st = os.statvfs("/dev/shm")
    return st.f_bavail * st.f_frsize


# ----------------------------------------------------------------------------------------------------------------
# Dataset


class SkeletonDataset:
    """Clips of one split of a store: ``dataset[i]`` -> ``(clip, label)``.

    ``clip``: float32 ``(M, clip_len, V, C)``, or ``(num_clips, M, clip_len, V, C)`` when ``num_clips > 1``;
    C = channels per feature x number of features in ``modality`` (``j``, ``b``, ``jm``, ``bm``, ``j+b``, ...).
    ``sampling``: ``uniform`` (random in training, seeded per sample at test) or ``full`` (whole sequence,
    ``pad`` = ``loop`` or ``zero`` up to ``clip_len``; longer sequences are evenly subsampled). ``persons``: M
    (default: the store's). ``in_memory``: None = in RAM when it fits in half the available memory and in
    /dev/shm, True/False to force.
    ``rows``: explicit store positions (a held-out part, ...), used instead of ``split``; kept in ascending order.
    """

    def __init__(self, store, split: str | None = "xsub_train", modality: str = "j", clip_len: int = 100,
                 num_clips: int = 1, train: bool = True, seed: int = 0, *, sampling: str = "uniform",
                 pad: str = "loop", augment: Augment = Augment(), persons: int | None = None,
                 in_memory: bool | None = None, rows=None):
        from skeltools.store import SkeletonStore

        store = store if isinstance(store, SkeletonStore) else SkeletonStore.open(store)
        if sampling not in ("uniform", "full", "crop_resize"):
            raise ValueError(f"sampling {sampling!r}: expected 'uniform', 'full' or 'crop_resize'")
        if sampling != "uniform" and num_clips != 1:
            raise ValueError(f"sampling={sampling!r} gives one clip per sample; use num_clips=1")
        if clip_len < 1 or num_clips < 1:
            raise ValueError(f"clip_len and num_clips must be positive (got {clip_len}, {num_clips})")
        if augment.active and store.attrs["coords"] != "xyz":
            raise ValueError(f"{store.path}: augmentation needs 3D coordinates, "
                             f"the store has {store.attrs['coords']!r}")
        kernels.pad_indices(1, 1, pad)  # validates pad
        self.path, self.split, self.modality = Path(store.path), split, modality
        self.clip_len, self.num_clips, self.train, self.seed, self.epoch = clip_len, num_clips, train, seed, 0
        self.sampling, self.pad, self.augment = sampling, pad, augment
        self.persons = persons or store.attrs["persons"]
        # crop_resize differences after resizing, so motion comes from joints or bones, never stored motion
        stored = [m for m in store.modalities if sampling != "crop_resize" or m in ("joint", "bone")]
        self.plan = FeaturePlan.make(modality, stored)
        self.rule = pair_rule(store.attrs)
        self.rows = store.rows(split) if rows is None else np.unique(np.asarray(rows, np.int64))
        if len(self.rows) and not 0 <= self.rows[0] <= self.rows[-1] < len(store):
            raise IndexError(f"rows out of range for a store of {len(store)} samples")
        self.labels = store.index.column("label").to_numpy()[self.rows].astype(np.int64)
        self.sample_ids = np.asarray(store.index.column("sample_id").to_pylist(), dtype=object)[self.rows]
        self.lengths = store.lengths[self.rows]
        self._joints = store.array("joint").shape[2]
        nbytes = int(self.lengths.sum()) * int(np.prod(store.array("joint").shape[1:])) * 4 * len(self.plan.sources)
        if in_memory is None:
            in_memory = nbytes <= min(_available_ram() // 2, _shared_room())
        elif in_memory and nbytes > _shared_room():
            raise MemoryError(f"{store.path}: {nbytes / 1e9:.1f} GB of frames do not fit in /dev/shm "
                              f"({_shared_room() / 1e9:.1f} GB free); enlarge it or use in_memory=False")
        self._store = store
        self._shared = self._load(store) if in_memory else None

    def _load(self, store) -> dict[str, SharedArray]:
        """Every source array of this split's samples, back to back in shared memory (chunks read directly by
        ``skeltools.shardread`` where the layout allows, else through zarr)."""
        self._offsets = np.concatenate([[0], np.cumsum(self.lengths)]).astype(np.int64)
        shared = {}
        for name in self.plan.sources:
            src = store.reader(name) or store.array(name)
            shared[name] = SharedArray((int(self._offsets[-1]), *src.shape[1:]))
            for sample, start in zip(read_samples(src, store.offsets, self.rows), self._offsets):
                shared[name].array[start:start + len(sample)] = sample
        return shared

    @property
    def in_memory(self) -> bool:
        return self._shared is not None

    @property
    def channels(self) -> int:
        return self.rule.channels * len(self.plan.features)

    @property
    def clip_shape(self) -> tuple[int, ...]:
        shape = (self.persons, self.clip_len, self._joints, self.channels)
        return shape if self.num_clips == 1 else (self.num_clips, *shape)

    def set_epoch(self, epoch: int) -> None:
        """Training draws derive from (seed, epoch, sample): call before each epoch (and on resume)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.rows)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_store"] = None  # reopened by path where needed (lazy reads in a worker)
        return state

    def _arrays(self, i: int) -> dict[str, np.ndarray]:
        """Sample ``i``'s source arrays, each (T, M, V, C)."""
        if self._shared is not None:
            lo, hi = self._offsets[i], self._offsets[i + 1]
            return {name: shared.array[lo:hi] for name, shared in self._shared.items()}
        if self._store is None:
            from skeltools.store import SkeletonStore

            self._store = SkeletonStore.open(self.path)
        return {name: self._store.read(int(self.rows[i]), name) for name in self.plan.sources}

    def rng(self, i: int, epoch: int | None = None) -> np.random.Generator:
        """The random stream of sample ``i`` in ``epoch`` (default: the current one; test mode: every epoch's)."""
        row = int(self.rows[i])
        epoch = self.epoch if epoch is None else epoch
        return np.random.default_rng([self.seed, _TRAIN, epoch, row] if self.train else [self.seed, _TEST, row])

    def indices(self, i: int, rng: np.random.Generator) -> np.ndarray:
        """Frame indices of one clip of sample ``i`` (-1: a zero-padding frame)."""
        length = int(self.lengths[i])
        if self.sampling == "full":
            return kernels.pad_indices(length, self.clip_len, self.pad)
        return uniform_indices(length, self.clip_len, rng)

    def __getitem__(self, i: int):
        out = np.empty(self.clip_shape, np.float32)
        self._fill(i, out.reshape(self.num_clips, *out.shape[-4:]))
        return out, int(self.labels[i])

    def batch(self, items, epoch: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Samples ``items`` at once, drawn for ``epoch`` (default: the current one): clips
        ``(B, *clip_shape)`` float32 and labels ``(B,)`` int64."""
        out = np.empty((len(items), self.num_clips, *self.clip_shape[-4:]), np.float32)
        for i, clips in zip(items, out):
            self._fill(i, clips, epoch)
        return out.reshape(len(items), *self.clip_shape), self.labels[np.asarray(items, np.int64)]

    def _fill(self, i: int, out: np.ndarray, epoch: int | None = None) -> None:
        """Write sample ``i``'s clips into ``out`` (num_clips, M, T, V, C)."""
        arrays = self._arrays(i)
        rng = self.rng(i, epoch)
        for clip in out:
            if self.sampling == "crop_resize":
                self._crop_resize(arrays, int(self.lengths[i]), rng, clip)
            else:
                self.plan.clip(arrays, self.indices(i, rng), self.rule, clip)
        if self.train and self.augment.active:
            self._augment(out, rng)

    def _crop_resize(self, arrays: dict[str, np.ndarray], length: int, rng: np.random.Generator,
                     clip: np.ndarray) -> None:
        """Fill ``clip`` (M, T, V, C) by ``crop_resize_frames``; motion features are the differences of the
        resized frames (last frame 0)."""
        lower, upper, weight = crop_resize_frames(length, self.clip_len, rng if self.train else None)
        above = np.empty_like(clip)
        c = self.rule.channels
        for g, (src, op) in enumerate(self.plan.steps):
            part, part_above = clip[..., g * c:(g + 1) * c], above[..., g * c:(g + 1) * c]
            kernels.gather_clip(arrays[src], lower, op & ~kernels.MOTION, self.rule, part)
            kernels.gather_clip(arrays[src], upper, op & ~kernels.MOTION, self.rule, part_above)
            part += weight[:, None, None] * (part_above - part)  # over T
            if op & kernels.MOTION:
                part[:, :-1] = part[:, 1:] - part[:, :-1]
                part[:, -1] = 0

    def _augment(self, clips: np.ndarray, rng: np.random.Generator) -> None:
        a = self.augment
        matrix = rotation_matrix(rng.uniform(-a.rot_theta, a.rot_theta, 3)) if a.rot_theta else np.eye(3)
        if a.scale:
            matrix = np.diag(1 + rng.uniform(-a.scale, a.scale, 3)) @ matrix
        shift = np.zeros((len(self.plan.features), 3))
        if a.shift:
            shift[[f == "joint" for f in self.plan.features]] = rng.uniform(-a.shift, a.shift, 3)
        for clip in clips:
            kernels.affine_clip(clip, matrix, shift)


# ----------------------------------------------------------------------------------------------------------------
# DataLoader


class EpochShuffle:
    """Sampler: a permutation drawn from ``(dataset.seed, dataset.epoch)``, so order is reproducible on resume."""

    def __init__(self, dataset: SkeletonDataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __iter__(self):
        rng = np.random.default_rng([self.dataset.seed, _SHUFFLE, self.dataset.epoch])
        return iter(rng.permutation(len(self.dataset)).tolist())


class _EpochBatches:
    """Batch sampler yielding ``(epoch, indices)``: the epoch travels with each request, so persistent workers
    draw for the epoch the main process is in."""

    def __init__(self, batches, dataset: SkeletonDataset):
        self.batches, self.dataset = batches, dataset

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        epoch = self.dataset.epoch
        return ((epoch, items) for items in self.batches)


class _Batches:
    """Map-style view of a dataset whose items are whole batches: ``(epoch, indices)`` -> ``dataset.batch``."""

    def __init__(self, dataset: SkeletonDataset):
        self.dataset = dataset

    def __getitem__(self, request):
        epoch, items = request
        return self.dataset.batch(items, epoch)


def make_loader(dataset: SkeletonDataset, batch_size: int, *, shuffle: bool | None = None, num_workers: int = 0,
                drop_last: bool | None = None, sampler=None, pin_memory: bool = False):
    """A torch DataLoader of ``(clips, labels)`` tensor batches, with forkserver workers (safe after numba
    parallel kernels ran in this process).

    Batches are built whole by ``dataset.batch`` (no per-sample collation). ``shuffle`` (default:
    ``dataset.train``) uses ``EpochShuffle``; pass ``sampler`` instead for DDP. ``drop_last`` defaults to
    ``dataset.train``. Workers persist across epochs (their start-up, about a second, is paid once); each batch
    request carries ``dataset.epoch``, so ``set_epoch`` reaches them.
    """
    from torch.utils.data import BatchSampler, DataLoader, SequentialSampler

    shuffle = dataset.train if shuffle is None else shuffle
    if sampler is None:
        sampler = EpochShuffle(dataset) if shuffle else SequentialSampler(range(len(dataset)))
    batches = BatchSampler(sampler, batch_size, dataset.train if drop_last is None else drop_last)
    return DataLoader(_Batches(dataset), batch_size=None, sampler=_EpochBatches(batches, dataset),
                      num_workers=num_workers, pin_memory=pin_memory, persistent_workers=num_workers > 0,
                      multiprocessing_context="forkserver" if num_workers > 0 else None)

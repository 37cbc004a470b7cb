"""SkeletonDataset: UniformSample, seeding, shapes and labels, features, padding, augmentation, loaders."""
from __future__ import annotations

import gc
from multiprocessing import shared_memory

import numpy as np
import pytest
from test_modalities import random_store

from skeltools.modalities import write_modalities
from skeltools.store import SkeletonStore
from trainer.data import Augment, EpochShuffle, SkeletonDataset, make_loader, rotation_matrix, uniform_indices

CLIP = 10
LENGTHS = [3, 10, 15, 19, 20, 37, 9, 25, 1, 12, 40, 16]  # around CLIP and 2 * CLIP


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "s.zarr"
    random_store(path, LENGTHS)
    return path


@pytest.fixture(scope="module")
def frames(store_path):
    store = SkeletonStore.open(store_path)
    return [store.read(i) for i in range(len(store))]


def draws(length, clip_len=CLIP, n=200):
    rng = np.random.default_rng(0)
    return [uniform_indices(length, clip_len, rng) for _ in range(n)]


@pytest.mark.parametrize("length", [1, 2, 7, 9])
def test_uniform_short_sequences_loop_from_a_random_start(length):
    starts = set()
    for inds in draws(length):
        assert len(inds) == CLIP and inds.min() >= 0 and inds.max() < length
        np.testing.assert_array_equal(inds, (inds[0] + np.arange(CLIP)) % length)  # consecutive, wrapping
        assert set(inds) == set(range(length))  # every frame is used
        starts.add(int(inds[0]))
    assert starts == set(range(length))


@pytest.mark.parametrize("length", [10, 11, 15, 19])
def test_uniform_medium_sequences_skip_single_frames(length):
    skipped_frames = set()
    for inds in draws(length):
        steps = np.diff(inds)
        assert len(inds) == CLIP and inds[0] in (0, 1) and inds[-1] in (length - 2, length - 1)
        assert set(steps) <= {1, 2}  # sorted, never two frames skipped in a row
        assert length - CLIP == int((steps == 2).sum()) + int(inds[0]) + int(inds[-1] == length - 2)
        skipped_frames |= set(range(length)) - set(inds)
    assert skipped_frames == (set(range(length)) if length > CLIP else set())  # any frame may be skipped


@pytest.mark.parametrize("length", [20, 21, 37, 100])
def test_uniform_long_sequences_take_one_random_frame_per_segment(length):
    bounds = np.arange(CLIP + 1) * length // CLIP
    seen = np.zeros(length, bool)
    for inds in draws(length):
        assert (np.diff(inds) > 0).all()
        assert ((inds >= bounds[:-1]) & (inds < bounds[1:])).all()
        seen[inds] = True
    assert seen.all()  # the draws cover every frame of every segment


def test_uniform_default_clip_length_of_dg_stgcn():
    for length in (50, 150, 300):
        inds = uniform_indices(length, 100, np.random.default_rng(1))
        assert inds.shape == (100,) and 0 <= inds.min() and inds.max() < length


def test_test_clips_are_seeded_per_sample(store_path):
    a = SkeletonDataset(store_path, "xsub_test", num_clips=5, clip_len=CLIP, train=False, seed=7)
    b = SkeletonDataset(store_path, "xsub_test", num_clips=5, clip_len=CLIP, train=False, seed=7)
    b.set_epoch(3)  # epochs do not matter at test time
    for i in range(len(a)):
        clips, label = a[i]
        assert clips.shape == (5, 2, CLIP, 25, 3) and label == a.labels[i]
        np.testing.assert_array_equal(clips, b[i][0])
        np.testing.assert_array_equal(clips, a[i][0])
    long = int(np.flatnonzero(a.lengths >= 2 * CLIP)[0])
    clips = a[long][0]
    assert all(not np.array_equal(clips[p], clips[q]) for p in range(5) for q in range(p))  # clips differ
    other = SkeletonDataset(store_path, "xsub_test", num_clips=5, clip_len=CLIP, train=False, seed=8)
    assert not np.array_equal(other[long][0], clips)


def test_training_draws_follow_seed_and_epoch(store_path):
    ds = SkeletonDataset(store_path, "xsub_train", clip_len=CLIP, seed=1)
    first = [ds[i][0] for i in range(len(ds))]
    assert all(np.array_equal(x, ds[i][0]) for i, x in enumerate(first))  # same epoch: same draw
    ds.set_epoch(1)
    assert any(not np.array_equal(x, ds[i][0]) for i, x in enumerate(first))
    ds.set_epoch(0)
    assert all(np.array_equal(x, ds[i][0]) for i, x in enumerate(first))  # resume reproduces the epoch


def test_shapes_labels_and_split_filtering(store_path, frames):
    store = SkeletonStore.open(store_path)
    labels = store.index.column("label").to_numpy()
    for split in ("xsub_train", "xsub_test", None):
        ds = SkeletonDataset(store_path, split, "j+b", clip_len=max(LENGTHS), sampling="full", pad="zero")
        rows = store.rows(split)
        assert len(ds) == len(rows) and list(ds.sample_ids) == [f"s{r:03d}" for r in rows]
        np.testing.assert_array_equal(ds.labels, labels[rows])
        for i, row in enumerate(rows):
            clip, label = ds[i]
            assert clip.shape == ds.clip_shape == (2, max(LENGTHS), 25, 6) and clip.dtype == np.float32
            assert label == labels[row]
            t = len(frames[row])  # the clip is this very sample, zero-padded
            np.testing.assert_array_equal(clip[:, :t, :, :3], frames[row].transpose(1, 0, 2, 3))
            assert not clip[:, t:].any()


def test_explicit_rows_instead_of_a_split(store_path, frames):
    ds = SkeletonDataset(store_path, rows=[7, 2, 5], clip_len=5, sampling="full", pad="zero")
    assert ds.rows.tolist() == [2, 5, 7] and list(ds.sample_ids) == ["s002", "s005", "s007"]
    np.testing.assert_array_equal(ds[1][0], frames[5][np.arange(5) * 37 // 5].transpose(1, 0, 2, 3))
    with pytest.raises(IndexError, match="out of range"):
        SkeletonDataset(store_path, rows=[0, len(LENGTHS)])


def test_full_mode_loop_padding_and_subsampling(store_path, frames):
    ds = SkeletonDataset(store_path, None, clip_len=20, sampling="full", train=False)
    for i in (0, 5):  # 3 frames looped up to 20; 37 frames evenly subsampled to 20
        t = len(frames[i])
        inds = np.arange(20) % t if t < 20 else np.arange(20) * t // 20
        np.testing.assert_array_equal(ds[i][0], frames[i][inds].transpose(1, 0, 2, 3))
    with pytest.raises(ValueError, match="one clip per sample"):
        SkeletonDataset(store_path, None, sampling="full", num_clips=2)


def test_persons_are_padded_or_truncated(store_path, frames):
    three = SkeletonDataset(store_path, None, clip_len=5, sampling="full", persons=3)
    one = SkeletonDataset(store_path, None, clip_len=5, sampling="full", persons=1)
    clip3, clip1 = three[3][0], one[3][0]
    assert clip3.shape == (3, 5, 25, 3) and not clip3[2].any()
    np.testing.assert_array_equal(clip1[0], clip3[0])


def test_stored_and_on_the_fly_modalities_agree_bit_for_bit(tmp_path):
    path = tmp_path / "s.zarr"
    random_store(path, LENGTHS)
    kwargs = dict(split="xsub_train", modality="j+b+jm+bm", clip_len=CLIP, seed=3)
    derived = SkeletonDataset(path, **kwargs)
    write_modalities(path, workers=1, progress=False)
    stored = SkeletonDataset(path, **kwargs)
    assert derived.plan.sources == ("joint",) and stored.plan.sources == ("joint", "bone", "joint_motion",
                                                                         "bone_motion")
    for i in range(len(derived)):
        np.testing.assert_array_equal(derived[i][0], stored[i][0])
    assert derived[0][0].shape == (2, CLIP, 25, 12)


def test_lazy_reads_equal_in_memory(store_path):
    kwargs = dict(split="xsub_train", modality="j+jm", clip_len=CLIP, augment=Augment(0.3, 0.1, 0.1))
    ram, lazy = SkeletonDataset(store_path, **kwargs), SkeletonDataset(store_path, in_memory=False, **kwargs)
    assert ram.in_memory and not lazy.in_memory  # a small store goes to RAM by default
    for i in range(len(ram)):
        np.testing.assert_array_equal(ram[i][0], lazy[i][0])


def test_augmentation_rotates_scales_and_shifts_present_frames(store_path):
    def clips(augment, modality="j"):
        ds = SkeletonDataset(store_path, "xsub_test", modality, clip_len=CLIP, augment=augment, seed=2)
        return ds[1][0]  # sample 3: its second person leaves for two frames

    plain = clips(Augment())
    present = plain.reshape(2, CLIP, -1).any(axis=-1)
    assert not present.all()
    rotated = clips(Augment(rot_theta=0.3))
    x, y = plain[present].reshape(-1, 3), rotated[present].reshape(-1, 3)
    r = np.linalg.lstsq(x, y, rcond=None)[0].T  # y = R x
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-5)
    assert np.linalg.det(r) == pytest.approx(1, abs=1e-5) and not np.allclose(r, np.eye(3), atol=1e-3)
    assert not rotated[~present].any()  # zeros stay zero

    scaled = clips(Augment(scale=0.2))
    ratio = scaled[present] / plain[present]
    assert ((ratio > 0.8) & (ratio < 1.2)).all() and np.allclose(ratio, ratio[..., :1, :1, :])  # one factor per axis

    shifted = clips(Augment(shift=0.5), "j+b")
    offset = shifted[present][..., :3] - plain[present]
    assert (np.abs(offset) < 0.5).all() and np.allclose(offset, offset[:1, :1], atol=1e-5)
    bones = SkeletonDataset(store_path, "xsub_test", "b", clip_len=CLIP, seed=2)[1][0]
    np.testing.assert_array_equal(shifted[..., 3:], bones)  # bones do not move with the body
    assert not shifted[~present].any()

    test_mode = SkeletonDataset(store_path, "xsub_test", clip_len=CLIP, train=False, augment=Augment(0.3))
    untouched = SkeletonDataset(store_path, "xsub_test", clip_len=CLIP, train=False)
    np.testing.assert_array_equal(test_mode[1][0], untouched[1][0])  # no augmentation at test time


def test_rotation_matrix_is_rz_ry_rx():
    c, s = np.cos(0.3), np.sin(0.3)
    np.testing.assert_allclose(rotation_matrix([0.3, 0, 0]), [[1, 0, 0], [0, c, s], [0, -s, c]])
    np.testing.assert_allclose(rotation_matrix([0, 0.3, 0]), [[c, 0, -s], [0, 1, 0], [s, 0, c]])
    np.testing.assert_allclose(rotation_matrix([0, 0, 0.3]), [[c, s, 0], [-s, c, 0], [0, 0, 1]])
    rz, ry, rx = rotation_matrix([0, 0, 0.3]), rotation_matrix([0, 0.2, 0]), rotation_matrix([0.1, 0, 0])
    np.testing.assert_allclose(rotation_matrix([0.1, 0.2, 0.3]), rz @ ry @ rx)


def test_bad_arguments(tmp_path, store_path):
    random_store(tmp_path / "2d.zarr", [5, 6], layout="coco18", coords="xyc")
    with pytest.raises(ValueError, match="3D"):
        SkeletonDataset(tmp_path / "2d.zarr", None, augment=Augment(rot_theta=0.1))
    assert SkeletonDataset(tmp_path / "2d.zarr", None, "j+bm", clip_len=4)[0][0].shape == (2, 4, 18, 6)
    with pytest.raises(ValueError, match="sampling"):
        SkeletonDataset(store_path, None, sampling="random")
    with pytest.raises(ValueError, match="pad mode"):
        SkeletonDataset(store_path, None, pad="edge")
    with pytest.raises(ValueError, match="no split"):
        SkeletonDataset(store_path, "xview_train")


def test_shared_memory_is_released(store_path):
    ds = SkeletonDataset(store_path, "xsub_train", in_memory=True)
    name = ds._shared["joint"]._shm.name
    shared_memory.SharedMemory(name=name).close()  # exists
    del ds
    gc.collect()
    with pytest.raises(FileNotFoundError):
        shared_memory.SharedMemory(name=name)


def _batches(loader):
    return [(clip.numpy().copy(), label.numpy().copy()) for clip, label in loader]


@pytest.mark.parametrize("in_memory", [True, False])
def test_worker_processes_give_the_same_batches(store_path, in_memory):
    ds = SkeletonDataset(store_path, None, "j+b", clip_len=CLIP, augment=Augment(0.2), in_memory=in_memory)
    loader = make_loader(ds, 4, num_workers=2)  # persistent forkserver workers
    first = _batches(loader)
    ds.set_epoch(2)
    serial = _batches(make_loader(ds, 4, num_workers=0))
    parallel = _batches(loader)  # the same workers, now drawing for epoch 2
    assert not all(np.array_equal(a, b) for (a, _), (b, _) in zip(first, parallel))
    assert len(serial) == len(LENGTHS) // 4  # drop_last in training
    for (a, la), (b, lb) in zip(serial, parallel, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(la, lb)
    ds.set_epoch(3)
    assert not all(np.array_equal(a, b) for (a, _), (b, _) in zip(serial, _batches(make_loader(ds, 4))))
    ds.set_epoch(2)
    order = list(EpochShuffle(ds))
    assert sorted(order) == list(range(len(ds)))
    for k, (clips, labels) in enumerate(serial):  # batch k holds samples order[4k:4k+4], as ds[i] gives them
        items = [ds[i] for i in order[4 * k:4 * k + 4]]
        np.testing.assert_array_equal(clips, np.stack([clip for clip, _ in items]))
        assert labels.tolist() == [label for _, label in items]


def test_batches_of_multi_clip_samples_in_order(store_path):
    ds = SkeletonDataset(store_path, "xsub_test", clip_len=CLIP, num_clips=3, train=False)
    batches = _batches(make_loader(ds, 4))
    assert [len(labels) for _, labels in batches] == [4, 2]  # in order, last batch kept at test time
    clips = np.concatenate([c for c, _ in batches])
    assert clips.shape == (len(ds), 3, 2, CLIP, 25, 3)
    for i in range(len(ds)):
        np.testing.assert_array_equal(clips[i], ds[i][0])

"""Pictures of stores: a sample as a GIF or a PNG strip of frames, and dataset statistics.

Needs matplotlib (``pip install 'skeltools[viz]'``); ``require_matplotlib`` says so when it is missing. 3D data
(camera coordinates: x right, y up, z away from the camera) is drawn from a viewpoint turned by ``azimuth``
degrees about the vertical axis and ``elevation`` degrees about the horizontal one; 2D data is drawn in image
coordinates (y down). One colour per person; bones from the store's layout.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

PERSON_COLOURS = ("tab:blue", "tab:red", "tab:green", "tab:orange")


def require_matplotlib():
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError("plotting needs matplotlib: pip install 'skeltools[viz]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def project(sample: np.ndarray, coords: str, azimuth: float = 0.0, elevation: float = 0.0) -> np.ndarray:
    """(T, M, V, C) -> (T, M, V, 2) drawing coordinates (right, up); absent joints (all zero) become NaN."""
    absent = ~np.any(sample != 0, axis=-1)
    if coords == "xyz":
        a, e = np.radians(azimuth), np.radians(elevation)
        x, y, z = sample[..., 0], sample[..., 1], sample[..., 2]
        right = x * np.cos(a) - z * np.sin(a)
        depth = x * np.sin(a) + z * np.cos(a)
        up = y * np.cos(e) - depth * np.sin(e)
        xy = np.stack([right, up], axis=-1)
    else:  # image coordinates: y grows downwards
        xy = np.stack([sample[..., 0], -sample[..., 1]], axis=-1)
    xy = xy.astype(np.float64)
    xy[absent] = np.nan
    return xy


def _limits(xy: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    finite = xy[np.isfinite(xy).all(-1)]
    if not len(finite):
        return (-1, 1), (-1, 1)
    lo, hi = finite.min(0), finite.max(0)
    pad = 0.05 * max(hi - lo) + 1e-6
    return (lo[0] - pad, hi[0] + pad), (lo[1] - pad, hi[1] + pad)


def _draw(ax, xy_frame: np.ndarray, pairs, limits) -> None:
    """One frame: (M, V, 2) with NaN for absent joints."""
    for m, person in enumerate(xy_frame):
        colour = PERSON_COLOURS[m % len(PERSON_COLOURS)]
        for child, parent in pairs:
            ax.plot(person[[child, parent], 0], person[[child, parent], 1], color=colour, lw=2)
        ax.scatter(person[:, 0], person[:, 1], s=8, color=colour)
    ax.set_xlim(*limits[0])
    ax.set_ylim(*limits[1])
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def render_sample(store_path, sample: int | str, out, *, azimuth: float = 0.0, elevation: float = 0.0,
                  panels: int = 6, fps: int = 15) -> Path:
    """Draw sample ``sample`` (position or sample id) of a store to ``out``: ``.gif`` animates every frame,
    ``.png`` shows ``panels`` evenly spaced frames side by side."""
    from skeltools.store import SkeletonStore

    plt = require_matplotlib()
    store = SkeletonStore.open(store_path)
    if isinstance(sample, str) and not sample.isdigit():
        ids = store.index.column("sample_id").to_pylist()
        if sample not in ids:
            raise ValueError(f"{store_path}: no sample {sample!r}")
        sample = ids.index(sample)
    i = int(sample)
    data = store[i]
    name = store.index.column("sample_id")[i].as_py()
    label = int(store.index.column("label")[i].as_py())
    title = f"{name}  {store.class_name(label)}"
    pairs = [(c, p) for c, p in store.layout.bone_pairs if c != p]
    xy = project(data, store.attrs["coords"], azimuth, elevation)
    limits = _limits(xy)
    out = Path(out)
    if out.suffix.lower() == ".gif":
        from matplotlib.animation import FuncAnimation, PillowWriter

        fig, ax = plt.subplots(figsize=(4, 4), dpi=80)

        def frame(t):
            ax.clear()
            _draw(ax, xy[t], pairs, limits)
            ax.set_title(f"{title}\nframe {t + 1}/{len(xy)}", fontsize=8)

        FuncAnimation(fig, frame, frames=len(xy)).save(out, writer=PillowWriter(fps=fps))
    else:
        frames = np.linspace(0, len(xy) - 1, min(panels, len(xy))).round().astype(int)
        fig, axes = plt.subplots(1, len(frames), figsize=(2.2 * len(frames), 2.8), dpi=80, squeeze=False)
        for ax, t in zip(axes[0], frames):
            _draw(ax, xy[t], pairs, limits)
            ax.set_title(f"frame {t + 1}/{len(xy)}", fontsize=8)
        fig.suptitle(title, fontsize=9)
        fig.tight_layout()
        fig.savefig(out)
    plt.close(fig)
    return out


def plot_stats(store_path, out) -> Path:
    """Class histogram per split part, sequence-length histogram and persons per sample, in one PNG."""
    from skeltools.store import SkeletonStore

    plt = require_matplotlib()
    store = SkeletonStore.open(store_path)
    labels = store.index.column("label").to_numpy()
    fig, (ax_cls, ax_len, ax_per) = plt.subplots(1, 3, figsize=(15, 4), dpi=80)
    classes = np.unique(labels[labels >= 0])
    parts = store.split_columns or [None]
    for part in parts[:4]:
        rows = store.rows(part)
        counts = np.bincount(labels[rows][labels[rows] >= 0], minlength=len(store.class_names))
        counts = np.pad(counts, (0, max(0, int(classes.max(initial=-1)) + 1 - len(counts))))
        ax_cls.plot(np.arange(len(classes)), counts[classes], drawstyle="steps-mid", label=part or "all")
    ax_cls.set(title=f"samples per class ({len(classes)} present)", xlabel="label", ylabel="samples")
    if 0 < len(classes) <= 30:
        ax_cls.set_xticks(np.arange(len(classes)), [str(c) for c in classes], fontsize=7)
    ax_cls.legend(fontsize=7)
    for part in parts[:4]:
        ax_len.hist(store.lengths[store.rows(part)], bins=30, histtype="step", label=part or "all")
    ax_len.set(title="sequence length", xlabel="frames", ylabel="samples")
    ax_len.legend(fontsize=7)
    persons = store.index.column("n_persons").to_numpy()
    values = np.arange(persons.max() + 1)
    ax_per.bar(values, np.bincount(persons, minlength=len(values)))
    ax_per.set(title="persons per sample", xlabel="persons", ylabel="samples", xticks=values)
    fig.suptitle(f"{Path(store_path).name}: {len(store)} samples, {store.attrs['dataset']}")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return Path(out)

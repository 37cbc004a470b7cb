"""Inference: a trained run (or a reference checkpoint) on new data, whole samples or sliding windows.

A ``Predictor`` is a model plus what feeding it needs: the recipe (clip sampling), the modality and the sample
attrs of the store it was trained on (layout, coords, persons M, preset and its options, class names; a run keeps
them in ``run.json['store_attrs']``). Samples go through the same test-time dataset as ``skeltools test``
(features from the joints with the modality kernels, the recipe's clip sampling seeded by the sample's position,
clip fusion), so predicting a store gives the probabilities ``skeltools test`` writes.

Axis orders: one sample ``(T, M, V, C)``; window bounds ``(W, 2)`` frame ranges ``[start, end)``; probabilities
``(N, K)`` for N samples (or windows) and K classes.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from schemas.store import SAMPLE_ATTRS
from trainer.recipes import Recipe


@dataclass
class Predictor:
    """A model in eval mode and everything needed to feed it."""

    model: nn.Module
    arch: str
    modality: str
    recipe: Recipe
    attrs: dict[str, Any]  # the training store's SAMPLE_ATTRS
    device: torch.device

    @property
    def class_names(self) -> list[str]:
        return list(self.attrs["class_names"])


def load_predictor(run_dir, *, checkpoint: str = "best", device: str = "auto") -> Predictor:
    """The run's ``best.pt`` or ``last.pt`` weights, recipe and training-data attrs."""
    from trainer.testing import load_run
    from trainer.train import pick_device

    dev = pick_device(device)
    run, recipe, model = load_run(run_dir, dev, f"{checkpoint}.pt")
    attrs = run.get("store_attrs")
    if attrs is None:  # a run from before run.json kept them: its store must still be there
        attrs = store_attrs(run["store"], why=f"{run_dir}/run.json has no store_attrs")
    return Predictor(model, run["arch"], run["modality"], recipe, attrs, dev)


def store_attrs(path, why: str = "") -> dict[str, Any]:
    """The SAMPLE_ATTRS of the store at ``path``."""
    from skeltools.store import SkeletonStore, StoreError

    try:
        attrs = SkeletonStore.open(path).attrs
    except StoreError as exc:
        raise ValueError(f"{why + '; ' if why else ''}{exc}") from None
    return {k: attrs[k] for k in SAMPLE_ATTRS if k in attrs}


def reference_predictor(arch: str, weights, attrs: Mapping[str, Any], *, modality: str = "j",
                        device: str = "auto") -> Predictor:
    """An imported reference checkpoint (pyskl, MS-G3D or DualHead-Net state dict) of ``arch``, for data
    described by ``attrs`` (its classes, layout and preprocessing); the arch's reference recipe tests it."""
    from schemas.layouts import layout_from_attrs
    from skeltools.modalities import pair_rule, parse_features
    from trainer.models import build_model, load_reference_weights
    from trainer.recipes import resolve_recipe
    from trainer.runtime import flush_denormals, load_checkpoint
    from trainer.train import pick_device

    flush_denormals()
    dev = pick_device(device)
    channels = pair_rule(attrs).channels * len(parse_features(modality))
    model = build_model(arch, num_classes=len(attrs["class_names"]), layout=layout_from_attrs(attrs),
                        in_channels=channels, num_persons=attrs["persons"])
    weights = Path(weights)
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: no such checkpoint file")
    state = load_checkpoint(weights)
    try:
        load_reference_weights(model, state)
    except ValueError as exc:
        raise ValueError(f"{weights}: {exc}") from None
    recipe = resolve_recipe(arch, dataset=attrs["dataset"])
    return Predictor(model.to(dev).eval(), arch, modality, recipe, dict(attrs), dev)


# ----------------------------------------------------------------------------------------------------------------
# Predicting


@dataclass
class Prediction:
    """Class probabilities of whole samples or of windows: row i is frames ``bounds[i]`` of ``sample_ids[i]``."""

    sample_ids: list[str]
    bounds: np.ndarray  # (N, 2) int64 [start, end) frames
    probs: np.ndarray  # (N, K) float32

    def top_k(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(class indices, probabilities), each (N, k), most probable first (ties: lower class index first)."""
        k = min(k, self.probs.shape[1])
        order = np.argsort(-self.probs, axis=1, kind="stable")[:, :k]
        return order, np.take_along_axis(self.probs, order, axis=1)


def window_bounds(length: int, window: int, stride: int) -> np.ndarray:
    """``[start, end)`` of windows of ``window`` frames every ``stride`` frames over a ``length``-frame sequence,
    (W, 2) int64. The last window ends at the last frame, so every frame is covered; a sequence no longer than
    ``window`` is one window."""
    if window < 1 or stride < 1:
        raise ValueError(f"--window and --stride must be positive (got {window}, {stride})")
    if stride > window:
        raise ValueError(f"--stride {stride} is longer than --window {window}: frames between windows would be "
                         f"skipped")
    if length <= window:
        return np.array([[0, length]], np.int64)
    starts = np.arange(0, length - window + 1, stride)
    if starts[-1] + window < length:
        starts = np.append(starts, length - window)
    return np.stack([starts, starts + window], axis=1).astype(np.int64)


def _check_store(store, predictor: Predictor) -> None:
    from skeltools.ingest import check_compatible

    want = predictor.attrs
    check_compatible(str(store.path), want, layout=store.attrs["layout"], num_joints=store.array("joint").shape[2])
    if store.attrs["coords"] != want["coords"]:
        raise ValueError(f"{store.path}: coords {store.attrs['coords']!r}, but the model was trained on "
                         f"{want['coords']!r}")


def predict_store(predictor: Predictor, store, rows=None, *, clips: int | None = None, window: int | None = None,
                  stride: int | None = None, batch_size: int = 16, progress: bool = True, log=print) -> Prediction:
    """Probabilities of samples ``rows`` (default: all) of ``store`` (a ``SkeletonStore``, on disk or in memory),
    whole or, with ``window``, per window of ``window`` frames every ``stride`` (default: window // 2)."""
    from skeltools.store import SkeletonStore
    from trainer.testing import clips_per_sample, eval_dataset, predict

    _check_store(store, predictor)
    rows = store.rows() if rows is None else np.asarray(rows, np.int64)
    ids = store.index.column("sample_id").to_pylist()
    if window is None:
        sample_ids = [ids[r] for r in rows]
        bounds = np.stack([np.zeros(len(rows), np.int64), store.lengths[rows]], axis=1)
    else:
        parts, sample_ids, bounds = [], [], []
        for r in rows:
            sample = store.read(int(r))
            for start, end in window_bounds(len(sample), window, stride or max(1, window // 2)):
                parts.append(sample[start:end])
                sample_ids.append(ids[r])
                bounds.append((start, end))
        store = SkeletonStore.from_samples(parts, [f"{s}[{a}:{b}]" for s, (a, b) in zip(sample_ids, bounds)],
                                           store.attrs, name=f"windows of {store.path}")
        rows, bounds = store.rows(), np.asarray(bounds, np.int64)
    clips = clips_per_sample(predictor.recipe, clips, log)
    dataset = eval_dataset(store, rows, predictor.modality, predictor.recipe, clips, persons=predictor.attrs["persons"])
    _, probs = predict(predictor.model, dataset, device=predictor.device, batch_size=batch_size,
                       clip_fusion=predictor.recipe.clip_fusion, progress=progress)
    return Prediction(sample_ids, bounds, probs)


# ----------------------------------------------------------------------------------------------------------------
# Output

CSV_COLUMNS = ("sample", "start", "end", "rank", "class_index", "class", "prob")


def write_csv(prediction: Prediction, class_names: list[str], path, k: int) -> Path:
    """One row per (sample or window, rank): sample, start, end (frames), rank (1 = most probable), class_index,
    class, prob."""
    order, probs = prediction.top_k(k)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        for sid, (start, end), classes, ps in zip(prediction.sample_ids, prediction.bounds, order, probs):
            for rank, (c, p) in enumerate(zip(classes, ps), 1):
                writer.writerow([sid, int(start), int(end), rank, int(c), class_names[c], f"{p:.6f}"])
    return Path(path)


def format_lines(prediction: Prediction, class_names: list[str], k: int) -> list[str]:
    """One line per sample or window: ``id [start-end]: 1. class 0.912  2. class 0.050 ...``."""
    order, probs = prediction.top_k(k)
    return [f"{sid} [{start}-{end}): " + "  ".join(f"{rank}. {class_names[c]} {p:.3f}"
                                                   for rank, (c, p) in enumerate(zip(classes, ps), 1))
            for sid, (start, end), classes, ps in zip(prediction.sample_ids, prediction.bounds, order, probs)]


def plot_timeline(prediction: Prediction, class_names: list[str], path, max_samples: int = 12) -> bool:
    """Per sample (the first ``max_samples``), the top class of each window as a coloured band and its
    probability as a step line over the frames; False (nothing written) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    samples = list(dict.fromkeys(prediction.sample_ids))[:max_samples]
    top = prediction.probs.argmax(1)
    shown = sorted(set(top[np.isin(prediction.sample_ids, samples)].tolist()))
    colors = {c: plt.cm.tab20(i % 20) for i, c in enumerate(shown)}
    fig, axes = plt.subplots(len(samples), 1, figsize=(10, 1.6 * len(samples) + 0.8), squeeze=False)
    ids = np.asarray(prediction.sample_ids, dtype=object)
    for ax, sid in zip(axes[:, 0], samples):
        rows = np.flatnonzero(ids == sid)
        rows = rows[np.argsort(prediction.bounds[rows, 0], kind="stable")]
        for r in rows:  # later windows paint over the overlap: each frame shows its latest window's class
            start, end = prediction.bounds[r]
            ax.axvspan(start, end, ymax=0.25, color=colors[top[r]], linewidth=0)
        mids = prediction.bounds[rows].mean(1)
        ax.plot(mids, prediction.probs[rows, top[rows]], "k.-", linewidth=1)
        ax.set(xlim=(0, prediction.bounds[rows, 1].max()), ylim=(0, 1.02), ylabel="top prob", title=sid)
        ax.title.set_fontsize(9)
    axes[-1, 0].set_xlabel("frame (band: top class of each window)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[c]) for c in shown]
    fig.legend(handles, [class_names[c] for c in shown], loc="lower center", ncol=min(4, len(shown)), fontsize=8,
               frameon=False)
    fig.tight_layout(rect=(0, 0.08 if shown else 0, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


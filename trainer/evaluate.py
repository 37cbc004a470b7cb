"""Evaluation on numpy arrays: top-k and mean per-class accuracy, confusion matrices, multi-clip aggregation and
self-describing score files (``scores.parquet``).

Shapes: ``scores`` / ``logits`` / ``probs`` are ``(N, K)`` (N samples, K classes), ``labels`` ``(N,)`` integers in
``[0, K)``, multi-clip logits ``(N, C, K)``. Accuracies are fractions in [0, 1]. Predictions are ``argmax`` over
classes, ties going to the lowest class index, and top-k ranks break ties the same way. numpy and pyarrow only;
matplotlib is imported by ``plot_confusion`` alone.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = [
    "CLIP_MODES", "Metrics", "Scores", "aggregate_clips", "compute_metrics", "confusion_matrix",
    "mean_class_accuracy", "per_class_accuracy", "plot_confusion", "present_classes", "read_scores", "softmax", "topk_accuracy",
    "worst_confusions", "write_scores",
]

CLIP_MODES = ("prob", "logit")
SCORES_FORMAT = "skeltools.scores"
SCORES_VERSION = 1


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax along ``axis``, computed in float64 and returned as float32."""
    z = np.asarray(logits, dtype=np.float64)
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return (e / e.sum(axis=axis, keepdims=True)).astype(np.float32)


def _check(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``(N, K)`` finite scores and ``(N,)`` labels in ``[0, K)``; return them as arrays."""
    scores, labels = np.asarray(scores), np.asarray(labels)
    if scores.ndim != 2 or labels.shape != scores.shape[:1] or len(labels) == 0:
        raise ValueError(f"expected scores (N, K) and labels (N,) with N > 0, got {scores.shape} and {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got {labels.dtype}")
    bad = (labels < 0) | (labels >= scores.shape[1])
    if bad.any():
        raise ValueError(f"{int(bad.sum())} of {len(labels)} labels are outside [0, {scores.shape[1]}) "
                         f"(e.g. {int(labels[bad][0])}); unlabelled samples (-1) cannot be evaluated")
    if not np.isfinite(scores).all():
        raise ValueError(f"{int((~np.isfinite(scores)).any(axis=1).sum())} of {len(labels)} samples have "
                         "NaN or infinite scores")
    return scores, labels.astype(np.int64)


def topk_accuracy(scores: np.ndarray, labels: np.ndarray, k: int = 1) -> float:
    """Fraction of samples whose label is among the ``k`` highest scores ``(N, K)``. The label's rank counts the
    classes scoring higher, plus the equal ones with a lower index, so k = 1 agrees with ``argmax``; k ≥ K gives 1."""
    scores, labels = _check(scores, labels)
    own = scores[np.arange(len(labels)), labels][:, None]
    before = np.arange(scores.shape[1])[None, :] < labels[:, None]
    rank = (scores > own).sum(axis=1) + ((scores == own) & before).sum(axis=1)
    return float((rank < k).mean())


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """``(K, K)`` int64 counts: row = true class, column = predicted class."""
    labels, predictions = np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)
    if labels.shape != predictions.shape or labels.ndim != 1:
        raise ValueError(f"labels and predictions must be (N,), got {labels.shape} and {predictions.shape}")
    for name, a in (("labels", labels), ("predictions", predictions)):
        if len(a) and (a.min() < 0 or a.max() >= num_classes):
            raise ValueError(f"{name} must be in [0, {num_classes}), got values in [{a.min()}, {a.max()}]")
    flat = np.bincount(labels * num_classes + predictions, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def per_class_accuracy(matrix: np.ndarray) -> np.ndarray:
    """``(K,)`` recall of each class from a confusion matrix; NaN for classes with no sample."""
    matrix = np.asarray(matrix)
    support = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(matrix) / support, np.nan)


def mean_class_accuracy(matrix: np.ndarray) -> float:
    """Mean per-class accuracy ("Top-1-norm", Smarthome's "average accuracy") from a ``(K, K)`` confusion matrix:
    the mean over classes of ``diag / row sum``.

    Classes absent from the labels (empty rows) are excluded from the mean; BABEL's reference averages them in as
    NaN and would report NaN. Wrong predictions *into* an absent class still lower the other classes' accuracy.
    """
    acc = per_class_accuracy(matrix)
    if np.isnan(acc).all():
        raise ValueError("the confusion matrix is empty")
    return float(np.nanmean(acc))


@dataclass(frozen=True)
class Metrics:
    """Top-1, top-5 and mean per-class accuracy (fractions) of ``num_samples`` samples, and their ``(K, K)``
    confusion matrix (rows true, columns predicted)."""

    top1: float
    top5: float
    mean_class: float
    num_samples: int
    confusion: np.ndarray = field(repr=False, compare=False)

    def summary(self) -> dict[str, float]:
        """The scalar metrics, for logs and CSV rows."""
        return {"top1": self.top1, "top5": self.top5, "mean_class": self.mean_class}


def compute_metrics(scores: np.ndarray, labels: np.ndarray) -> Metrics:
    """All metrics of ``(N, K)`` scores (logits or probabilities) against ``(N,)`` labels."""
    scores, labels = _check(scores, labels)
    matrix = confusion_matrix(labels, scores.argmax(axis=1), scores.shape[1])
    return Metrics(top1=topk_accuracy(scores, labels, 1), top5=topk_accuracy(scores, labels, 5),
                   mean_class=mean_class_accuracy(matrix), num_samples=len(labels), confusion=matrix)


def worst_confusions(matrix: np.ndarray, class_names: list[str] | None = None, n: int = 10) -> list[str]:
    """The ``n`` largest off-diagonal cells of a confusion matrix, most samples first (ties: higher rate of the
    true class, then class order), one line each: ``"true -> predicted: count of support (rate)"``."""
    matrix = np.asarray(matrix)
    names = class_names if class_names is not None else [str(i) for i in range(len(matrix))]
    if len(names) != len(matrix):
        raise ValueError(f"{len(names)} class names for a {len(matrix)}-class confusion matrix")
    support = matrix.sum(axis=1)
    true, pred = np.nonzero(matrix * (1 - np.eye(len(matrix), dtype=matrix.dtype)))
    counts = matrix[true, pred]
    rates = counts / support[true]
    order = np.lexsort((pred, true, -rates, -counts))[:n]
    return [f"{names[t]} -> {names[p]}: {c} of {s} ({r:.1%})"
            for t, p, c, s, r in zip(true[order], pred[order], counts[order], support[true[order]], rates[order])]


def aggregate_clips(clip_logits: np.ndarray, mode: str = "prob") -> tuple[np.ndarray, np.ndarray]:
    """Combine per-clip logits ``(N, C, K)`` into per-sample ``(logits, probs)``, both ``(N, K)`` float32.

    ``"prob"`` (pyskl's 10-clip test): probs = mean over clips of the per-clip softmax; logits = mean over clips of
    the logits (kept for logit fusion). ``"logit"``: logits = mean of the logits, probs = their softmax.
    """
    clip_logits = np.asarray(clip_logits, dtype=np.float32)
    if clip_logits.ndim != 3:
        raise ValueError(f"expected clip logits (N, C, K), got shape {clip_logits.shape}")
    logits = clip_logits.mean(axis=1, dtype=np.float64).astype(np.float32)
    if mode == "prob":
        return logits, softmax(clip_logits).mean(axis=1, dtype=np.float64).astype(np.float32)
    if mode == "logit":
        return logits, softmax(logits)
    raise ValueError(f"unknown clip mode {mode!r}; choose from {', '.join(CLIP_MODES)}")


@dataclass(frozen=True, eq=False)
class Scores:
    """One stream's results: ``sample_ids`` ``(N,)`` str (unique), ``labels`` ``(N,)`` int64 (−1 = unlabelled),
    ``logits`` and ``probs`` ``(N, K)`` float32, and ``metadata`` (architecture, modality, clips, recipe,
    class_names, ...: anything JSON can hold)."""

    sample_ids: np.ndarray
    labels: np.ndarray
    logits: np.ndarray
    probs: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        for name, dtype in (("sample_ids", object), ("labels", np.int64), ("logits", np.float32),
                            ("probs", np.float32)):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=dtype))
        n = len(self.sample_ids)
        if self.labels.shape != (n,) or self.logits.ndim != 2 or self.logits.shape[0] != n:
            raise ValueError(f"{n} sample ids need labels (N,) and logits (N, K), got {self.labels.shape} "
                             f"and {self.logits.shape}")
        if self.probs.shape != self.logits.shape:
            raise ValueError(f"probs {self.probs.shape} and logits {self.logits.shape} differ in shape")
        ids, counts = np.unique(self.sample_ids, return_counts=True)
        if len(ids) != n:
            raise ValueError(f"{n - len(ids)} duplicate sample ids (e.g. {ids[counts > 1][0]!r})")
        names = self.metadata.get("class_names")
        if names is not None and len(names) != self.num_classes:
            raise ValueError(f"{len(names)} class names for {self.num_classes} classes")

    def __len__(self) -> int:
        return len(self.sample_ids)

    @property
    def num_classes(self) -> int:
        return self.logits.shape[1]

    def write(self, path: str | os.PathLike) -> Path:
        """Write ``scores.parquet`` atomically (a temporary sibling renamed into place); return the path."""
        n, k = self.logits.shape
        offsets = pa.array(np.arange(0, n * k + 1, k, dtype=np.int32))

        def rows(a: np.ndarray) -> pa.ListArray:
            return pa.ListArray.from_arrays(offsets, pa.array(a.reshape(-1), type=pa.float32()))

        meta = {"format": SCORES_FORMAT, "format_version": SCORES_VERSION, **self.metadata}
        table = pa.table({
            "sample_id": pa.array([str(s) for s in self.sample_ids], type=pa.string()),
            "label": pa.array(self.labels, type=pa.int16()),
            "logits": rows(self.logits), "probs": rows(self.probs),
        }).replace_schema_metadata({key: _to_json(key, value) for key, value in meta.items()})
        path = Path(path)
        tmp = path.with_name(f".{path.name}.partial")
        pq.write_table(table, tmp)
        os.replace(tmp, path)
        return path


def _to_json(key: str, value: Any) -> str:
    def plain(o):  # numpy scalars and arrays, as metadata often holds them
        if isinstance(o, (np.generic, np.ndarray)):
            return o.tolist()
        raise TypeError(f"{type(o).__name__} is not JSON serializable")

    try:
        return json.dumps(value, default=plain)
    except TypeError as e:
        raise ValueError(f"score-file metadata {key!r}: {e}") from None


def write_scores(path: str | os.PathLike, sample_ids, labels, logits, *, probs=None,
                 metadata: dict[str, Any]) -> Path:
    """Write a score file: ``sample_ids`` ``(N,)``, ``labels`` ``(N,)``, ``logits`` ``(N, K)``, ``probs``
    ``(N, K)`` (default: softmax of the logits) and JSON-encodable ``metadata``, one schema-metadata key per
    entry. Refuses NaN/inf scores and duplicate ids."""
    logits = np.asarray(logits, dtype=np.float32)
    probs = softmax(logits) if probs is None else np.asarray(probs, dtype=np.float32)
    bad = ~(np.isfinite(logits).all(axis=-1) & np.isfinite(probs).all(axis=-1))
    if bad.any():
        raise ValueError(f"{int(bad.sum())} of {len(bad)} samples have NaN or infinite scores; not writing {path}")
    return Scores(sample_ids, labels, logits, probs, dict(metadata)).write(path)


def read_scores(path: str | os.PathLike) -> Scores:
    """Read a score file written by ``write_scores`` (metadata decoded, the format keys removed)."""
    table = pq.ParquetFile(path).read()
    meta = {k.decode(): json.loads(v) for k, v in (table.schema.metadata or {}).items()}
    if meta.pop("format", None) != SCORES_FORMAT:
        raise ValueError(f"{path}: not a skeltools score file (no format={SCORES_FORMAT!r} in its metadata)")
    version = meta.pop("format_version")
    if version != SCORES_VERSION:
        raise ValueError(f"{path}: score-file version {version}; this skeltools reads version {SCORES_VERSION}")
    n = table.num_rows

    def matrix(name: str) -> np.ndarray:
        values = table.column(name).combine_chunks().flatten().to_numpy()
        if n and values.size % n:
            raise ValueError(f"{path}: rows of {name!r} differ in length")
        return values.reshape(n, -1 if n else 0)

    return Scores(table.column("sample_id").to_pylist(), table.column("label").to_numpy(), matrix("logits"),
                  matrix("probs"), meta)


def present_classes(matrix: np.ndarray) -> np.ndarray:
    """Indices of the classes that occur in a ``(K, K)`` confusion matrix, as truth or as prediction."""
    return np.flatnonzero((matrix.sum(axis=0) > 0) | (matrix.sum(axis=1) > 0))


def plot_confusion(matrix: np.ndarray, class_names: list[str] | None, path: str | os.PathLike) -> bool:
    """Save the row-normalised confusion matrix as an image; False (nothing written) when matplotlib is not
    installed (the ``viz`` extra). Uses matplotlib's object API with the Agg canvas: no pyplot, no global
    backend change."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return False
    matrix = np.asarray(matrix, dtype=np.float64)
    shown = present_classes(matrix)
    matrix = matrix[np.ix_(shown, shown)]
    class_names = None if class_names is None else [str(class_names[c]) for c in shown]
    k = len(matrix)
    support = matrix.sum(axis=1, keepdims=True)
    rates = np.divide(matrix, support, out=np.zeros_like(matrix), where=support > 0)
    side = float(np.clip(3 + 0.18 * k, 5, 20))
    fig = Figure(figsize=(side + 1, side))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"confusion matrix, rows normalised ({int(matrix.sum())} samples, {k} classes present)")
    if class_names is not None and k <= 60:
        ax.set_xticks(range(k), class_names, rotation=90, fontsize=6)
        ax.set_yticks(range(k), class_names, fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    return True

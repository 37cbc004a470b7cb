"""Multi-stream ensembling of score files, joined by sample id (never by row position).

Fusion is a weighted mean over streams of either the probabilities (pyskl: 10-clip-averaged softmax, the
default) or the logits (MS-G3D / DualHead ``joint + α·bone``, CTR-GCN): ``fused = Σ_s w_s · x_s / Σ_s w_s`` with
``x_s`` ``(N, K)``. Dividing by ``Σ w`` changes no ranking and keeps fused probabilities a distribution. numpy
only (and tqdm for the search's bar).
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .evaluate import Metrics, Scores, compute_metrics, softmax, topk_accuracy

__all__ = ["FUSE_ON", "PRESETS", "EnsembleResult", "WeightSearch", "align", "ensemble", "fuse", "resolve_weights",
           "search_too_small", "search_weights", "stream_name"]

FUSE_ON = ("probs", "logits")
#: Named weightings; ``"equal"`` fits any number of streams, the others exactly as many as they list, in the
#: streams' order (pyskl's 2:2:1:1 and CTR-GCN's weights are for J, B, JM, BM).
PRESETS: dict[str, tuple[float, ...] | None] = {
    "equal": None, "1:1": (1.0, 1.0), "2:2:1:1": (2.0, 2.0, 1.0, 1.0), "ctrgcn": (0.6, 0.6, 0.4, 0.4),
}
SEARCH_METRICS = ("top1", "mean_class")
#: A weight search is meaningful from this many validation samples, and this many per class present: below 100 one
#: sample moves top-1 by more than 1 point (about what separates good weightings), below 5 a class's accuracy moves
#: in steps of 20 points. Smaller parts fit noise (10 samples chose 1:0 where 1:1 was 2 points better on test).
SEARCH_MIN_SAMPLES, SEARCH_MIN_PER_CLASS = 100, 5


def resolve_weights(weights: str | Sequence[float] | None, n_streams: int) -> np.ndarray:
    """Weights ``(S,)`` float64 from a preset name, a ``"2,2,1,1"`` / ``"3:1"`` string, numbers, or None (equal).
    They must be non-negative, finite, not all zero, and one per stream."""
    if weights is None:
        values = [1.0] * n_streams
    elif isinstance(weights, str) and weights in PRESETS:
        values = PRESETS[weights] or [1.0] * n_streams
    elif isinstance(weights, str):
        try:
            values = [float(w) for w in weights.replace(":", ",").split(",")]
        except ValueError:
            raise ValueError(f"weights {weights!r}: expected a preset ({', '.join(PRESETS)}) or numbers such as "
                             "2,2,1,1") from None
    else:
        values = weights
    w = np.asarray(values, dtype=np.float64)
    if w.shape != (n_streams,):
        raise ValueError(f"weights {weights!r} give {w.size} values for {n_streams} streams")
    if not np.isfinite(w).all() or (w < 0).any() or w.sum() == 0:
        raise ValueError(f"weights {weights!r} must be finite, non-negative and not all zero")
    return w


def stream_name(scores: Scores, i: int) -> str:
    """A stream's label: metadata ``name``, else ``"architecture modality"``, else ``"stream i+1"``."""
    meta = scores.metadata
    if "name" in meta:
        return str(meta["name"])
    parts = [str(meta[key]) for key in ("architecture", "modality") if key in meta]
    return " ".join(parts) or f"stream {i + 1}"


def _describe(scores: Scores, i: int) -> str:
    name = stream_name(scores, i)
    return name if name == f"stream {i + 1}" else f"stream {i + 1} ({name})"


def _examples(ids: np.ndarray, n: int = 3) -> str:
    """`` (a, b, c, ...)`` for the first ``n`` ids; empty for none."""
    if not len(ids):
        return ""
    return f" ({', '.join(str(s) for s in ids[:n])}{', ...' if len(ids) > n else ''})"


def align(streams: Sequence[Scores], on: str = "probs") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Join streams by sample id: ``(sample_ids (N,) sorted, labels (N,), values (S, N, K) float64)`` where
    ``values`` are each stream's ``on`` scores. Raises ``ValueError`` when the streams differ in sample set,
    labels, number of classes or class names."""
    if on not in FUSE_ON:
        raise ValueError(f"cannot fuse on {on!r}; choose from {', '.join(FUSE_ON)}")
    if not streams:
        raise ValueError("no streams to fuse")
    first, first_name = streams[0], _describe(streams[0], 0)
    ref_order = np.argsort(first.sample_ids)
    ids, labels = first.sample_ids[ref_order], first.labels[ref_order]
    values = []
    for i, s in enumerate(streams):
        name = _describe(s, i)
        if s.num_classes != first.num_classes:
            raise ValueError(f"{name} has {s.num_classes} classes, {first_name} {first.num_classes}")
        names = s.metadata.get("class_names")
        if names is not None and first.metadata.get("class_names") not in (None, names):
            raise ValueError(f"{name} and {first_name} have different class names")
        order = np.argsort(s.sample_ids)
        if not np.array_equal(s.sample_ids[order], ids):
            only_first, only_this = np.setdiff1d(ids, s.sample_ids), np.setdiff1d(s.sample_ids, ids)
            raise ValueError(
                f"{name} has {len(s)} samples and {first_name} {len(first)}; fusion needs the same sample ids in "
                f"every stream: {len(only_first)} are only in stream 1{_examples(only_first)} and "
                f"{len(only_this)} only in stream {i + 1}{_examples(only_this)}")
        differ = s.labels[order] != labels
        if differ.any():
            where = np.flatnonzero(differ)
            shown = ", ".join(f"{ids[j]}: {labels[j]} vs {s.labels[order][j]}" for j in where[:3])
            raise ValueError(f"{name} and {first_name} disagree on the label of {len(where)} of "
                             f"{len(ids)} samples ({shown}{', ...' if len(where) > 3 else ''})")
        values.append(getattr(s, on)[order])
    return ids, labels, np.stack(values).astype(np.float64)


def _combine(values: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted mean over streams: values ``(S, N, K)``, weights ``(S,)`` → ``(N, K)``."""
    return np.tensordot(w / w.sum(), values, axes=1)


def fuse(streams: Sequence[Scores], weights: str | Sequence[float] | None = "equal", *,
         on: str = "probs") -> Scores:
    """Fuse streams into one ``Scores`` (rows sorted by sample id). Fusing probabilities gives ``probs`` = the
    weighted mean and ``logits`` = its log (floored at 1e-30, so softmax(logits) = probs); fusing logits gives
    ``logits`` = the weighted mean and ``probs`` = its softmax. The metadata records streams, weights and mode."""
    ids, labels, values = align(streams, on)
    w = resolve_weights(weights, len(streams))
    return _fused_scores(streams, ids, labels, _combine(values, w), w, on)


def _fused_scores(streams: Sequence[Scores], ids: np.ndarray, labels: np.ndarray, fused: np.ndarray,
                  w: np.ndarray, on: str) -> Scores:
    """Wrap fused ``(N, K)`` values of kind ``on`` as a ``Scores`` with both logits and probabilities."""
    if on == "probs":
        logits, probs = np.log(np.maximum(fused, 1e-30)), fused
    else:
        logits, probs = fused, softmax(fused)
    meta = {"ensemble": {"on": on, "weights": (w / w.sum()).tolist(),
                         "streams": [stream_name(s, i) for i, s in enumerate(streams)]}}
    if "class_names" in streams[0].metadata:
        meta["class_names"] = streams[0].metadata["class_names"]
    return Scores(ids, labels, logits, probs, meta)


@dataclass(frozen=True)
class EnsembleResult:
    """Per-stream and fused metrics of one fusion; ``weights`` are normalised to sum 1; ``scores`` is the fused
    stream. ``str(result)`` is a table."""

    names: tuple[str, ...]
    weights: tuple[float, ...]
    on: str
    streams: tuple[Metrics, ...]
    fused: Metrics
    scores: Scores

    def table(self) -> str:
        width = max(len(n) for n in (*self.names, f"fused ({self.on})"))
        head = f"{'stream':<{width}}  weight   top-1   top-5  mean-class"
        rows = [f"{n:<{width}}  {w:6.3f}  {m.top1:6.2%}  {m.top5:6.2%}  {m.mean_class:9.2%}"
                for n, w, m in zip(self.names, self.weights, self.streams)]
        f = self.fused
        rows.append(f"{f'fused ({self.on})':<{width}}  {'':6}  {f.top1:6.2%}  {f.top5:6.2%}  {f.mean_class:9.2%}")
        return "\n".join([head, *rows, f"{f.num_samples} samples"])

    __str__ = table


def ensemble(streams: Sequence[Scores], weights: str | Sequence[float] | None = "equal", *, on: str = "probs",
             names: Sequence[str] | None = None) -> EnsembleResult:
    """Fuse ``streams`` and measure each stream (on the same ``on`` scores) and the fusion."""
    ids, labels, values = align(streams, on)
    w = resolve_weights(weights, len(streams))
    fused = _combine(values, w)
    scores = _fused_scores(streams, ids, labels, fused, w, on)
    names = tuple(names) if names is not None else tuple(scores.metadata["ensemble"]["streams"])
    if len(names) != len(streams):
        raise ValueError(f"{len(names)} names for {len(streams)} streams")
    return EnsembleResult(
        names=names, weights=tuple(scores.metadata["ensemble"]["weights"]), on=on,
        streams=tuple(compute_metrics(v, labels) for v in values), fused=compute_metrics(fused, labels),
        scores=scores)


@dataclass(frozen=True)
class WeightSearch:
    """Best weights ``(S,)`` (summing to 1) found on a validation set, their ``score`` there (the ``metric``, a
    fraction) and how many weightings were tried."""

    weights: tuple[float, ...]
    score: float
    metric: str
    candidates: int
    samples: int  # validation samples it was fitted on


def search_too_small(labels: np.ndarray) -> str | None:
    """Why validation ``labels`` ``(N,)`` are too few for a meaningful weight search, or None: fewer than
    ``SEARCH_MIN_SAMPLES`` samples, or a class present with fewer than ``SEARCH_MIN_PER_CLASS``."""
    counts = np.bincount(np.asarray(labels, np.int64))
    counts = counts[counts > 0]
    if len(labels) < SEARCH_MIN_SAMPLES:
        return (f"only {len(labels)} validation samples (a search needs at least {SEARCH_MIN_SAMPLES}, and "
                f"{SEARCH_MIN_PER_CLASS} per class)")
    if counts.min() < SEARCH_MIN_PER_CLASS:
        return (f"{len(labels)} validation samples, but {int((counts < SEARCH_MIN_PER_CLASS).sum())} of "
                f"{len(counts)} classes have fewer than {SEARCH_MIN_PER_CLASS}")
    return None


def _simplex_grid(n_streams: int, steps: int):
    """Every ``(S,)`` vector of multiples of ``1/steps`` that sums to 1, in a fixed order (stars and bars)."""
    for bars in itertools.combinations(range(steps + n_streams - 1), n_streams - 1):
        edges = (-1, *bars, steps + n_streams - 1)
        yield np.array([b - a - 1 for a, b in zip(edges[:-1], edges[1:])], dtype=np.float64) / steps


def search_weights(streams: Sequence[Scores], *, on: str = "probs", steps: int = 10, metric: str = "top1",
                   max_candidates: int = 200_000, progress: bool = False) -> WeightSearch:
    """Fit non-negative fusion weights on validation streams by exhaustive search of the simplex grid with
    resolution ``1/steps`` (``C(steps + S - 1, S - 1)`` weightings: 286 for 4 streams at steps 10).

    ``metric`` is ``"top1"`` or ``"mean_class"``. Accuracy is a step function, so ties are common; they go to the
    lower negative log-likelihood of the fused probabilities (which gives noise streams zero weight), then to the
    earlier weighting in grid order. Deterministic. Use a validation part, never the test set, and check it with
    ``search_too_small`` first. ``progress``: a bar over the weightings on a terminal.
    """
    from tqdm import tqdm

    if metric not in SEARCH_METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose from {', '.join(SEARCH_METRICS)}")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    n = len(streams)
    candidates = math.comb(steps + n - 1, n - 1)
    if candidates > max_candidates:
        raise ValueError(f"{candidates} weightings for {n} streams at steps={steps}; lower steps")
    _, labels, values = align(streams, on)
    rows = np.arange(len(labels))
    best: tuple[float, float] | None = None
    for w in tqdm(_simplex_grid(n, steps), total=candidates, desc="weight search", unit="weighting", leave=False,
                  disable=None if progress else True):
        fused = _combine(values, w)
        if metric == "top1":
            score = topk_accuracy(fused, labels, 1)
        else:
            score = compute_metrics(fused, labels).mean_class
        probs = fused if on == "probs" else softmax(fused)
        nll = float(-np.log(np.maximum(probs[rows, labels], 1e-30)).mean())
        if best is None or (score, -nll) > best:
            best, best_w = (score, -nll), w
    return WeightSearch(weights=tuple(best_w.tolist()), score=best[0], metric=metric, candidates=candidates,
                        samples=len(labels))

"""Metrics on hand-computed cases, clip aggregation, score files and the confusion plot."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from trainer.evaluate import (
    aggregate_clips, compute_metrics, confusion_matrix, mean_class_accuracy, per_class_accuracy, plot_confusion,
    read_scores, softmax, topk_accuracy, worst_confusions, write_scores,
)

SCORES = np.array([
    [0.1, 0.5, 0.3, 0.1],  # label 1: rank 0
    [0.4, 0.1, 0.3, 0.2],  # label 2: rank 1
    [0.1, 0.2, 0.3, 0.4],  # label 0: rank 3
    [0.2, 0.2, 0.5, 0.1],  # label 1: rank 2 (0.5 above, 0.2 tied with class 0 before it)
])
LABELS = np.array([1, 2, 0, 1])


@pytest.mark.parametrize("k, expected", [(1, 0.25), (2, 0.5), (3, 0.75), (4, 1.0), (5, 1.0)])
def test_topk_by_hand(k, expected):
    assert topk_accuracy(SCORES, LABELS, k) == expected


def test_ties_go_to_the_lowest_class_like_argmax():
    flat = np.zeros((4, 3))  # a constant model must not score 100 %
    assert topk_accuracy(flat, np.array([0, 1, 2, 0]), 1) == 0.5
    assert topk_accuracy(flat, np.array([0, 1, 2, 0]), 2) == 0.75


def test_confusion_and_mean_class_accuracy_by_hand():
    labels, preds = np.array([0, 0, 1, 1, 1, 3]), np.array([0, 1, 1, 1, 2, 3])
    matrix = confusion_matrix(labels, preds, 4)
    expected = np.array([[1, 1, 0, 0], [0, 2, 1, 0], [0, 0, 0, 0], [0, 0, 0, 1]])
    np.testing.assert_array_equal(matrix, expected)
    np.testing.assert_allclose(per_class_accuracy(matrix), [0.5, 2 / 3, np.nan, 1.0])
    # class 2 has no sample: excluded, not counted as 0 or NaN
    assert mean_class_accuracy(matrix) == pytest.approx((0.5 + 2 / 3 + 1.0) / 3)


def test_compute_metrics():
    m = compute_metrics(SCORES, LABELS)
    assert (m.top1, m.top5, m.num_samples) == (0.25, 1.0, 4)
    np.testing.assert_array_equal(m.confusion.sum(axis=1), [1, 2, 1, 0])
    assert m.top1 == np.trace(m.confusion) / 4
    assert m.mean_class == pytest.approx((0 + 0.5 + 0) / 3)  # classes 0, 1, 2 present; only one of 1's is right
    assert m.summary() == {"top1": 0.25, "top5": 1.0, "mean_class": m.mean_class}


@pytest.mark.parametrize("scores, labels, match", [
    (SCORES, np.array([1, 2, -1, 1]), r"1 of 4 labels are outside \[0, 4\) \(e.g. -1\); unlabelled"),
    (SCORES, np.array([1, 2, 4, 1]), "outside"),
    (np.where(np.eye(4, dtype=bool), np.nan, SCORES), LABELS, "4 of 4 samples have NaN"),
    (SCORES[0], LABELS, r"expected scores \(N, K\)"),
    (SCORES, LABELS.astype(float), "integers"),
])
def test_metrics_refuse_bad_input(scores, labels, match):
    with pytest.raises(ValueError, match=match):
        compute_metrics(scores, labels)


def test_worst_confusions():
    matrix = np.array([[5, 3, 0], [1, 8, 1], [4, 0, 0]])
    lines = worst_confusions(matrix, ["sit", "stand", "wave"], n=3)
    assert lines == ["wave -> sit: 4 of 4 (100.0%)", "sit -> stand: 3 of 8 (37.5%)",
                     "stand -> sit: 1 of 10 (10.0%)"]
    assert worst_confusions(matrix)[-1] == "1 -> 2: 1 of 10 (10.0%)"  # default names: class indices
    assert worst_confusions(np.eye(3, dtype=int)) == []
    with pytest.raises(ValueError, match="2 class names for a 3-class"):
        worst_confusions(matrix, ["a", "b"])


def test_aggregate_clips_by_hand():
    clips = np.array([[[0.0, 0.0], [math.log(3), 0.0]]])  # 1 sample, 2 clips, 2 classes
    logits, probs = aggregate_clips(clips, "prob")  # softmax per clip: (1/2, 1/2), (3/4, 1/4)
    np.testing.assert_allclose(probs, [[0.625, 0.375]], rtol=1e-6)
    np.testing.assert_allclose(logits, [[math.log(3) / 2, 0.0]], rtol=1e-6)
    logits, probs = aggregate_clips(clips, "logit")  # softmax of the mean logits (ln √3, 0)
    np.testing.assert_allclose(probs, [[math.sqrt(3) / (1 + math.sqrt(3)), 1 / (1 + math.sqrt(3))]], rtol=1e-6)
    assert probs.dtype == logits.dtype == np.float32
    with pytest.raises(ValueError, match="unknown clip mode 'max'"):
        aggregate_clips(clips, "max")


def test_softmax_is_stable():
    p = softmax(np.array([[1000.0, 0.0], [-1000.0, -1000.0]]))
    np.testing.assert_array_equal(p, [[1.0, 0.0], [0.5, 0.5]])


def make_file(tmp_path, n=5, k=4, **meta):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(n, k)).astype(np.float32)
    logits[0, 0] = np.float32(1e-38)  # denormal-adjacent values survive bit for bit
    ids = [f"S001C001P00{i}R001A00{i}" for i in range(n)]
    metadata = {"architecture": "dualhead", "modality": "j", "clips": {"mode": "prob", "count": 10},
                "recipe": {"lr": 0.05, "milestones": [40, 60, 80]}, "class_names": list("abcd")[:k],
                "best_top1": np.float32(0.5), **meta}
    path = write_scores(tmp_path / "scores.parquet", ids, np.arange(n) % k - (np.arange(n) == 4), logits,
                        metadata=metadata)
    return path, ids, logits


def test_score_file_round_trip(tmp_path):
    path, ids, logits = make_file(tmp_path)
    s = read_scores(path)
    assert list(s.sample_ids) == ids and s.labels.tolist() == [0, 1, 2, 3, -1]  # -1: unlabelled is kept
    np.testing.assert_array_equal(s.logits.view(np.uint32), logits.view(np.uint32))
    np.testing.assert_array_equal(s.probs, softmax(logits))
    assert s.logits.dtype == s.probs.dtype == np.float32 and s.num_classes == 4 and len(s) == 5
    assert s.metadata == {"architecture": "dualhead", "modality": "j", "clips": {"mode": "prob", "count": 10},
                          "recipe": {"lr": 0.05, "milestones": [40, 60, 80]}, "class_names": ["a", "b", "c", "d"],
                          "best_top1": 0.5}
    # self-describing for any parquet reader: list<float32> columns, JSON metadata values
    schema = pq.read_schema(path)
    assert schema.field("logits").type == pa.list_(pa.float32()) == schema.field("probs").type
    assert json.loads(schema.metadata[b"modality"]) == "j"
    assert json.loads(schema.metadata[b"format"]) == "skeltools.scores"
    assert not list(tmp_path.glob(".*partial"))


def test_explicit_probs_are_kept(tmp_path):
    probs = np.array([[0.9, 0.1], [0.2, 0.8]], dtype=np.float32)
    path = write_scores(tmp_path / "s.parquet", ["a", "b"], [0, 1], np.zeros((2, 2)), probs=probs, metadata={})
    np.testing.assert_array_equal(read_scores(path).probs, probs)


@pytest.mark.parametrize("ids, logits, meta, match", [
    (["a", "b", "a"], np.zeros((3, 2)), {}, r"1 duplicate sample ids \(e.g. 'a'\)"),
    (["a", "b", "c"], np.array([[0, np.nan], [0, 0], [0, 0]]), {}, "1 of 3 samples have NaN"),
    (["a", "b", "c"], np.zeros((3, 2)), {"class_names": ["x"]}, "1 class names for 2 classes"),
    (["a", "b", "c"], np.zeros((3, 2)), {"recipe": object()}, "metadata 'recipe': object is not JSON"),
    (["a", "b"], np.zeros((3, 2)), {}, r"2 sample ids need labels"),
])
def test_write_scores_refuses(tmp_path, ids, logits, meta, match):
    with pytest.raises(ValueError, match=match):
        write_scores(tmp_path / "s.parquet", ids, [0, 1, 1], logits, metadata=meta)
    assert not list(tmp_path.iterdir())


def test_read_scores_refuses_other_parquet(tmp_path):
    pq.write_table(pa.table({"sample_id": ["a"]}), tmp_path / "other.parquet")
    with pytest.raises(ValueError, match="not a skeltools score file"):
        read_scores(tmp_path / "other.parquet")


def test_plot_confusion(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    matrix = np.array([[5, 3, 0], [1, 8, 1], [0, 0, 0]])
    assert plot_confusion(matrix, ["sit", "stand", "wave"], tmp_path / "confusion.png")
    assert (tmp_path / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # as if the viz extra were not installed
    assert plot_confusion(matrix, None, tmp_path / "none.png") is False
    assert not (tmp_path / "none.png").exists()


def test_importing_evaluate_leaves_matplotlib_alone():
    code = "import sys, trainer.evaluate, trainer.ensemble; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)

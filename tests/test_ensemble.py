"""Fusion by sample id, refusal of mismatched streams, weight presets and the validation weight search."""
from __future__ import annotations

import numpy as np
import pytest

from trainer.ensemble import PRESETS, align, ensemble, fuse, resolve_weights, search_too_small, search_weights
from trainer.evaluate import Scores, read_scores, softmax


def stream(ids, labels, logits, **meta) -> Scores:
    logits = np.asarray(logits, dtype=np.float32)
    return Scores(np.asarray(ids, dtype=object), np.asarray(labels), logits, softmax(logits), meta)


def shuffled(s: Scores, seed: int) -> Scores:
    order = np.random.default_rng(seed).permutation(len(s))
    return Scores(s.sample_ids[order], s.labels[order], s.logits[order], s.probs[order], s.metadata)


def random_streams(n_streams=3, n=40, k=6, seed=0):
    rng = np.random.default_rng(seed)
    ids, labels = [f"S{i:03d}" for i in range(n)], rng.integers(0, k, n)
    return [stream(ids, labels, rng.normal(size=(n, k)), architecture="dualhead", modality=m)
            for m in ("j", "b", "jm", "bm")[:n_streams]]


@pytest.mark.parametrize("on", ["probs", "logits"])
def test_row_order_does_not_matter(on):
    streams = random_streams()
    a = fuse(streams, [2, 1, 1], on=on)
    b = fuse([shuffled(s, i) for i, s in enumerate(streams)], [2, 1, 1], on=on)
    np.testing.assert_array_equal(a.sample_ids, b.sample_ids)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.probs, b.probs)
    np.testing.assert_array_equal(a.logits, b.logits)
    assert ensemble(streams, on=on).fused == ensemble([shuffled(s, 7) for s in streams], on=on).fused


def test_fusion_joins_by_id_not_position():
    joint = stream(["a", "b"], [0, 1], [[3.0, 0.0], [0.0, 1.0]])
    bone = stream(["b", "a"], [1, 0], [[0.0, 4.0], [2.0, 0.0]])  # rows in the other order
    fused = fuse([joint, bone], [1, 3], on="logits")  # MS-G3D style joint + α·bone, α = 3, then / (1 + α)
    np.testing.assert_allclose(fused.logits, [[(3 + 3 * 2) / 4, 0.0], [0.0, (1 + 3 * 4) / 4]])
    np.testing.assert_allclose(fused.probs, softmax(fused.logits))
    fused = fuse([joint, bone])  # default: mean of the probabilities
    np.testing.assert_allclose(fused.probs, (joint.probs + bone.probs[::-1]) / 2, rtol=1e-6)
    np.testing.assert_allclose(softmax(fused.logits), fused.probs, rtol=1e-5)


def test_mismatched_sample_sets_are_refused():
    j, b = random_streams(2, n=10)
    fewer = Scores(b.sample_ids[2:], b.labels[2:], b.logits[2:], b.probs[2:], b.metadata)
    with pytest.raises(ValueError, match=r"^stream 2 \(dualhead b\) has 8 samples and stream 1 \(dualhead j\) 10; "
                                         r"fusion needs the same sample ids in every stream: 2 are only in stream 1 "
                                         r"\(S000, S001\) and 0 only in stream 2$"):
        fuse([j, fewer])
    renamed = Scores(np.array([f"X{i}" for i in range(10)], dtype=object), b.labels, b.logits, b.probs, {})
    with pytest.raises(ValueError, match=r"^stream 3 has 10 samples .* 10 are only in stream 1 \(S000, S001, "
                                         r"S002, ...\) and 10 only in stream 3 \(X0, X1, X2, ...\)$"):
        fuse([j, b, renamed])


def test_disagreeing_labels_classes_and_names_are_refused():
    j, b = random_streams(2, n=10)
    labels = b.labels.copy()
    labels[3] = (labels[3] + 1) % 6
    relabelled = Scores(b.sample_ids, labels, b.logits, b.probs, {})
    with pytest.raises(ValueError, match=rf"disagree on the label of 1 of 10 samples \(S003: {j.labels[3]} vs "
                                         rf"{labels[3]}\)"):
        fuse([j, relabelled])
    narrow = Scores(b.sample_ids, b.labels, b.logits[:, :5], b.probs[:, :5], {})
    with pytest.raises(ValueError, match=r"^stream 2 has 5 classes, stream 1 \(dualhead j\) 6$"):
        fuse([j, narrow])
    named = [Scores(s.sample_ids, s.labels, s.logits, s.probs, {"class_names": list(names)})
             for s, names in ((j, "abcdef"), (b, "abcdeg"))]
    with pytest.raises(ValueError, match="different class names"):
        fuse(named)
    with pytest.raises(ValueError, match="cannot fuse on 'scores'"):
        align([j, b], on="scores")


def test_presets_resolve_to_the_documented_weights():
    assert resolve_weights("1:1", 2).tolist() == [1, 1]
    assert resolve_weights("2:2:1:1", 4).tolist() == [2, 2, 1, 1]
    assert resolve_weights("ctrgcn", 4).tolist() == [0.6, 0.6, 0.4, 0.4]
    assert resolve_weights("equal", 3).tolist() == resolve_weights(None, 3).tolist() == [1, 1, 1]
    assert resolve_weights("2,2,1,1", 4).tolist() == [2, 2, 1, 1]
    assert resolve_weights("0.6,0.6,0.4", 3).tolist() == [0.6, 0.6, 0.4]
    assert resolve_weights((1, 0.5), 2).tolist() == resolve_weights(np.array([1, 0.5]), 2).tolist() == [1, 0.5]
    assert set(PRESETS) == {"equal", "1:1", "2:2:1:1", "ctrgcn"}


@pytest.mark.parametrize("weights, n, match", [
    ("2:2:1:1", 2, "give 4 values for 2 streams"), ("ctrgcn", 3, "give 4 values for 3 streams"),
    ("pyskl", 2, r"expected a preset \(equal, 1:1, 2:2:1:1, ctrgcn\)"), ((1, -1), 2, "non-negative"),
    ((0, 0), 2, "not all zero"), ((1, float("nan")), 2, "finite"),
])
def test_bad_weights_are_refused(weights, n, match):
    with pytest.raises(ValueError, match=match):
        resolve_weights(weights, n)


def test_result_table_and_fused_score_file(tmp_path):
    streams = random_streams(4, n=30)
    result = ensemble(streams, "2:2:1:1")
    assert result.weights == pytest.approx((1 / 3, 1 / 3, 1 / 6, 1 / 6))
    assert result.names == ("dualhead j", "dualhead b", "dualhead jm", "dualhead bm")
    assert [m.num_samples for m in (*result.streams, result.fused)] == [30] * 5
    table = str(result).splitlines()
    assert table[0].split() == ["stream", "weight", "top-1", "top-5", "mean-class"]
    assert table[1].startswith("dualhead j ") and " 0.333 " in table[1] and f"{result.streams[0].top1:.2%}" in table[1]
    assert table[5].startswith("fused (probs)") and f"{result.fused.top1:.2%}" in table[5]
    assert table[6] == "30 samples"
    assert ensemble(streams, "2:2:1:1", names=["J", "B", "JM", "BM"]).names == ("J", "B", "JM", "BM")
    path = result.scores.write(tmp_path / "fused.parquet")
    meta = read_scores(path).metadata["ensemble"]
    assert meta["on"] == "probs" and meta["streams"][2] == "dualhead jm" and meta["weights"][0] == pytest.approx(1 / 3)


def complementary_streams(n=200, k=5, seed=0):
    """Stream A is sure and right on the first half and slightly wrong on the second; B the reverse; C is
    confident noise. A and B together are always right when neither outweighs the other 5:1."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    wrong = (labels + rng.integers(1, k, n)) % k
    half = np.arange(n) < n // 2

    def probs(sure):
        p = np.full((n, k), 0.1)
        p[np.arange(n), labels] = np.where(sure, 0.6, 0.3)
        p[np.arange(n), wrong] = np.where(sure, 0.1, 0.4)
        return p

    noise = 0.02 + 0.9 * np.eye(k)[rng.integers(0, k, n)]
    ids = np.array([f"V{i:04d}" for i in range(n)], dtype=object)
    return [Scores(ids, labels, np.log(p), p, {"name": name})
            for name, p in (("A", probs(half)), ("B", probs(~half)), ("noise", noise))]


@pytest.mark.parametrize("metric", ["top1", "mean_class"])
def test_search_gives_noise_no_weight(metric):
    streams = complementary_streams()
    found = search_weights(streams, metric=metric)
    assert found.weights == pytest.approx((0.5, 0.5, 0.0)) and found.score == 1.0
    assert found.candidates == 66  # C(12, 2) points of the 0.1 grid for 3 streams
    assert found.samples == 200
    assert search_weights([shuffled(s, i) for i, s in enumerate(streams)], metric=metric) == found
    result = ensemble(streams, found.weights)
    assert result.fused.top1 == 1.0 and max(m.top1 for m in result.streams) < 0.65
    assert ensemble(streams, "equal").fused.top1 < 1.0  # the noise stream hurts at equal weights


def test_search_on_logits():
    streams = complementary_streams()
    found = search_weights(streams, on="logits", steps=4)
    assert found.weights == pytest.approx((0.5, 0.5, 0.0)) and found.score == 1.0 and found.candidates == 15
    assert ensemble(streams, found.weights, on="logits").fused.top1 == 1.0


def test_search_refuses():
    streams = complementary_streams()
    with pytest.raises(ValueError, match="unknown metric 'top5'"):
        search_weights(streams, metric="top5")
    with pytest.raises(ValueError, match="lower steps"):
        search_weights(streams, steps=1000, max_candidates=1000)


def test_search_size_rule():
    assert search_too_small(np.repeat(np.arange(10), 10)) is None  # 100 samples, 10 per class
    assert "only 99 validation samples (a search needs at least 100" in search_too_small(np.arange(99) % 10)
    skewed = np.r_[np.zeros(120, int), np.ones(4, int), np.full(30, 7)]
    assert search_too_small(skewed) == "154 validation samples, but 1 of 3 classes have fewer than 5"


def test_cli_search_falls_back_to_equal_weights_on_a_small_validation_part(tmp_path):
    from click.testing import CliRunner

    from skeltools.cli import main

    runs = []
    for i, (val, test) in enumerate(zip(random_streams(2, n=30, seed=1), random_streams(2, n=50, seed=2))):
        runs.append(tmp_path / f"run{i}")
        runs[-1].mkdir()
        val.write(runs[-1] / "val_scores.parquet")
        test.write(runs[-1] / "scores.parquet")
    result = CliRunner().invoke(main, ["ensemble", "--search", *map(str, runs)])
    assert result.exit_code == 0, result.output
    assert "warning: only 30 validation samples (a search needs at least 100, and 5 per class): a weight search " \
           "would fit noise; using equal weights" in result.stderr
    assert [line.split()[:2] for line in result.stdout.splitlines()[1:3]] == [["run0", "0.500"], ["run1", "0.500"]]
    for run, s in zip(runs, complementary_streams()[:2]):
        s.write(run / "val_scores.parquet")
        s.write(run / "scores.parquet")
    result = CliRunner().invoke(main, ["ensemble", "--search", *map(str, runs)])
    assert result.exit_code == 0 and "weights fitted on 200 validation samples: 0.50, 0.50" in result.stdout

"""skeltools predict (stores, raw NTU files, windows, reference checkpoints) and export-model (ONNX parity)."""
from __future__ import annotations

import csv
import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from skeltools.cli import main
from skeltools.convert import convert_ntu
from skeltools.store import SkeletonStore
from trainer.evaluate import read_scores
from trainer.models import build_model, export_reference_state_dict
from trainer.predict import Predictor, load_predictor, predict_store, window_bounds
from trainer.recipes import resolve_recipe
from trainer import testing
from trainer.train import RunConfig, train

FAST = dict(epochs=1, batch_size=4, lr=0.05, clip_len=16, test_clips=2)


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result


@pytest.fixture(scope="module")
def run(ntu_train_store, tmp_path_factory):
    """A 1-epoch ST-GCN run on the tiny store, tested (scores.parquet: 2 clips per sample)."""
    out = tmp_path_factory.mktemp("predict") / "stgcn_j"
    train(RunConfig(arch="stgcn", store=str(ntu_train_store), out_dir=str(out), workers=0),
          resolve_recipe("stgcn", overrides=FAST), log=lambda _: None)
    testing.test_run(out, log=lambda _: None)
    return out


@pytest.fixture(scope="module")
def raw_subset(ntu_train_store, tmp_path_factory):
    """6 of the store's raw .skeleton files and their own converted store."""
    root = tmp_path_factory.mktemp("subset")
    files = sorted((ntu_train_store.parent / "raw").glob("*.skeleton"))[3:9]
    (root / "raw").mkdir()
    for f in files:
        shutil.copy(f, root / "raw" / f.name)
    convert_ntu([root / "raw"], root / "sub.zarr", progress=False, workers=1)
    return root


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_run_json_keeps_the_store_attrs(run, ntu_train_store):
    attrs = json.loads((run / "run.json").read_text())["store_attrs"]
    store = SkeletonStore.open(ntu_train_store)
    assert attrs == {k: store.attrs[k] for k in ("dataset", "source", "layout", "coords", "persons", "preset",
                                                 "preprocessing", "class_names")}
    assert attrs["preset"] == "clean" and attrs["persons"] == 2 and attrs["preprocessing"]["align_spine"] is False


def test_predict_on_a_store_gives_the_test_probabilities(run, ntu_train_store, tmp_path):
    scores = read_scores(run / "scores.parquet")
    store = SkeletonStore.open(ntu_train_store)
    result = predict_store(load_predictor(run), store, store.rows("xsub_test"), log=lambda _: None)
    assert result.sample_ids == list(scores.sample_ids) and len(result.sample_ids) == 75
    np.testing.assert_allclose(result.probs, scores.probs, rtol=0, atol=1e-6)
    assert (result.bounds[:, 1] == store.lengths[store.rows("xsub_test")]).all() and (result.bounds[:, 0] == 0).all()

    out = invoke("predict", run, ntu_train_store, "--split", "xsub_test", "--top-k", "2", "-o", tmp_path / "p.csv")
    assert out.exit_code == 0, out.output
    rows = read_csv(tmp_path / "p.csv")
    assert len(rows) == 150 and list(rows[0]) == ["sample", "start", "end", "rank", "class_index", "class", "prob"]
    top = [r for r in rows if r["rank"] == "1"]
    assert [r["sample"] for r in top] == list(scores.sample_ids)
    np.testing.assert_allclose([float(r["prob"]) for r in top], scores.probs.max(1), atol=1e-6)
    assert [int(r["class_index"]) for r in top] == scores.probs.argmax(1).tolist()
    names = json.loads((run / "run.json").read_text())["class_names"]
    assert all(r["class"] == names[int(r["class_index"])] for r in rows)


def test_raw_ntu_files_give_the_probabilities_of_their_converted_store(run, raw_subset, tmp_path):
    store = SkeletonStore.open(raw_subset / "sub.zarr")
    expected = predict_store(load_predictor(run), store, log=lambda _: None)
    out = invoke("predict", run, raw_subset / "raw", "--top-k", "60", "-o", tmp_path / "raw.csv")
    assert out.exit_code == 0, out.output
    rows = read_csv(tmp_path / "raw.csv")
    ids = list(dict.fromkeys(r["sample"] for r in rows))
    assert ids == expected.sample_ids and len(ids) == 6
    probs = np.zeros_like(expected.probs)
    for r in rows:
        probs[ids.index(r["sample"]), int(r["class_index"])] = float(r["prob"])
    np.testing.assert_allclose(probs, expected.probs, atol=2e-6)
    assert [int(r["end"]) for r in rows if r["rank"] == "1"] == store.lengths.tolist()


def test_the_run_directory_alone_suffices(run, raw_subset, tmp_path):
    moved = tmp_path / "run"
    shutil.copytree(run, moved)
    meta = json.loads((moved / "run.json").read_text())
    meta["store"] = str(tmp_path / "gone.zarr")
    (moved / "run.json").write_text(json.dumps(meta))
    a = invoke("predict", moved, raw_subset / "raw", "--checkpoint", "last")
    b = invoke("predict", run, raw_subset / "raw", "--checkpoint", "last")
    assert a.exit_code == 0, a.output
    assert a.stdout == b.stdout and len(a.stdout.splitlines()) == 6


def test_top_k_lines(run, raw_subset):
    out = invoke("predict", run, sorted((raw_subset / "raw").glob("*.skeleton"))[0], "--top-k", "3")
    assert out.exit_code == 0, out.output
    (line,) = out.stdout.splitlines()
    sample, rest = line.split(" [0-")
    assert sample == sorted((raw_subset / "raw").glob("*.skeleton"))[0].name.split(".")[0]
    ranked = rest.split("): ", 1)[1].split("  ")
    assert [r.split(". ")[0] for r in ranked] == ["1", "2", "3"]
    probs = [float(r.rsplit(" ", 1)[1]) for r in ranked]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.001


@pytest.mark.parametrize("length, window, stride", [(100, 16, 8), (100, 16, 16), (101, 16, 5), (16, 16, 4),
                                                    (7, 16, 4), (17, 16, 16), (1, 1, 1)])
def test_windows_cover_the_sequence(length, window, stride):
    bounds = window_bounds(length, window, stride)
    covered = np.zeros(length, bool)
    for start, end in bounds:
        covered[start:end] = True
    assert covered.all() and bounds[-1, 1] == length and bounds[0, 0] == 0
    assert ((bounds[:, 1] - bounds[:, 0]) == min(window, length)).all()
    assert (np.diff(bounds[:, 0]) <= stride).all() and (np.diff(bounds[:, 0]) > 0).all()
    if length > window:
        assert (np.diff(bounds[:-1, 0]) == stride).all()


def test_window_bounds_refuse_gaps():
    with pytest.raises(ValueError, match="--stride 20 is longer than --window 16"):
        window_bounds(100, 16, 20)
    with pytest.raises(ValueError, match="must be positive"):
        window_bounds(100, 0, 1)


def test_sliding_windows_csv_and_timeline(run, raw_subset, tmp_path):
    pytest.importorskip("matplotlib")
    store = SkeletonStore.open(raw_subset / "sub.zarr")
    out = invoke("predict", run, raw_subset / "raw", "--window", "20", "--stride", "7", "--top-k", "1",
                 "-o", tmp_path / "w.csv")
    assert out.exit_code == 0, out.output
    rows = read_csv(tmp_path / "w.csv")
    for sample_id, length in zip(store.index.column("sample_id").to_pylist(), store.lengths):
        spans = [(int(r["start"]), int(r["end"])) for r in rows if r["sample"] == sample_id]
        assert spans == [tuple(b) for b in window_bounds(int(length), 20, 7)]
    assert len(out.stdout.splitlines()) == len(rows)
    png = tmp_path / "w.png"
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_window_is_predicted_as_the_sequence_of_its_frames(run, raw_subset):
    """Modalities come from the window's joints, and the clip draw is the window's (its position: row 0 here)."""
    predictor = load_predictor(run)
    store = SkeletonStore.open(raw_subset / "sub.zarr")
    windows = predict_store(predictor, store, [1], window=20, stride=10, log=lambda _: None)
    assert windows.bounds[0].tolist() == [0, 20] and windows.sample_ids[0] == store.index["sample_id"][1].as_py()
    cut = SkeletonStore.from_samples([store.read(1)[:20]], ["cut"], store.attrs)
    alone = predict_store(predictor, cut, log=lambda _: None)
    np.testing.assert_allclose(windows.probs[0], alone.probs[0], atol=1e-6)


def test_reference_checkpoint(run, raw_subset, tmp_path, ntu_train_store):
    predictor = load_predictor(run)
    torch.save(export_reference_state_dict(predictor.model), tmp_path / "ref.pth")
    files = sorted((raw_subset / "raw").glob("*.skeleton"))[:2]
    out = invoke("predict", "--arch", "stgcn", "--weights", tmp_path / "ref.pth", "--store", ntu_train_store,
                 *files, "-o", tmp_path / "ref.csv", "--top-k", "60")
    assert out.exit_code == 0, out.output
    reference = dataclasses.replace(predictor, recipe=resolve_recipe("stgcn"))  # the reference recipe tests it
    store = SkeletonStore.open(raw_subset / "sub.zarr")
    expected = predict_store(reference, SkeletonStore.from_samples([store.read(0), store.read(1)],
                                                                   ["a", "b"], store.attrs), log=lambda _: None)
    rows = read_csv(tmp_path / "ref.csv")
    probs = np.zeros((2, 60), np.float32)
    for r in rows:
        probs[[f.name.split(".")[0] for f in files].index(r["sample"]), int(r["class_index"])] = float(r["prob"])
    np.testing.assert_allclose(probs, expected.probs, atol=2e-6)
    out = invoke("predict", "--arch", "dgstgcn", "--weights", tmp_path / "ref.pth", "--dataset", "ntu60", files[0])
    assert out.exit_code == 1 and "cannot load this checkpoint into DGSTGCN" in out.output


@pytest.mark.parametrize("args, message", [
    (["--arch", "stgcn", "X"], "--arch and --weights go together"),
    (["--weights", "w.pth", "--arch", "stgcn", "X"], "give --store or --dataset"),
])
def test_usage_errors(args, message):
    out = invoke("predict", *args)
    assert out.exit_code == 2 and message in out.output


def test_clear_errors(run, raw_subset, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(run, broken)
    (broken / "best.pt").unlink()
    out = invoke("predict", broken, raw_subset / "raw")
    assert out.exit_code == 1 and f"{broken}: no best.pt" in out.output

    (tmp_path / "notes.txt").write_text("hello")
    out = invoke("predict", run, tmp_path / "notes.txt")
    assert out.exit_code == 1 and "notes.txt: input format not recognised" in out.output
    (tmp_path / "other.json").write_text('{"frames": []}')
    out = invoke("predict", run, tmp_path / "other.json")
    assert out.exit_code == 1 and "other.json: input format not recognised" in out.output

    from skeltools.synth import write_openpose_corpus

    videos = write_openpose_corpus(tmp_path / "k", 3, format="kinetics")
    out = invoke("predict", run, videos[0])
    assert out.exit_code == 1 and "Kinetics-Skeleton JSON (one file per video), but the model was trained on " \
                                  "ntu-skeleton data (layout ntu25)" in out.output
    out = invoke("predict", run, videos[0], raw_subset / "raw")
    assert out.exit_code == 1 and "the inputs mix formats" in out.output

    from skeltools.convert_openpose import convert_openpose

    convert_openpose([tmp_path / "k"], tmp_path / "k.zarr", workers=1, progress=False)
    out = invoke("predict", run, tmp_path / "k.zarr")
    assert out.exit_code == 1 and "18 joints per person, but the model was trained on layout ntu25 with 25 " \
                                  "joints" in out.output

    bad = raw_subset / "raw_bad"
    shutil.copytree(raw_subset / "raw", bad, dirs_exist_ok=True)
    next(bad.glob("*.skeleton")).write_text("12\n1\nnot a number\n")
    out = invoke("predict", run, bad)
    assert out.exit_code == 0 and "warning:" in out.stderr and "failed" in out.stderr
    assert len(out.stdout.splitlines()) == 5


# ----------------------------------------------------------------------------------------------------------------
# ONNX export


def random_predictor(arch: str, run_predictor: Predictor, **kw) -> Predictor:
    torch.manual_seed(0)
    model = build_model(arch, num_classes=60, **kw).eval()
    with torch.no_grad():  # non-trivial BN statistics, so that parity checks them too
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return dataclasses.replace(run_predictor, model=model, arch=arch)


def onnx_vs_torch(path, model, frames: tuple[int, ...]):
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for n, t in zip((3, 1, 2), frames):
        x = torch.randn(n, 2, t, 25, 3, generator=torch.Generator().manual_seed(t))
        with torch.no_grad():
            expected = model(x)
        logits, probs = session.run(["logits", "probs"], {"clips": x.numpy()})
        np.testing.assert_allclose(probs, torch.softmax(expected, 1).numpy(), atol=1e-5)
        # relative to the logits' scale above 1: CTR-GCN's classifier init gives logits in the thousands here
        scale = max(1.0, float(expected.abs().max()))
        worst = max(worst, float(np.abs(logits - expected.numpy()).max()) / scale)
    return worst


@pytest.mark.parametrize("arch, kw", [("dgstgcn", {}), ("stgcn", {}), ("ctrgcn", {}), ("ctrgcn_pyskl", {}),
                                      ("dualhead", {"num_gcn_scales": 3, "num_g3d_scales": 2})])
def test_onnx_parity_dynamic_length(arch, kw, run, tmp_path):
    pytest.importorskip("onnxscript")
    from trainer.onnx_export import export_onnx

    predictor = random_predictor(arch, load_predictor(run, device="cpu"), **kw)
    summary = export_onnx(predictor, tmp_path / f"{arch}.onnx", dynamic=True)
    assert summary["frames"] == "dynamic" and summary["classes"] == 60
    assert onnx_vs_torch(tmp_path / f"{arch}.onnx", predictor.model, (16, 24, 9)) < 1e-4


def test_export_model_cli_fixed_length_and_metadata(run, tmp_path, capfd):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    out = invoke("export-model", run, "--onnx", tmp_path / "m.onnx", "--frames", "20")
    assert out.exit_code == 0, out.output
    assert "stgcn, 60 classes, frames 20, opset 18" in out.output
    assert "torchvision" not in out.output + "".join(capfd.readouterr())  # the exporter's registry chatter
    written = (tmp_path / "m.onnx").stat().st_mtime_ns
    again = invoke("export-model", run, "--onnx", tmp_path / "m.onnx", "--frames", "20")
    assert again.exit_code == 1 and "exists; pass --overwrite" in again.output
    assert (tmp_path / "m.onnx").stat().st_mtime_ns == written
    assert invoke("export-model", run, "--onnx", tmp_path / "m.onnx", "--frames", "20", "--overwrite").exit_code == 0
    model = onnx.load(str(tmp_path / "m.onnx"))
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["class_names"]) == json.loads((run / "run.json").read_text())["class_names"]
    assert meta["architecture"] == "stgcn" and meta["layout"] == "ntu25" and meta["frames"] == "20"
    assert meta["clip_len"] == "16" and meta["test_clips"] == "2"
    assert json.loads(meta["preprocessing"])["preset"] == "clean"
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims[1:] == [2, 20, 25, 3] and isinstance(dims[0], str)
    assert onnx_vs_torch(tmp_path / "m.onnx", load_predictor(run, device="cpu").model, (20, 20)) < 1e-4
    out = invoke("export-model", run, "--onnx", tmp_path / "x.onnx", "--frames", "20", "--dynamic")
    assert out.exit_code == 1 and "give one of them" in out.output
    out = invoke("export-model", run, "--onnx", tmp_path / "x.onnx", "--opset", "13")
    assert out.exit_code == 1 and "opset 18 or newer" in out.output

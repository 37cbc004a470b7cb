"""The trainer end to end on a tiny synthetic store: train -> test -> ensemble, resume, DDP, NaN guard."""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import trainer.train as train_mod
from skeltools.cli import main
from trainer.evaluate import read_scores
from trainer.recipes import resolve_recipe
from trainer.train import RunConfig, TrainingDiverged, fit_batch, holdout, lr_factor, train

FAST = dict(epochs=2, batch_size=4, lr=0.05, clip_len=16, test_clips=2)


@pytest.fixture(scope="module")
def store(ntu_train_store):
    return ntu_train_store


def run_config(store, out, **kw) -> RunConfig:
    return RunConfig(arch=kw.pop("arch", "dgstgcn"), store=str(store), out_dir=str(out), workers=0, **kw)


def test_lr_schedules():
    cosine = resolve_recipe("dgstgcn", overrides={"epochs": 10})
    assert lr_factor(cosine, 0, 5) == 1.0
    assert lr_factor(cosine, 25, 5) == pytest.approx(0.5)
    assert lr_factor(cosine, 50, 5) == pytest.approx(0.0, abs=1e-12)
    step = resolve_recipe("dualhead")
    assert [lr_factor(step, e * 10, 10) for e in (0, 39, 40, 59, 60, 80, 119)] == pytest.approx(
        [1, 1, 0.1, 0.1, 0.01, 0.001, 0.001])
    warm = resolve_recipe("dgstgcn", overrides={"warmup_epochs": 2, "epochs": 10})
    assert lr_factor(warm, 0, 4) == pytest.approx(1 / 8) and lr_factor(warm, 7, 4) == pytest.approx(1.0)


def test_holdout_is_seeded_and_disjoint():
    rows = np.arange(100, 300)
    train_rows, val_rows = holdout(rows, 0)
    assert len(val_rows) == 10 and len(train_rows) == 190 and not set(train_rows) & set(val_rows)
    assert (holdout(rows, 0)[1] == val_rows).all() and not (holdout(rows, 1)[1] == val_rows).all()


def test_fit_batch_caps_at_the_training_set():
    recipe = resolve_recipe("stgcn")  # batch 128 at base LR 0.1 for 128
    assert fit_batch(recipe, 500) == (recipe, None)
    fitted, notice = fit_batch(recipe, 46)
    assert fitted.batch_size == 46 and fitted.effective_lr == pytest.approx(0.1 * 46 / 128)
    assert notice == ("note: 46 training samples do not fill the recipe's batch of 128; training with batches of 46 "
                      "(learning rate 0.1 -> 0.0359375, scaled with the batch)")
    explicit, notice = fit_batch(resolve_recipe("stgcn", overrides={"lr": 0.2}), 45, world=2)
    assert explicit.batch_size == 44 and explicit.effective_lr == 0.2 and "learning rate 0.2 as given" in notice


def test_a_training_set_smaller_than_the_batch_trains(store, tmp_path):
    result = CliRunner().invoke(main, ["train", "--arch", "stgcn", "--store", str(store), "--split", "xview", "-o",
                                       str(tmp_path / "small"), "--epochs", "1", "--clip-len", "8", "--workers", "0"])
    assert result.exit_code == 0, result.output
    n = json.loads((tmp_path / "small" / "run.json").read_text())["train_samples"]
    assert f"note: {n} training samples do not fill the recipe's batch of 128; training with batches of {n}" \
        in result.output
    assert json.loads((tmp_path / "small" / "recipe.json").read_text())["batch_size"] == n
    summary = result.output[result.output.index("training stgcn on"):].splitlines()
    assert summary[1].startswith("  data      xview, modality j, 60 classes;") and "1 iterations per epoch" in \
        summary[5] and f"learning rate {0.1 * n / 128:g} (base 0.1 x batch {n} / 128)" in summary[5]
    assert "parameters" in summary[3] and "thread(s)" in summary[4] and "pyskl configs/stgcn" in summary[7]
    assert "\r" not in result.output and "batch/s" not in result.output  # no bars when output is not a terminal
    quiet = CliRunner().invoke(main, ["train", "--arch", "stgcn", "--store", str(store), "--split", "xview", "-o",
                                      str(tmp_path / "quiet"), "--epochs", "1", "--clip-len", "8", "--workers", "0",
                                      "-q"])
    assert quiet.exit_code == 0 and quiet.output.splitlines() == [quiet.output.strip()]
    assert quiet.output.startswith(f"{tmp_path / 'quiet'}: best validation top-1")


def test_train_test_ensemble_end_to_end(store, tmp_path):
    runner = CliRunner()
    runs = []
    for modality in ("j", "b"):
        out = tmp_path / modality
        result = runner.invoke(main, ["train", "--arch", "stgcn", "--store", str(store), "--modality", modality,
                                      "-o", str(out), "--epochs", "4", "--batch-size", "4", "--lr", "0.05",
                                      "--clip-len", "16", "--set", "test_clips=2", "--workers", "0"])
        assert result.exit_code == 0, result.output
        rows = list(csv.DictReader(open(out / "metrics.csv")))
        assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
        assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
        run = json.loads((out / "run.json").read_text())
        assert run["modality"] == modality and run["in_channels"] == 3 and run["num_classes"] == 60
        assert "held out" in run["validation"]
        assert json.loads((out / "recipe.json").read_text())["epochs"] == 4
        result = runner.invoke(main, ["test", str(out)])
        assert result.exit_code == 0, result.output
        report = json.loads((out / "test.json").read_text())
        assert report["clips"] == 2 and report["num_samples"] == 75
        assert report["top1"] > 0.6, report  # chance is 1/3
        scores = read_scores(out / "scores.parquet")
        assert len(scores) == 75 and scores.logits.shape == (75, 60)
        np.testing.assert_allclose(scores.probs.sum(1), 1, rtol=1e-5)
        assert scores.metadata["architecture"] == "stgcn" and scores.metadata["modality"] == modality
        assert scores.metadata["clips"] == 2 and scores.metadata["part"] == "test"
        runs.append(out)
    result = runner.invoke(main, ["ensemble", *map(str, runs), "--weights", "1,1", "-o", str(tmp_path / "f.parquet")])
    assert result.exit_code == 0, result.output
    assert "fused (probs)" in result.output and "75 samples" in result.output
    fused = read_scores(tmp_path / "f.parquet")
    a, b = (read_scores(r / "scores.parquet") for r in runs)
    order = np.argsort(a.sample_ids)
    np.testing.assert_allclose(fused.probs, (a.probs[order] + b.probs[order]) / 2, rtol=1e-5)
    result = runner.invoke(main, ["ensemble", *map(str, runs), "--search"])  # 4 validation samples: no search
    assert result.exit_code == 0 and "warning: only 4 validation samples" in result.output
    assert "fitted on the validation parts" not in result.output and "fused (probs)" in result.output


def test_ensemble_refuses_mismatched_runs(store, tmp_path):
    out = tmp_path / "j"
    recipe = resolve_recipe("stgcn", overrides=dict(FAST, epochs=1))
    train(run_config(store, out, arch="stgcn"), recipe, log=lambda m: None)
    CliRunner().invoke(main, ["test", str(out)])
    scores = read_scores(out / "scores.parquet")
    partial = tmp_path / "partial.parquet"
    type(scores)(scores.sample_ids[:-3], scores.labels[:-3], scores.logits[:-3], scores.probs[:-3],
                 scores.metadata).write(partial)
    result = CliRunner().invoke(main, ["ensemble", str(out / "scores.parquet"), str(partial)])
    assert result.exit_code == 1 and "sample" in result.output and "Traceback" not in result.output


def test_resume_gives_the_same_weights(store, tmp_path, monkeypatch):
    recipe = resolve_recipe("dgstgcn", overrides=dict(FAST, batch_size=8, rotation=0.2))
    train(run_config(store, tmp_path / "straight"), recipe, log=lambda m: None)

    calls = []
    original = train_mod.write_metrics

    def killed_after_epoch_1(history, out_dir):
        plotted = original(history, out_dir)
        calls.append(len(history))
        if len(history) == 1:
            raise KeyboardInterrupt
        return plotted

    monkeypatch.setattr(train_mod, "write_metrics", killed_after_epoch_1)
    with pytest.raises(KeyboardInterrupt):
        train(run_config(store, tmp_path / "resumed"), recipe, log=lambda m: None)
    monkeypatch.setattr(train_mod, "write_metrics", original)
    logs = []
    train(run_config(store, tmp_path / "resumed", resume=True), recipe, log=logs.append)
    assert any("resuming" in m and "epoch 2/2" in m for m in logs)
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 2 and calls == [1]
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert a["history"][-1]["train_loss"] == b["history"][-1]["train_loss"]
    with pytest.raises(FileExistsError, match="--resume"):
        train(run_config(store, tmp_path / "straight"), recipe, log=lambda m: None)


def test_nan_loss_stops_with_a_clear_message(store, tmp_path):
    recipe = resolve_recipe("stgcn", overrides=dict(FAST, lr=1e30))
    with pytest.raises(TrainingDiverged, match="lower the learning rate"):
        train(run_config(store, tmp_path / "nan", arch="stgcn"), recipe, log=lambda m: None)


def test_dualhead_trains_on_both_heads(store, tmp_path, monkeypatch):
    monkeypatch.setattr(train_mod, "plot_curves", lambda history, path: False)  # as without matplotlib
    recipe = resolve_recipe("dualhead", overrides=dict(FAST, epochs=1, sampling="uniform", batch_size=4))
    logs = []
    summary = train(run_config(store, tmp_path / "dh", arch="dualhead", model_kwargs={"num_gcn_scales": 3,
                                                                                     "num_g3d_scales": 2}),
                    recipe, log=logs.append)
    assert summary["final"]["train_loss"] > 0 and (tmp_path / "dh" / "best.pt").exists()
    assert any("matplotlib is not installed" in m for m in logs) and not (tmp_path / "dh" / "curves.png").exists()


@pytest.mark.skipif(shutil.which("torchrun", path=os.path.dirname(sys.executable)) is None,
                    reason="torchrun not installed")
def test_ddp_two_cpu_processes(store, tmp_path):
    # xview: 5 held-out validation samples, so the ranks get 3 and 2, i.e. 2 and 1 batches of 2 (DDP's forward is a
    # collective: validating through it deadlocked there)
    args = ["train", "--arch", "stgcn", "--store", str(store), "--split", "xview", "--epochs", "2", "--batch-size", "4",
            "--lr", "0.05", "--clip-len", "16", "--workers", "0"]
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    subprocess.run([torchrun, "--standalone", "--nproc-per-node", "2", "-m", "skeltools.cli", *args,
                    "-o", str(tmp_path / "ddp")], env=env, capture_output=True, timeout=600)
    # the gloo exit flake can abort a finished run: judge by what it wrote
    run = json.loads((tmp_path / "ddp" / "run.json").read_text())
    assert run["world_size"] == 2 and run["final"]["epoch"] == 2 and "(5 samples)" in run["validation"]
    rows = list(csv.DictReader(open(tmp_path / "ddp" / "metrics.csv")))
    assert len(rows) == 2
    # the reduced validation figures are those of rank 0's final model (buffers included) on all 5 samples
    from skeltools.store import SkeletonStore
    from trainer.data import make_loader
    from trainer.testing import load_run

    _, recipe, model = load_run(tmp_path / "ddp", torch.device("cpu"), "last.pt")
    cfg = RunConfig(arch="stgcn", store=str(store), out_dir=str(tmp_path / "ddp"), protocol="xview", workers=0)
    _, val_set, _ = train_mod.build_datasets(cfg, recipe, SkeletonStore.open(store))
    va = train_mod.run_epoch(model, make_loader(val_set, 2, shuffle=False), torch.nn.CrossEntropyLoss(),
                             torch.device("cpu"), heads_mu=None, num_classes=3)
    assert va["samples"] == 5
    assert float(rows[-1]["val_top1"]) == pytest.approx(va["top1"])
    assert float(rows[-1]["val_loss"]) == pytest.approx(va["loss"], rel=1e-5)
    single = CliRunner().invoke(main, args + ["-o", str(tmp_path / "one")])
    assert single.exit_code == 0, single.output
    one = list(csv.DictReader(open(tmp_path / "one" / "metrics.csv")))
    assert float(rows[-1]["train_loss"]) == pytest.approx(float(one[-1]["train_loss"]), rel=0.5)


def test_one_person_long_tailed_store_with_focal_loss_and_mean_class(tmp_path):
    """Smarthome-like data: M = 1, 13 joints, sequences of different lengths, an official val part."""
    from skeltools.convert_smarthome import convert_smarthome
    from skeltools.synth_sets import write_smarthome_corpus

    write_smarthome_corpus(tmp_path / "raw", 62, seed=2, frames_range=(30, 200))
    convert_smarthome([tmp_path / "raw"], tmp_path / "s.zarr", workers=1, progress=False)
    recipe = resolve_recipe("stgcn", dataset="smarthome", split="cs_train",
                            overrides=FAST | {"loss": "focal", "best_metric": "mean_class", "epochs": 1})
    summary = train(run_config(tmp_path / "s.zarr", tmp_path / "run", arch="stgcn", protocol="cs"), recipe,
                    log=lambda _: None)
    assert summary["num_persons"] == 1 and summary["best_metric"] == "mean_class" and summary["best_epoch"] == 1
    assert summary["validation"] == "cs_val" and 0 <= summary["best_val_mean_class"] <= 1
    row = next(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert float(row["val_mean_class"]) == pytest.approx(summary["best_val_mean_class"])

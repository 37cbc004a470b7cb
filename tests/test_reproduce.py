"""`skeltools reproduce` on a tiny synthetic store: every stream and the paper's fusion beside the paper's number,
a rerun after a kill trains only what was missing, parallel streams as subprocesses, refusals."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from skeltools.cli import main
from trainer.evaluate import read_scores
from trainer.recipes import find_cell
from trainer.reproduce import reproduce

TINY = dict(epochs=2, batch_size=4, lr=0.05, clip_len=16, test_clips=1)
pytestmark = pytest.mark.usefixtures("flush_denormals")


class Killed(KeyboardInterrupt):
    pass


def test_reproduce_table_and_rerun_after_a_kill(smarthome_stores, tmp_path):
    cs_store = smarthome_stores["cs"]
    cell = find_cell("dgstgcn", "smarthome/cs")
    out = tmp_path / "repro"

    def kill_in_b(message: str) -> None:  # the log line comes after the epoch's checkpoint is written
        if message.startswith("[b] epoch 1/2"):
            raise Killed

    with pytest.raises(Killed):
        reproduce(cell, cs_store, out, overrides=TINY, device="cpu", workers=0, log=kill_in_b)
    assert (out / "j" / "test.json").exists() and (out / "b" / "last.pt").exists()
    assert not (out / "b" / "test.json").exists() and not (out / "results.md").exists()
    j_test = (out / "j" / "test.json").stat().st_mtime_ns

    lines = []
    results = reproduce(cell, cs_store, out, overrides=TINY, device="cpu", workers=0, log=lines.append)
    assert lines[0] == "dgstgcn smarthome/cs: streams j, b; to run: b"
    assert "[j] finished earlier: " + str(out / "j") in lines
    assert any(m.startswith(f"[b] resuming {out / 'b'} at epoch 2/2") for m in lines)
    assert not any(m.startswith("[j] epoch") or m.startswith("[b] epoch 1/2") for m in lines)
    assert (out / "j" / "test.json").stat().st_mtime_ns == j_test
    assert len((out / "b" / "metrics.csv").read_text().splitlines()) == 3

    rows = {r["name"]: r for r in results["rows"]}
    assert list(rows) == ["j", "b", "2s (j+b 1:1 on probs)"]
    fused = rows["2s (j+b 1:1 on probs)"]
    assert fused["paper"] == {"mean_class": 64.8} and fused["paper_entry"] == "2s"
    assert fused["difference"]["mean_class"] == pytest.approx(fused["mean_class"] - 64.8, abs=0.011)
    j, b = (read_scores(out / s / "scores.parquet") for s in ("j", "b"))
    ja, ba = np.argsort(j.sample_ids), np.argsort(b.sample_ids)
    assert np.array_equal(j.sample_ids[ja], b.sample_ids[ba])
    pred = ((j.probs[ja] + b.probs[ba]) / 2).argmax(1)
    labels = j.labels[ja]
    per_class = [np.mean(pred[labels == c] == c) for c in np.unique(labels)]
    assert fused["mean_class"] == pytest.approx(100 * np.mean(per_class), abs=0.006)
    assert fused["top1"] == pytest.approx(100 * np.mean(pred == labels), abs=0.006)
    for name in ("j", "b"):
        test = json.loads((out / name / "test.json").read_text())
        assert rows[name]["top1"] == pytest.approx(100 * test["top1"], abs=0.006) and rows[name]["paper"] == {}

    assert not results["comparable"] and results["deviations"]["epochs"] == [2, 150]
    assert results["deviations"]["clip_len"] == [16, 200] and "rotation" not in results["deviations"]
    text = (out / "results.md").read_text()
    assert "**This run deviates from the recipe: " in text and "epochs 2 (recipe 150)" in text
    diff = fused["difference"]["mean_class"]
    assert f"| {fused['mean_class']:.2f} | 64.8 mean_class | {diff:+.2f} mean_class †" in text
    assert json.loads((out / "results.json").read_text()) == results

    # the same command again: nothing to train, the same table (through the CLI)
    result = CliRunner().invoke(main, ["reproduce", "dgstgcn", "smarthome/cs", "--store", str(cs_store), "-o", str(out),
                                       "--epochs", "2", "--set", "batch_size=4", "--set", "lr=0.05", "--set",
                                       "clip_len=16", "--set", "test_clips=1", "--workers", "0", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "to run: nothing" in result.output and "| 2s (j+b 1:1 on probs) |" in result.output
    assert "not comparable with the paper's" in result.output

    # a changed recipe is refused, never mixed into the same folder
    with pytest.raises(ValueError, match="was trained with another recipe"):
        reproduce(cell, cs_store, out, overrides=TINY | {"epochs": 3}, device="cpu", workers=0, log=lambda _: None)

    # parallel streams run as subprocesses, one per device: here only b's test is missing
    os.remove(out / "b" / "test.json")
    lines.clear()
    again = reproduce(cell, cs_store, out, overrides=TINY, devices=["cpu"], workers=0, log=lines.append)
    assert lines[0].endswith("to run: b") and any("[b] running on cpu" in m for m in lines)
    assert "[j] finished earlier" in (out / "logs" / "j.log").read_text()
    assert "[b] test top-1" in (out / "logs" / "b.log").read_text()
    assert again["rows"] == results["rows"]


def test_reproduce_refuses_the_wrong_store(smarthome_stores, tmp_path):
    cs_store = smarthome_stores["cs"]
    with pytest.raises(ValueError, match="a smarthome store in layout smarthome13; dgstgcn ntu60/xsub needs "
                                         "dataset ntu60 in layout ntu25"):
        reproduce(find_cell("dgstgcn", "ntu60/xsub"), cs_store, tmp_path / "x", overrides=TINY)
    with pytest.raises(ValueError, match="pre-trains nothing"):
        reproduce(find_cell("dgstgcn", "smarthome/cs"), cs_store, tmp_path / "x", pretrained={"j": str(tmp_path)})
    with pytest.raises(ValueError, match="no cell 'kinetics400/kinetics' for stgcn; known: ntu120/xset"):
        find_cell("stgcn", "kinetics400/kinetics")
    assert not (tmp_path / "x").exists()

"""Fine-tuning across datasets: name/shape loading, joint mapping (NTU 25 -> Smarthome 13), classifier re-init,
frozen backbone, backbone LR, and the DG-STGCN Smarthome CV1 protocol (pre-train on NTU120 X-Set) end to end."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from schemas.layouts import get_layout
from skeltools.cli import main
from trainer.finetune import Checkpoint, initialise_from, joint_mapping, param_groups
from trainer.models import MODELS, build_model, export_reference_state_dict
from trainer.recipes import find_cell, resolve_recipe
from trainer.reproduce import reproduce
from trainer.train import RunConfig, train

TINY = dict(epochs=1, batch_size=4, lr=0.05, clip_len=16, test_clips=1)
NTU, LCR = get_layout("ntu25"), get_layout("smarthome13")
QUIET = dict(log=lambda _: None)
pytestmark = pytest.mark.usefixtures("flush_denormals")


def ntu_store(root, dataset: str):
    """A tiny synthetic NTU store (24 files of 3 actions; 25 joints, all of the dataset's classes)."""
    from skeltools.convert import convert_ntu
    from skeltools.synth import write_ntu_corpus

    write_ntu_corpus(root / f"raw_{dataset}", 24, seed=3, num_classes=3, dataset=dataset)
    convert_ntu([root / f"raw_{dataset}"], root / f"{dataset}.zarr", dataset=dataset, workers=1, progress=False)
    return root / f"{dataset}.zarr"


@pytest.fixture(scope="module")
def ntu_run(tmp_path_factory):
    """A one-epoch DG-STGCN run on a synthetic NTU60 store (25 joints, 60 classes)."""
    root = tmp_path_factory.mktemp("ntu_run")
    train(RunConfig(arch="dgstgcn", store=str(ntu_store(root, "ntu60")), out_dir=str(root / "j"), workers=0),
          resolve_recipe("dgstgcn", overrides=TINY | {"clip_len": 8}), **QUIET)
    return root / "j"


def test_joint_mapping_unifies_naming_conventions():
    idx = joint_mapping(NTU, LCR)
    assert [NTU.joint_names[i] for i in idx] == [
        "AnkleRight", "AnkleLeft", "KneeRight", "KneeLeft", "HipRight", "HipLeft", "WristRight", "WristLeft",
        "ElbowRight", "ElbowLeft", "ShoulderRight", "ShoulderLeft", "Head"]
    assert joint_mapping(get_layout("coco18"), get_layout("coco17"))[5] == 5  # left_shoulder -> LShoulder
    assert joint_mapping(get_layout("coco17"), NTU) is None  # NTU's spine has no COCO joint


@pytest.mark.parametrize("arch", sorted(MODELS))
def test_every_tensor_is_loaded_mapped_or_reinitialised(arch):
    torch.manual_seed(0)
    src = build_model(arch, num_classes=60, layout=NTU)
    dst = build_model(arch, num_classes=31, layout=LCR)
    ckpt = Checkpoint("ntu", src.state_dict(), NTU, tuple(f"c{i}" for i in range(60)))
    report = initialise_from(dst, ckpt, layout=LCR, class_names=[f"s{i}" for i in range(31)], in_channels=3, **QUIET)
    keys = set(dst.state_dict())
    assert set(report.loaded) | set(report.mapped) | set(report.reinitialised) == keys
    assert len(report.loaded) + len(report.mapped) + len(report.reinitialised) == len(keys)
    heads = [k for k in keys if k.startswith("fc")]
    assert heads and all("60 -> 31 classes" in report.reinitialised[k] for k in heads)
    assert {"data_bn.running_mean", "data_bn.weight"} <= set(report.mapped)
    idx = torch.tensor(joint_mapping(NTU, LCR))
    state, source = dst.state_dict(), src.state_dict()
    per_person = source["data_bn.running_mean"].reshape(-1, 25, 3)
    assert torch.equal(state["data_bn.running_mean"], per_person[:, idx].reshape(-1))
    for key in report.loaded:
        assert torch.equal(state[key], source[key]), key
    if arch in ("dgstgcn", "stgcnpp"):  # learned (K, V, V) graphs
        a = source["blocks.3.gcn.A"]
        assert "blocks.3.gcn.A" in report.mapped and torch.equal(state["blocks.3.gcn.A"], a[:, idx][:, :, idx])
    if arch == "dgstgcn":
        coeff = source["blocks.2.tcn.add_coeff"]
        assert torch.equal(state["blocks.2.tcn.add_coeff"][:13], coeff[idx])
    if arch == "stgcn":  # the fixed partitions are the target layout's; the learned importance is mapped
        assert report.reinitialised["blocks.0.gcn.A"] == "the smarthome13 layout's own graph"
        assert "blocks.0.gcn.PA" in report.mapped
    if arch in ("msg3d", "dualhead"):
        res = [k for k in report.mapped if k.endswith("A_res")]
        assert res
        key = next(k for k in res if "g3d" in k)  # (S·τ·V, τ·V) space-time blocks
        rows, cols = source[key].shape
        s, w = rows // cols, cols // 25
        expect = source[key].reshape(s, w, 25, w, 25)[:, :, idx][:, :, :, :, idx].reshape(s * w * 13, w * 13)
        assert torch.equal(state[key], expect)


def test_bare_reference_checkpoint_and_unsafe_files(tmp_path):
    torch.manual_seed(0)
    src = build_model("dgstgcn", num_classes=60, layout=NTU)
    torch.save({"state_dict": export_reference_state_dict(src)}, tmp_path / "pyskl.pth")
    dst = build_model("dgstgcn", num_classes=31, layout=LCR)
    report = initialise_from(dst, tmp_path / "pyskl.pth", layout=LCR, in_channels=3, **QUIET)
    assert "blocks.4.gcn.pre.0.weight" in report.loaded and not report.mapped and not report.unused
    assert report.reinitialised["blocks.4.tcn.add_coeff"] == ("joint-indexed, and the checkpoint does not record "
                                                             "its layout")
    assert report.reinitialised["fc.weight"] == "classifier: 60 -> 31 classes"
    with pytest.raises(ValueError, match="trained stgcn; it cannot initialise dgstgcn"):
        initialise_from(dst, Checkpoint("run", {}, arch="stgcn"), layout=LCR, arch="dgstgcn", in_channels=3, **QUIET)
    with pytest.raises(ValueError, match="no tensor matches this DGSTGCN by name and shape"):
        initialise_from(dst, Checkpoint("other", {"fc.weight": torch.zeros(31, 7)}), layout=LCR, in_channels=3,
                        **QUIET)
    (tmp_path / "evil.pt").write_bytes(pickle.dumps(Checkpoint("x", {}), protocol=2))
    with pytest.raises(ValueError, match="evil.pt: not a checkpoint that loads with weights_only=True"):
        initialise_from(dst, tmp_path / "evil.pt", layout=LCR, in_channels=3, **QUIET)


def test_param_groups_split_classifier_and_backbone():
    model = build_model("stgcn", num_classes=5, layout=LCR)
    assert len(param_groups(model, 0.1)) == 1
    head, backbone = param_groups(model, 0.1, 0.1)
    assert head["lr"] == 0.1 and backbone["lr"] == pytest.approx(0.01)
    assert len(head["params"]) == 2 and len(backbone["params"]) == len(list(model.parameters())) - 2


def test_init_from_run_25_to_13_joints_60_to_31_classes(ntu_run, smarthome_stores, tmp_path):
    out = tmp_path / "cli"
    result = CliRunner().invoke(main, [
        "train", "--arch", "dgstgcn", "--store", str(smarthome_stores["cs"]), "--split", "cs", "-o", str(out),
        "--init-from", str(ntu_run), "--epochs", "2", "--batch-size", "4", "--lr", "0.05", "--clip-len", "16",
        "--set", "backbone_lr_mult=0.1", "--workers", "0", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "init from" in result.output and "mapped" in result.output
    run = json.loads((out / "run.json").read_text())
    init = run["init_from"]
    assert init["source"] == str(ntu_run) and len(init["joint_mapping"]) == 13
    assert "blocks.0.gcn.A" in init["mapped"] and "blocks.9.tcn.bn.weight" in init["loaded"]
    assert init["reinitialised"]["fc.weight"] == "classifier: 60 -> 31 classes"
    assert run["num_classes"] == 31 and run["best_epoch"] in (1, 2) and len(run["final"]) > 0
    groups = torch.load(out / "last.pt", weights_only=True)["optimizer"]["param_groups"]
    assert [g["initial_lr"] for g in groups] == pytest.approx([0.05, 0.005])
    assert len(open(out / "metrics.csv").read().splitlines()) == 3

    frozen_dir = tmp_path / "frozen"
    train(RunConfig(arch="dgstgcn", store=str(smarthome_stores["cs"]), out_dir=str(frozen_dir), protocol="cs",
                    workers=0, init_from=str(ntu_run), freeze_backbone=True),
          resolve_recipe("dgstgcn", dataset="smarthome", split="cs_train", overrides=TINY), **QUIET)
    report = json.loads((frozen_dir / "run.json").read_text())["init_from"]
    after = torch.load(frozen_dir / "best.pt", weights_only=True)["model"]
    before = torch.load(ntu_run / "best.pt", weights_only=True)["model"]
    key = "blocks.5.gcn.conv1.weight"
    assert key in report["frozen"] and torch.equal(after[key], before[key])
    idx = torch.tensor(joint_mapping(NTU, LCR))
    assert torch.equal(after["blocks.0.gcn.A"], before["blocks.0.gcn.A"][:, idx][:, :, idx])  # mapped, frozen
    assert not any(k.startswith("fc") for k in report["frozen"])


def test_smarthome_cv1_protocol_pretrained_on_ntu120_xset(smarthome_stores, tmp_path):
    """DG-STGCN's CV1*: each stream pre-trained on NTU120 X-Set (25 joints), fine-tuned on CV1 (13 joints)."""
    ntu120 = ntu_store(tmp_path, "ntu120")
    cell = find_cell("dgstgcn", "smarthome_cv/cv1-pretrained")
    with pytest.raises(ValueError, match="give --pretrain-store"):
        reproduce(cell, smarthome_stores["cv"], tmp_path / "repro", overrides=TINY, **QUIET)
    with pytest.raises(ValueError, match="needs dataset ntu120 in layout ntu25"):
        reproduce(cell, smarthome_stores["cv"], tmp_path / "repro", overrides=TINY,
                  pretrain_store=smarthome_stores["cs"], **QUIET)
    results = reproduce(cell, smarthome_stores["cv"], tmp_path / "repro", overrides=TINY, device="cpu",
                        pretrain_store=ntu120, workers=0, **QUIET)
    for stream in ("j", "b"):
        pre = json.loads((tmp_path / "repro" / "pretrain" / stream / "run.json").read_text())
        assert (pre["dataset"], pre["protocol"], pre["modality"], pre["num_classes"]) == ("ntu120", "xset", stream, 120)
        run = json.loads((tmp_path / "repro" / stream / "run.json").read_text())
        assert run["init_from"]["source"] == str(tmp_path / "repro" / "pretrain" / stream)
        assert run["init_from"]["reinitialised"]["fc.weight"] == "classifier: 120 -> 19 classes"
        assert "data_bn.running_var" in run["init_from"]["mapped"] and run["num_classes"] == 19
    assert [r["name"] for r in results["rows"]] == ["j", "b", "2s (j+b 1:1 on probs)"]
    assert results["pretrain"] == "dgstgcn ntu120/xset" and results["rows"][2]["paper"] == {}
    assert results["deviations"]["pretrain epochs"] == [1, 150] and results["deviations"]["clip_len"] == [16, 200]
    assert results["init_from"] == {s: str(tmp_path / "repro" / "pretrain" / s) for s in ("j", "b")}
    text = (tmp_path / "repro" / "results.md").read_text()
    assert "pre-trained as dgstgcn ntu120/xset" in text and "| 2s (j+b 1:1 on probs) |" in text
    rows = [np.isfinite([r["top1"], r["top5"], r["mean_class"]]).all() for r in results["rows"]]
    assert all(rows)

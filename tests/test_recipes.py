"""Recipe presets reproduce the references; overrides are typed and checked; the LR scaling rule."""
from __future__ import annotations

import pytest

from trainer.recipes import CELLS, RECIPES, Recipe, reference_model_kwargs, resolve_recipe


def test_dgstgcn_reference_recipe():
    r = resolve_recipe("dgstgcn", dataset="ntu60", split="xsub_train")
    assert (r.base_lr, r.momentum, r.weight_decay, r.nesterov) == (0.1, 0.9, 5e-4, True)
    assert (r.schedule, r.epochs, r.clip_len, r.test_clips, r.clip_fusion) == ("cosine", 150, 100, 10, "prob")
    assert r.rotation == 0.2 and resolve_recipe("dgstgcn", split="xview_train").rotation == 0.3
    assert r.effective_lr == 0.1


def test_dualhead_and_msg3d_reference_recipes():
    d = resolve_recipe("dualhead")
    assert (d.base_lr, d.weight_decay, d.batch_size, d.nesterov) == (0.05, 5e-4, 64, True)
    assert (d.schedule, d.milestones, d.gamma) == ("step", (40, 60, 80), 0.1)
    assert (d.sampling, d.clip_len, d.test_clips, d.pad_mode) == ("full", 300, 1, "loop")
    m60, m120 = resolve_recipe("msg3d", dataset="ntu60"), resolve_recipe("msg3d", dataset="ntu120")
    assert (m60.epochs, m60.milestones, m60.batch_size, m60.base_lr) == (50, (30, 40), 32, 0.05)
    assert (m120.epochs, m120.milestones) == (60, (30, 50))
    s = resolve_recipe("stgcn")
    assert (s.epochs, s.schedule, s.base_lr, s.reference_batch_size) == (80, "cosine", 0.1, 128)
    assert set(RECIPES) == {"ctrgcn", "ctrgcn_pyskl", "dgstgcn", "dualhead", "msg3d", "stgcn", "stgcnpp"}


def test_lr_scales_linearly_with_batch_size_unless_given():
    r = resolve_recipe("dgstgcn", overrides={"batch_size": 32})
    assert r.effective_lr == pytest.approx(0.025)
    r = resolve_recipe("dgstgcn", overrides={"batch_size": 32, "lr": 0.05})
    assert r.effective_lr == 0.05 and r.to_dict()["effective_lr"] == 0.05


def test_overrides_from_cli_strings():
    r = resolve_recipe("dualhead", overrides={"epochs": "3", "milestones": "1,2", "nesterov": "false",
                                              "rotation": "0.1", "sampling": "uniform", "batch_size": None})
    assert (r.epochs, r.milestones, r.nesterov, r.rotation, r.sampling, r.batch_size) == (3, (1, 2), False, 0.1,
                                                                                         "uniform", 64)


def test_bad_overrides_are_refused():
    with pytest.raises(ValueError, match="unknown recipe field 'epoch'"):
        resolve_recipe("dgstgcn", overrides={"epoch": 3})
    with pytest.raises(ValueError, match="schedule 'linear'"):
        resolve_recipe("dgstgcn", overrides={"schedule": "linear"})
    with pytest.raises(ValueError, match="milestones"):
        resolve_recipe("dualhead", overrides={"milestones": "60,40"})
    with pytest.raises(ValueError, match="true or false"):
        resolve_recipe("dualhead", overrides={"nesterov": "maybe"})
    with pytest.raises(ValueError, match="no recipe for 'resnet'"):
        resolve_recipe("resnet")


def test_save_and_load_round_trip(tmp_path):
    r = resolve_recipe("msg3d", dataset="ntu120", overrides={"batch_size": 8})
    r.save(tmp_path / "recipe.json")
    assert Recipe.load(tmp_path / "recipe.json") == r


# ---------------------------------------------------------------------------------------------------------------
# The papers' cells: each recipe's key numbers and each reported number, written out from the papers' tables and
# the reference configurations (DG-STGCN 4.2/4.4, Tables 5-7; DualHead-Net 4.2, Tables 1-3; pyskl, MS-G3D configs).

DG = dict(base_lr=0.1, batch_size=128, epochs=150, schedule="cosine", weight_decay=5e-4, clip_len=100, test_clips=10,
          loss="ce", best_metric="top1")
DG_BABEL = DG | dict(loss="focal", best_metric="mean_class")
DG_SMARTHOME = DG | dict(clip_len=200, best_metric="mean_class")
DH = dict(base_lr=0.05, batch_size=64, epochs=120, schedule="step", milestones=(40, 60, 80), weight_decay=5e-4,
          clip_len=300, test_clips=1, loss="ce")
DH_K400 = DH | dict(base_lr=0.1, batch_size=128, epochs=80, milestones=(45, 55), weight_decay=1e-4)
MS = dict(base_lr=0.05, batch_size=32, epochs=50, schedule="step", milestones=(30, 40), weight_decay=5e-4, clip_len=300)
MS120 = MS | dict(epochs=60, milestones=(30, 50))
MS_K400 = MS | dict(base_lr=0.1, batch_size=128, epochs=65, milestones=(45, 55), weight_decay=3e-4)
PYSKL = dict(base_lr=0.1, batch_size=128, epochs=80, schedule="cosine", weight_decay=5e-4, clip_len=100)
FOUR, TWO = ("j", "b", "jm", "bm"), ("j", "b")

EXPECT = {
    "dgstgcn ntu60/xsub": (DG | dict(rotation=0.2), FOUR, "probs", {"2s": 92.9, "4s": 93.2}),
    "dgstgcn ntu60/xview": (DG | dict(rotation=0.3), FOUR, "probs", {"2s": 97.3, "4s": 97.5}),
    "dgstgcn ntu120/xsub": (DG, FOUR, "probs", {"2s": 89.2, "4s": 89.6}),
    "dgstgcn ntu120/xset": (DG, FOUR, "probs", {"2s": 91.2, "4s": 91.4}),
    "dgstgcn ntu60/xsub-hrnet": (DG, FOUR, "probs", {"2s": 93.9, "4s": 94.1}),
    "dgstgcn ntu60/xview-hrnet": (DG, FOUR, "probs", {"2s": 98.5, "4s": 98.6}),
    "dgstgcn ntu120/xsub-hrnet": (DG, FOUR, "probs", {"2s": 87.3, "4s": 87.5}),
    "dgstgcn ntu120/xset-hrnet": (DG, FOUR, "probs", {"2s": 91.1, "4s": 91.3}),
    "dgstgcn kinetics400/kinetics": (DG, FOUR, "probs", {"2s": 39.5, "4s": 40.3}),
    "dgstgcn babel60/babel": (DG_BABEL, TWO, "probs", {"B": {"mean_class": 36.2, "top1": 39.0},
                                                       "2s": {"mean_class": 38.1, "top1": 40.0}}),
    "dgstgcn babel120/babel": (DG_BABEL, TWO, "probs", {"B": {"mean_class": 32.3, "top1": 31.3},
                                                        "2s": {"mean_class": 33.7, "top1": 32.8}}),
    "dgstgcn smarthome/cs": (DG_SMARTHOME, TWO, "probs", {"2s": {"mean_class": 64.8}}),
    "dgstgcn smarthome/cs-pretrained": (DG_SMARTHOME, TWO, "probs", {"2s": {"mean_class": 65.1}}),
    "dgstgcn smarthome_cv/cv1": (DG_SMARTHOME, TWO, "probs", {"2s": {"mean_class": None}}),
    "dgstgcn smarthome_cv/cv1-pretrained": (DG_SMARTHOME, TWO, "probs", {"2s": {"mean_class": None}}),
    "dualhead ntu60/xsub": (DH, FOUR, "logits", {"J": 90.3, "B": 90.7, "2s": 91.7, "4s": 92.0}),
    "dualhead ntu60/xview": (DH, FOUR, "logits", {"J": 96.1, "B": 95.5, "2s": 96.5, "4s": 96.6}),
    "dualhead ntu120/xsub": (DH, FOUR, "logits", {"J": 84.6, "B": 86.7, "2s": 87.9, "4s": 88.2}),
    "dualhead ntu120/xset": (DH, FOUR, "logits", {"J": 85.9, "B": 87.9, "2s": 89.1, "4s": 89.3}),
    "dualhead kinetics400/kinetics": (DH_K400, FOUR, "logits", {
        "J": {"top1": 36.6, "top5": 59.5}, "B": {"top1": 35.7, "top5": 58.7}, "2s": {"top1": 38.3, "top5": 61.1},
        "4s": {"top1": 38.4, "top5": 61.3}}),
    "msg3d ntu60/xsub": (MS, TWO, "logits", {"2s": 91.5}),
    "msg3d ntu60/xview": (MS, TWO, "logits", {"2s": 96.2}),
    "msg3d ntu120/xsub": (MS120, TWO, "logits", {"2s": 86.9}),
    "msg3d ntu120/xset": (MS120, TWO, "logits", {"2s": 88.4}),
    "msg3d kinetics400/kinetics": (MS_K400, TWO, "logits", {"2s": {"top1": 38.0, "top5": 60.9}}),
    "stgcn ntu60/xsub": (PYSKL, ("j",), "probs", {"J": 81.5}),
    "stgcn ntu60/xview": (PYSKL, ("j",), "probs", {"J": 88.3}),
    "stgcn ntu120/xsub": (PYSKL, ("j",), "probs", {"J": 70.7}),
    "stgcn ntu120/xset": (PYSKL, ("j",), "probs", {"J": 73.2}),
    "stgcnpp ntu60/xsub": (PYSKL, FOUR, "probs", {"4s": 92.6}),
    "stgcnpp ntu60/xview": (PYSKL, FOUR, "probs", {"4s": 97.4}),
    "stgcnpp ntu120/xsub": (PYSKL, FOUR, "probs", {"4s": 88.6}),
    "stgcnpp ntu120/xset": (PYSKL, FOUR, "probs", {"4s": 90.8}),
    "stgcnpp ntu60/xsub-hrnet": (PYSKL, FOUR, "probs", {"4s": 93.2}),
    "stgcnpp ntu60/xview-hrnet": (PYSKL, FOUR, "probs", {"4s": 98.5}),
    "stgcnpp ntu120/xsub-hrnet": (PYSKL, FOUR, "probs", {"4s": 86.4}),
    "stgcnpp ntu120/xset-hrnet": (PYSKL, FOUR, "probs", {"4s": 90.3}),
}


def test_every_cell_has_its_expectation():
    assert set(CELLS) == set(EXPECT)


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_cell_recipe_and_reported_numbers(name):
    settings, streams, fuse_on, numbers = EXPECT[name]
    cell = CELLS[name]
    recipe = cell.recipe()
    assert {k: getattr(recipe, k) for k in settings} == settings
    assert recipe.effective_lr == settings["base_lr"] and recipe.source and cell.source
    assert (cell.streams, cell.fuse_on) == (streams, fuse_on)
    assert cell.metric == ("mean_class" if recipe.best_metric == "mean_class" else "top1")
    got = {r.name: dict(r.values) for r in cell.reported}
    assert got == {k: v if isinstance(v, dict) else {"top1": v} for k, v in numbers.items()}
    for r in cell.reported:
        assert set(r.streams) <= set(cell.streams) and len(r.weights) == len(r.streams)
    if name.endswith("-hrnet"):
        assert cell.layout == "coco17"
    if cell.pretrain:
        assert CELLS[cell.pretrain].dataset == "ntu120" and CELLS[cell.pretrain].split == "xset"


def test_paper_and_repo_modes_differ_only_where_the_paper_says():
    repo, paper = resolve_recipe("dualhead", dataset="ntu60"), resolve_recipe("dualhead", dataset="ntu60", mode="paper")
    assert (repo.base_lr, repo.milestones, repo.epochs) == (0.05, (40, 60, 80), 120)
    assert (paper.base_lr, paper.milestones, paper.epochs, paper.batch_size, paper.weight_decay) == (
        0.1, (40, 60), 80, 64, 5e-4)
    assert "DualHead-Net paper 4.2" in paper.source
    for cell in CELLS.values():
        if (cell.arch, cell.dataset) not in (("dualhead", "ntu60"), ("dualhead", "ntu120")):
            assert cell.recipe("paper") == cell.recipe("repo"), cell.name
    with pytest.raises(ValueError, match="recipe mode 'best'"):
        resolve_recipe("dgstgcn", mode="best")
    assert reference_model_kwargs("msg3d", "kinetics400") == {"num_gcn_scales": 8, "num_g3d_scales": 8}
    assert reference_model_kwargs("msg3d", "ntu60") == {}


def test_recipes_command_prints_the_table():
    from click.testing import CliRunner

    from skeltools.cli import main

    result = CliRunner().invoke(main, ["recipes", "--arch", "dgstgcn", "--dataset", "babel"])
    assert result.exit_code == 0, result.output
    assert result.output.count("dgstgcn babel") == 2
    assert "lr 0.1, batch 128, 150 ep cosine, wd 0.0005, uniform 100f x10, focal loss" in result.output
    assert "B 36.2/39 (mean_class/top1); 2s 38.1/40 (mean_class/top1)" in result.output
    result = CliRunner().invoke(main, ["recipes", "--arch", "dualhead", "--dataset", "ntu60", "--recipe", "paper"])
    assert "lr 0.1, batch 64, 80 ep x0.1@40,60" in result.output and result.output.count("dualhead ntu60/") == 2
    assert CliRunner().invoke(main, ["recipes", "--arch", "nope"]).exit_code == 1

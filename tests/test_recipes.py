"""Recipe presets reproduce the references; overrides are typed and checked; the LR scaling rule."""
from __future__ import annotations

import pytest

from trainer.recipes import RECIPES, Recipe, resolve_recipe


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

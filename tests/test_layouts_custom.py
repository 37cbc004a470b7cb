"""Custom layouts: validation errors name the file and key; TOML/JSON round trips; resolving names, files, dicts."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from schemas import store as schema
from schemas.layouts import (LAYOUTS, Layout, layout_attrs, layout_from_attrs, load_layout, resolve_layout)
from skeltools.cli import main

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "upper_body13.toml"
TINY = {"name": "tiny", "joints": ["hip", "spine", "head", "arm"], "parents": ["hip", "hip", "spine", 1]}


def test_example_layout_loads():
    layout = load_layout(EXAMPLE)
    layout.check()
    assert layout.name == "upper_body13" and layout.num_joints == 13
    assert layout.joint_names[2] == "spine_shoulder" and layout.root == 2 and layout.center == 2
    assert layout.bone_parents == (1, 2, 2, 2, 3, 2, 5, 6, 7, 2, 9, 10, 11)
    assert layout.edges == tuple((v, p) for v, p in enumerate(layout.bone_parents) if v != p)
    assert layout.left_right == ((5, 9), (6, 10), (7, 11), (8, 12))


def test_names_and_indices_mix_and_defaults():
    layout = Layout.from_dict(TINY)
    assert layout.bone_parents == (0, 0, 1, 1) and layout.center == 0 and layout.root == 0
    assert layout.edges == ((1, 0), (2, 1), (3, 1)) and layout.description == "" and layout.left_right == ()
    root_as_minus_one = Layout.from_dict({**TINY, "parents": [-1, 0, "spine", "spine"], "center": "spine",
                                          "edges": [["spine", "hip"], [2, "spine"], ["arm", 1]]})
    assert root_as_minus_one.bone_parents == (0, 0, 1, 1) and root_as_minus_one.center == 1
    assert root_as_minus_one.edges == ((1, 0), (2, 1), (3, 1))


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_file_round_trip(tmp_path, suffix):
    layout = load_layout(EXAMPLE)
    d = layout.to_dict()
    path = tmp_path / f"mine{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(d))
    else:  # a TOML writer is not in the standard library: write the few value types by hand
        def value(v):
            return json.dumps(v) if not isinstance(v, list) else "[" + ", ".join(value(x) for x in v) + "]"
        path.write_text("".join(f"{k} = {value(v)}\n" for k, v in d.items()))
    again = load_layout(path)
    assert again == layout and Layout.from_dict(again.to_dict()) == layout
    assert resolve_layout(path) == layout and resolve_layout(str(path)) == layout and resolve_layout(d) == layout


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_builtin_layouts_round_trip(name):
    layout = LAYOUTS[name]
    assert Layout.from_dict(layout.to_dict()) == layout and resolve_layout(name) is layout
    assert layout_attrs(layout) == {"layout": name} and layout_from_attrs({"layout": name}) is layout


def test_custom_layout_attrs():
    layout = Layout.from_dict(TINY)
    attrs = layout_attrs(layout)
    assert attrs["layout"] == "tiny" and attrs["layout_definition"]["parents"] == [0, 0, 1, 1]
    assert layout_from_attrs(attrs) == layout
    with pytest.raises(ValueError, match="layout_definition is named 'tiny', but layout is 'other'"):
        layout_from_attrs({**attrs, "layout": "other"})


@pytest.mark.parametrize("change,key,message", [
    ({"joints": ["hip", "spine", "hip", "arm"]}, "joints[2]", "'hip' is not unique (also joints[0])"),
    ({"joints": ["hip", "", "head", "arm"]}, "joints[1]", "expected a non-empty string"),
    ({"parents": ["hip", "hip", "spine"]}, "parents", "expected a list of 4 parents"),
    ({"parents": ["hip", "hip", "neck", 1]}, "parents[2]", "'neck' is not one of the joints"),
    ({"parents": ["hip", "hip", "spine", 7]}, "parents[3]", "index 7 is out of range 0..3"),
    ({"parents": ["hip", "spine", "spine", 1]}, "parents", "exactly one root"),
    ({"parents": ["spine", "head", "spine", 1]}, "parents",
     "exactly one root (a joint that is its own parent, or -1), found 0"),
    ({"parents": ["hip", "head", "spine", 1]}, "parents", "head, spine form a cycle"),
    ({"edges": [["hip", "spine"], ["spine", "head"]]}, "edges", "2 edges do not form one tree over 4 joints"),
    ({"edges": [["hip", "spine"], ["spine", "hip"], ["head", "arm"]]}, "edges", "do not form one tree"),
    ({"edges": [["hip", "hip"], ["spine", "head"], ["head", "arm"]]}, "edges[0]", "joins 'hip' to itself"),
    ({"edges": [["hip"]]}, "edges[0]", "expected a pair"),
    ({"center": "tail"}, "center", "'tail' is not one of the joints"),
    ({"left_right": [["arm", "head"], ["arm", "spine"]]}, "left_right", "a joint is in more than one pair"),
    ({"colour": "red"}, "colour", "unknown key"),
    ({"name": ""}, "name", "expected a non-empty string"),
    ({"name": "ntu25"}, "name", "'ntu25' is a built-in layout with another definition"),
    ({"description": 3}, "description", "expected a string"),
    ({"parents": None}, "parents", "expected a list of 4 parents"),
    ({"parents": ["hip", "hip", True, 1]}, "parents[2]", "expected a joint name or index"),
])
def test_each_rule_names_the_file_and_key(tmp_path, change, key, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({**TINY, **change}))
    with pytest.raises(ValueError) as err:
        load_layout(path)
    assert str(err.value).startswith(f"{path}: {key}: ") and message in str(err.value), str(err.value)


def test_missing_keys_and_file_problems(tmp_path):
    for key in ("joints", "parents"):
        path = tmp_path / f"no_{key}.json"
        path.write_text(json.dumps({k: v for k, v in TINY.items() if k != key}))
        with pytest.raises(ValueError, match=f"^{path}: {key}: missing$"):
            load_layout(path)
    no_name = tmp_path / "from_stem.toml"
    no_name.write_text('joints = ["a", "b"]\nparents = ["a", "a"]\n')
    assert load_layout(no_name).name == "from_stem"
    broken = tmp_path / "broken.toml"
    broken.write_text("joints = [\n")
    with pytest.raises(ValueError, match=f"^{broken}: not valid TOML"):
        load_layout(broken)
    with pytest.raises(ValueError, match="must end in .toml or .json"):
        load_layout(tmp_path / "layout.yaml")
    with pytest.raises(ValueError, match="cannot read the layout file"):
        load_layout(tmp_path / "absent.toml")
    with pytest.raises(ValueError, match="unknown layout 'ntu26'.*or a .toml/.json layout file"):
        resolve_layout("ntu26")
    array = tmp_path / "list.json"
    array.write_text("[1, 2]")
    with pytest.raises(ValueError, match=f"^{array}: expected a table of layout keys"):
        load_layout(array)


def test_store_schema_checks_the_layout():
    attrs = {"layout": "tiny", "layout_definition": Layout.from_dict(TINY).to_dict()}
    arrays = {"joint": ((10, 1, 5, 3), "float32")}
    problems = schema.validate(attrs, arrays, {}, 0)
    assert "array 'joint': 5 joints, layout 'tiny' has 4" in problems
    assert any("unknown layout 'tiny'" in p for p in schema.validate({"layout": "tiny"}, arrays, {}, 0))
    assert "attrs: 'layout_definition' should be dict, is list" in schema.validate(
        {"layout": "tiny", "layout_definition": []}, arrays, {}, 0)


def test_layout_command(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["layout"])
    assert result.exit_code == 0 and all(name in result.output for name in LAYOUTS)
    out = tmp_path / "upper.json"
    result = runner.invoke(main, ["layout", str(EXAMPLE), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "upper_body13: 13 joints, root spine_shoulder, centre spine_shoulder" in result.output
    assert "   6 left_elbow           <- left_shoulder" in result.output
    assert load_layout(out) == load_layout(EXAMPLE)
    bad = tmp_path / "bad.toml"
    bad.write_text('joints = ["a", "b"]\nparents = ["a", "c"]\n')
    result = runner.invoke(main, ["layout", str(bad)])
    assert result.exit_code == 1 and result.output.strip() == f"error: {bad}: parents[1]: 'c' is not one of the joints"


def test_models_build_their_graph_from_a_layout_file():
    import torch

    from trainer.models import build_model, graph

    layout = load_layout(EXAMPLE)
    torch.manual_seed(0)
    model = build_model("stgcn", num_classes=3, layout=str(EXAMPLE))  # a path resolves like a name
    expected = graph.stgcn_partitions(layout.edges, 13, layout.center)
    assert torch.equal(next(b for n, b in model.named_buffers() if n.endswith(".A")), expected)
    msg3d = build_model("msg3d", num_classes=3, layout=layout.to_dict())
    scales = next(b for n, b in msg3d.named_buffers() if n.endswith("A_scales"))
    one_hop = graph.k_hop(graph.binary_adjacency(layout.edges, 13), 1)
    assert torch.equal(scales[13:26], graph.normalize_symmetric(one_hop))
    assert build_model("dgstgcn", num_classes=3, layout=layout)(torch.zeros(1, 2, 8, 13, 3)).shape == (1, 3)

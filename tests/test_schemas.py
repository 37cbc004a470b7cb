"""schemas/: layouts, dataset definitions and split rules, the store schema."""
from __future__ import annotations

from collections import Counter

import pytest

from schemas import LAYOUTS, get_layout
from schemas import store as schema
from schemas.datasets import (get_dataset, ntu_class_names, ntu_missing_samples, parse_ntu_name,
                              read_sample_list)


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_layouts_are_well_formed(name):
    layout = get_layout(name)
    layout.check()
    assert len(layout.bone_pairs) == layout.num_joints


def test_ntu25_matches_reference_bones_and_graphs():
    ntu = get_layout("ntu25")
    one_based = {(c + 1, p + 1) for c, p in ntu.bone_pairs}
    assert one_based == {(1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9),
                         (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18),
                         (20, 19), (22, 23), (21, 21), (23, 8), (24, 25), (25, 12)}
    assert ntu.center == 20 and ntu.joint_names[20] == "SpineShoulder"
    hands = {(22, 23), (23, 8), (24, 25), (25, 12)}
    assert hands <= {(c + 1, p + 1) for c, p in ntu.edges}
    pyskl = {(c + 1, p + 1) for c, p in ntu.graph_edges("pyskl")}
    assert {(22, 8), (23, 8), (24, 12), (25, 12)} <= pyskl and not {(22, 23), (24, 25)} & pyskl
    assert len(pyskl) == 24


def test_bad_layout_is_rejected():
    ntu = get_layout("ntu25")
    broken = type(ntu)(**{**ntu.__dict__, "bone_parents": (30,) + ntu.bone_parents[1:]})
    with pytest.raises(ValueError, match="out of range"):
        broken.check()
    cyclic = type(ntu)(**{**ntu.__dict__, "edges": ntu.edges[:-1] + ((0, 20),)})
    with pytest.raises(ValueError, match="one tree"):
        cyclic.check()
    with pytest.raises(ValueError, match="unknown layout"):
        get_layout("ntu26")


def test_class_names():
    names = ntu_class_names()
    assert len(names) == 120 and len(set(names)) == 120
    assert names[0] == "drink water" and names[57] == "handshaking"
    assert get_dataset("ntu60").class_names == names[:60] and get_dataset("ntu120").num_classes == 120


def test_missing_lists_ship_as_package_data(ntu_fixtures):
    ntu60, ntu120 = ntu_missing_samples("ntu60"), ntu_missing_samples("ntu120")
    assert len(ntu60) == 302 and len(ntu120) == 535 and ntu60 < ntu120
    assert ntu60 == read_sample_list(ntu_fixtures / "NTU_RGBD_samples_with_missing_skeletons.txt")
    assert ntu120 == read_sample_list(ntu_fixtures / "NTU_RGBD120_samples_with_missing_skeletons.txt")


def test_parse_ntu_name():
    assert parse_ntu_name("S018C002P042R001A120.skeleton") == dict(setup=18, camera=2, subject=42, replication=1,
                                                                   action=120)
    assert parse_ntu_name("video_0001") is None


@pytest.mark.parametrize("dataset,listing,expected", [
    ("ntu60", "ntu60_skes_available_name.txt",
     {"xsub_train": 40091, "xsub_test": 16487, "xview_train": 37646, "xview_test": 18932}),
    ("ntu120", "ntu120_skes_available_name.txt",
     {"xsub_train": 63026, "xsub_test": 50919, "xset_train": 54468, "xset_test": 59477}),
])
def test_official_split_sizes(ntu_fixtures, dataset, listing, expected):
    spec = get_dataset(dataset)
    names = read_sample_list(ntu_fixtures / listing)
    counts = Counter()
    for name in names:
        counts.update(k for k, v in spec.split_flags(parse_ntu_name(name)).items() if v)
    assert dict(counts) == expected
    assert set(spec.split_columns()) == set(expected)


def test_store_schema_validate():
    attrs = {key: kind() if isinstance(kind, type) else kind[0]() for key, (kind, _) in schema.ATTRS.items()}
    attrs |= {"schema": 1, "layout": "ntu25", "coords": "xyz", "persons": 2, "num_samples": 3}
    arrays = {"joint": ((10, 2, 25, 3), "float32"), "offsets": ((4,), "int64"), "bone": ((10, 2, 25, 3), "float32")}
    columns = {"sample_id": "string", "label": "int16", "length": "int32", "n_persons": "int8"}
    assert schema.validate(attrs, arrays, columns, 3) == []
    problems = schema.validate({**attrs, "coords": "uvw"}, {**arrays, "bone": ((9, 2, 25, 3), "float64")},
                               {**columns, "label": "int64"}, 4)
    assert any("coords 'uvw'" in p for p in problems)
    assert any("'bone': dtype float64" in p for p in problems)
    assert any("'bone': shape" in p for p in problems)
    assert any("'offsets': shape (4,), expected (5,)" in p for p in problems)
    assert any("column 'label' is int64" in p for p in problems)
    assert any("4 rows, attrs say 3" in p for p in problems)
    assert schema.validate({}, {}, {}, 0)[0] == "attrs: missing 'schema'"

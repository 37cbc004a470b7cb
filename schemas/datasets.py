"""Dataset definitions: class names and official split rules.

A split rule maps a sample's metadata to the part of a protocol it belongs to (or None: not in that protocol).
Parts become boolean index columns named ``{protocol}_{part}`` (``xsub_train``, ``xsub_test``, ``cs_val``, ...).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Callable, Mapping

NTU60_XSUB_TRAIN_SUBJECTS = frozenset(
    (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
)
NTU120_XSUB_TRAIN_SUBJECTS = NTU60_XSUB_TRAIN_SUBJECTS | frozenset(
    (45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86, 89, 91, 92,
     93, 94, 95, 97, 98, 100, 103)
)
NTU60_XVIEW_TRAIN_CAMERAS = frozenset((2, 3))

_NTU_NAME = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")
NTU_FIELDS = ("setup", "camera", "subject", "replication", "action")


def parse_ntu_name(name: str) -> dict[str, int] | None:
    """``SsssCcccPpppRrrrAaaa`` (anywhere in ``name``) -> its five 1-based numbers, or None."""
    m = _NTU_NAME.search(name)
    if m is None:
        return None
    return dict(zip(NTU_FIELDS, map(int, m.groups())))


SplitRule = Callable[[Mapping], "str | None"]  # metadata -> "train" | "val" | "test" | None


@dataclass(frozen=True)
class DatasetDef:
    name: str
    layout: str
    class_names: tuple[str, ...]
    protocols: dict[str, SplitRule]  # protocol -> the part a sample belongs to
    description: str = ""
    parts: tuple[str, ...] = ("train", "test")
    protocol_parts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # a protocol's own parts

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def parts_of(self, protocol: str) -> tuple[str, ...]:
        return self.protocol_parts.get(protocol, self.parts)

    def split_columns(self) -> tuple[str, ...]:
        return tuple(f"{p}_{part}" for p in self.protocols for part in self.parts_of(p))

    def split_flags(self, meta: Mapping) -> dict[str, bool]:
        """The boolean split columns of one sample."""
        flags = {}
        for protocol, rule in self.protocols.items():
            member = rule(meta)
            flags |= {f"{protocol}_{part}": part == member for part in self.parts_of(protocol)}
        return flags


def _read_lines(name: str) -> tuple[str, ...]:
    text = resources.files("schemas").joinpath("data", name).read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


@cache
def ntu_class_names() -> tuple[str, ...]:
    """A001..A120 in order; the first 60 are NTU RGB+D 60's."""
    return _read_lines("ntu120_class_names.txt")


@cache
def kinetics_class_names() -> tuple[str, ...]:
    """The 400 Kinetics-400 classes in label-index order."""
    return _read_lines("kinetics400_class_names.txt")


@cache
def ntu_missing_samples(dataset: str) -> frozenset[str]:
    """The official samples with missing or incomplete skeletons (302 for ntu60, 535 for ntu120)."""
    return frozenset(_read_lines(f"{dataset}_missing.txt"))


def read_sample_list(path) -> frozenset[str]:
    """A list of sample names, one per line, with or without the official prose header and ``.skeleton``."""
    names = set()
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            m = _NTU_NAME.search(line)
            if m is not None:
                names.add(m.group(0))
    return frozenset(names)


def _train_if(is_train: Callable[[Mapping], bool]) -> SplitRule:
    """A two-part rule: train when ``is_train(meta)``, else test."""
    return lambda meta: "train" if is_train(meta) else "test"


def _ntu60() -> DatasetDef:
    return DatasetDef(
        name="ntu60",
        layout="ntu25",
        class_names=ntu_class_names()[:60],
        protocols={
            "xsub": _train_if(lambda m: m["subject"] in NTU60_XSUB_TRAIN_SUBJECTS),
            "xview": _train_if(lambda m: m["camera"] in NTU60_XVIEW_TRAIN_CAMERAS),
        },
        description="NTU RGB+D 60: S001-S017, A001-A060, 56,880 samples (56,578 with skeletons).",
    )


def _ntu120() -> DatasetDef:
    return DatasetDef(
        name="ntu120",
        layout="ntu25",
        class_names=ntu_class_names(),
        protocols={
            "xsub": _train_if(lambda m: m["subject"] in NTU120_XSUB_TRAIN_SUBJECTS),
            "xset": _train_if(lambda m: m["setup"] % 2 == 0),
        },
        description="NTU RGB+D 120: S001-S032, A001-A120, 114,480 samples (113,945 with skeletons).",
    )


def _kinetics400() -> DatasetDef:
    return DatasetDef(
        name="kinetics400",
        layout="coco18",
        class_names=kinetics_class_names(),
        protocols={"kinetics": _train_if(lambda m: m["train"] == 1)},
        description="Kinetics-Skeleton (st-gcn release): kinetics_train (240,436 quoted) and the released val set "
                    "as kinetics_test (19,796 with skeletons); the part comes from the label file a video is in.",
    )


# Class lists of the 2D datasets pyskl ships annotation pickles for (gym_hrnet.pkl, ucf101_hrnet.pkl, ...), in label
# order: pyskl tools/data/label_map/{gym,ucf101,hmdb51,diving48}.txt (kennymckormick/pyskl@3f6795f). Their splits
# come from the pickle's ``split`` (skeltools convert pyskl), so these definitions have no split rules.
_PYSKL_2D = {
    "gym99": "FineGym Gym99: 99 gymnastics element classes (pyskl gym_hrnet.pkl, HRNet 2D poses in true boxes).",
    "ucf101": "UCF101: 101 classes; three official train/test splits (pyskl ucf101_hrnet.pkl, HRNet 2D poses).",
    "hmdb51": "HMDB51: 51 classes; three official train/test splits (pyskl hmdb51_hrnet.pkl, HRNet 2D poses).",
    "diving48": "Diving48: 48 dive classes (pyskl diving48_hrnet.pkl, HRNet 2D poses).",
}


def _pyskl_2d(name: str) -> DatasetDef:
    return DatasetDef(name=name, layout="coco17", class_names=_read_lines(f"{name}_class_names.txt"), protocols={},
                      description=_PYSKL_2D[name])


SMARTHOME_CLASSES = (
    "Cook.Cleandishes", "Cook.Cleanup", "Cook.Cut", "Cook.Stir", "Cook.Usestove", "Cutbread", "Drink.Frombottle",
    "Drink.Fromcan", "Drink.Fromcup", "Drink.Fromglass", "Eat.Attable", "Eat.Snack", "Enter", "Getup", "Laydown",
    "Leave", "Makecoffee.Pourgrains", "Makecoffee.Pourwater", "Maketea.Boilwater", "Maketea.Insertteabag",
    "Pour.Frombottle", "Pour.Fromcan", "Pour.Fromkettle", "Readbook", "Sitdown", "Takepills", "Uselaptop",
    "Usetelephone", "Usetablet", "Walk", "WatchTV",
)  # the skeleton repositories' order (2s-AGCN for daily living, UNIK); I3D's CS list swaps the two Use* tablets
SMARTHOME_CV_CLASSES = (
    "Cutbread", "Drink.Frombottle", "Drink.Fromcan", "Drink.Fromcup", "Drink.Fromglass", "Eat.Attable", "Eat.Snack",
    "Enter", "Getup", "Leave", "Pour.Frombottle", "Pour.Fromcan", "Readbook", "Sitdown", "Takepills", "Uselaptop",
    "Usetablet", "Usetelephone", "Walk",
)
_SMARTHOME_NAME = re.compile(r"(?P<activity>[A-Za-z.]+)_p(?P<subject>\d+)_r(?P<repetition>\d+)_v(?P<video>\d+)"
                             r"_c(?P<camera>\d+)")
SMARTHOME_FIELDS = ("subject", "repetition", "video", "camera")
# (protocol, part) -> the official list file (I3D baseline ``splits/``); CV2's validation and test lists are
# byte-identical to CV1's, so they ship once.
_SMARTHOME_LISTS = {
    ("cs", "train"): "train_CS", ("cs", "val"): "validation_CS", ("cs", "test"): "test_CS",
    ("cv1", "train"): "train_CV1", ("cv1", "val"): "validation_CV1", ("cv1", "test"): "test_CV1",
    ("cv2", "train"): "train_CV2", ("cv2", "val"): "validation_CV1", ("cv2", "test"): "test_CV1",
}


def parse_smarthome_name(name: str) -> dict | None:
    """``Activity_pSS_rRR_vVV_cCC`` (at the start of ``name``) -> activity, numbers and the clip name, or None."""
    m = _SMARTHOME_NAME.match(name)
    if m is None:
        return None
    return {"name": m.group(0), "activity": m["activity"]} | {k: int(m[k]) for k in SMARTHOME_FIELDS}


@cache
def smarthome_split_lists() -> dict[tuple[str, str], frozenset[str]]:
    """(protocol, part) -> the clip names (without ``.mp4``) of the official Toyota Smarthome lists."""
    return {key: frozenset(line.removesuffix(".mp4") for line in _read_lines(f"smarthome/{file}.txt"))
            for key, file in _SMARTHOME_LISTS.items()}


def _listed(protocol: str) -> SplitRule:
    lists = {part: names for (p, part), names in smarthome_split_lists().items() if p == protocol}
    return lambda meta: next((part for part, names in lists.items() if meta["name"] in names), None)


def _smarthome() -> DatasetDef:
    return DatasetDef(
        name="smarthome",
        layout="smarthome13",
        class_names=SMARTHOME_CLASSES,
        protocols={"cs": _listed("cs")},
        parts=("train", "val", "test"),
        description="Toyota Smarthome (trimmed), cross-subject: 31 classes, 16,115 clips.",
    )


def _smarthome_cv() -> DatasetDef:
    return DatasetDef(
        name="smarthome_cv",
        layout="smarthome13",
        class_names=SMARTHOME_CV_CLASSES,
        protocols={"cv1": _listed("cv1"), "cv2": _listed("cv2")},
        parts=("train", "val", "test"),
        description="Toyota Smarthome (trimmed), cross-view CV1 and CV2: the 19 classes seen from every camera.",
    )


@cache
def babel_action_index() -> dict[str, int]:
    """BABEL's ``action_label_2_idx.json``: 150 action categories -> index (BABEL-60: < 60, BABEL-120: < 120)."""
    return json.loads(resources.files("schemas").joinpath("data", "babel_action_label_2_idx.json").read_text())


@cache
def babel_sid_splits() -> dict[int, str]:
    """BABEL sequence id -> "train" | "val" | "test", from ``amass_splits.json`` (shipped as sid lists)."""
    lists = json.loads(resources.files("schemas").joinpath("data", "babel_amass_splits.json").read_text())
    return {sid: split for split, sids in lists.items() for sid in sids}


def _babel(num_classes: int) -> DatasetDef:
    names = sorted((i, name) for name, i in babel_action_index().items() if i < num_classes)
    return DatasetDef(
        name=f"babel{num_classes}",
        layout="ntu25",
        class_names=tuple(name for _, name in names),
        protocols={"babel": lambda meta: meta["split"]},
        parts=("train", "val", "test"),
        description=f"BABEL-{num_classes} (AMASS mocap as NTU-25 joints): 150-frame chunks at 30 fps, long-tailed; "
                    "the test part is unlabelled (label -1).",
    )


GENERIC_PROTOCOL = "generic"
PARTS = ("train", "val", "test")


def generic_dataset(class_names, protocol_parts: Mapping[str, tuple[str, ...]], *, layout: str,
                    name: str = "generic") -> DatasetDef:
    """The dataset of ``convert generic``: classes from the labels; each protocol (the seeded ``generic`` split, or
    the label file's split columns) has its parts, and a sample's metadata names its part of each under ``parts``
    (``{"parts": {"generic": "train"}}``; a protocol missing there: the sample is in none of its parts)."""
    return DatasetDef(
        name=name,
        layout=layout,
        class_names=tuple(class_names),
        protocols={p: (lambda meta, p=p: meta["parts"].get(p)) for p in protocol_parts},
        protocol_parts={p: tuple(parts) for p, parts in protocol_parts.items()},
        description="your own keypoints (skeltools convert generic)",
    )


_FACTORIES = {"ntu60": _ntu60, "ntu120": _ntu120, "kinetics400": _kinetics400, "smarthome": _smarthome, "smarthome_cv": _smarthome_cv,
              "babel60": lambda: _babel(60), "babel120": lambda: _babel(120),
              **{name: (lambda name=name: _pyskl_2d(name)) for name in _PYSKL_2D}}
DATASETS = tuple(_FACTORIES)


@cache
def get_dataset(name: str) -> DatasetDef:
    try:
        return _FACTORIES[name]()
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}") from None

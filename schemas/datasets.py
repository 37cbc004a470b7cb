"""Dataset definitions: class names and official split rules.

A split rule maps a sample's metadata to the parts it belongs to. Parts become boolean index columns named
``{protocol}_{part}`` (``xsub_train``, ``xsub_test``, ...).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
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


SplitRule = Callable[[Mapping[str, int]], bool]  # metadata -> True for the train part


@dataclass(frozen=True)
class DatasetDef:
    name: str
    layout: str
    class_names: tuple[str, ...]
    protocols: dict[str, SplitRule]  # protocol -> "is this sample in the train part?"
    description: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def split_columns(self) -> tuple[str, ...]:
        return tuple(f"{p}_{part}" for p in self.protocols for part in ("train", "test"))

    def split_flags(self, meta: Mapping[str, int]) -> dict[str, bool]:
        """The boolean split columns of one sample."""
        flags = {}
        for protocol, is_train in self.protocols.items():
            train = bool(is_train(meta))
            flags[f"{protocol}_train"] = train
            flags[f"{protocol}_test"] = not train
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


def _ntu60() -> DatasetDef:
    return DatasetDef(
        name="ntu60",
        layout="ntu25",
        class_names=ntu_class_names()[:60],
        protocols={
            "xsub": lambda m: m["subject"] in NTU60_XSUB_TRAIN_SUBJECTS,
            "xview": lambda m: m["camera"] in NTU60_XVIEW_TRAIN_CAMERAS,
        },
        description="NTU RGB+D 60: S001-S017, A001-A060, 56,880 samples (56,578 with skeletons).",
    )


def _ntu120() -> DatasetDef:
    return DatasetDef(
        name="ntu120",
        layout="ntu25",
        class_names=ntu_class_names(),
        protocols={
            "xsub": lambda m: m["subject"] in NTU120_XSUB_TRAIN_SUBJECTS,
            "xset": lambda m: m["setup"] % 2 == 0,
        },
        description="NTU RGB+D 120: S001-S032, A001-A120, 114,480 samples (113,945 with skeletons).",
    )


def _kinetics400() -> DatasetDef:
    return DatasetDef(
        name="kinetics400",
        layout="coco18",
        class_names=kinetics_class_names(),
        protocols={"kinetics": lambda m: m["train"] == 1},
        description="Kinetics-Skeleton (st-gcn release): kinetics_train (240,436 quoted) and the released val set "
                    "as kinetics_test (19,796 with skeletons); the part comes from the label file a video is in.",
    )


_FACTORIES = {"ntu60": _ntu60, "ntu120": _ntu120, "kinetics400": _kinetics400}
DATASETS = tuple(_FACTORIES)


@cache
def get_dataset(name: str) -> DatasetDef:
    try:
        return _FACTORIES[name]()
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}") from None

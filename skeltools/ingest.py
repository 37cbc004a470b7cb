"""Raw inputs -> samples preprocessed exactly as a store's converter did (the input side of ``skeltools predict``).

``INPUT_FORMATS`` is a per-format dispatch table keyed by the store ``source`` attr each format produces. An entry
recognises its files, lists them as the converter's work items in the converter's order, and rebuilds the
converter's options from a store's attrs; the per-sample processing is the converter's own
``options.process(item)``, so a raw file and its converted store sample are the same array. Another raw format
plugs in as one more entry.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from schemas.layouts import layout_from_attrs


@dataclass(frozen=True)
class InputFormat:
    source: str  # the store ``source`` attr of stores converted from this format
    description: str
    sniff: Callable[[Path], bool]  # does this file belong to the format?
    items: Callable[[list[Path]], list]  # the format's files -> work items, in the converter's order
    options: Callable[[Mapping[str, Any]], Any]  # store attrs -> the converter's options (with ``process(item)``)


def _json_keys(path: Path) -> set[str]:
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return set()
    return set(doc) if isinstance(doc, dict) else set()


def _ntu_items(files: list[Path]) -> list[str]:
    return [str(p) for p in sorted(files, key=lambda p: (p.name.split(".")[0], str(p)))]


def _ntu_options(attrs):
    from skeltools.convert import NtuOptions

    return NtuOptions.from_attrs(attrs)


def _openpose_options(attrs):
    from skeltools.convert_openpose import OpenPoseOptions

    return OpenPoseOptions.from_attrs(attrs)


def _kinetics_items(files: list[Path]) -> list:
    from skeltools.convert_openpose import json_folders, kinetics_items

    return kinetics_items(json_folders(sorted(files)))


def _frame_items(files: list[Path]) -> list:
    from skeltools.convert_openpose import frame_items, json_folders

    return frame_items(json_folders(sorted(files)))


def _is_keypoint_file(path: Path) -> bool:
    """A .npy/.npz array, or a CSV whose header starts ``frame,person,joint`` (not a label table)."""
    from skeltools.readers.generic import CSV_INDEX_COLUMNS

    if path.suffix == ".csv":
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            return tuple(h.strip().lower() for h in f.readline().split(",")[:3]) == CSV_INDEX_COLUMNS
    return path.suffix in (".npy", ".npz")


def _generic_items(files: list[Path]) -> list[str]:
    return [str(p) for p in sorted(files, key=lambda p: (p.stem, str(p)))]


def _generic_options(attrs):
    from skeltools.convert_generic import GenericOptions

    return GenericOptions.from_attrs(attrs)


INPUT_FORMATS: dict[str, InputFormat] = {f.source: f for f in (
    InputFormat("ntu-skeleton", "NTU RGB+D .skeleton files", lambda p: p.suffix == ".skeleton", _ntu_items,
                _ntu_options),
    InputFormat("kinetics-skeleton", "Kinetics-Skeleton JSON (one file per video)",
                lambda p: p.suffix == ".json" and "data" in _json_keys(p), _kinetics_items, _openpose_options),
    InputFormat("openpose-frames", "OpenPose per-frame JSON",
                lambda p: p.suffix == ".json" and "people" in _json_keys(p), _frame_items, _openpose_options),
    InputFormat("generic", "keypoint arrays (.npy, .npz, frame,person,joint CSV)", _is_keypoint_file,
                _generic_items, _generic_options),
)}
_SUFFIXES = (".skeleton", ".json", ".npy", ".npz", ".csv")


@dataclass
class RawSamples:
    """Preprocessed samples of raw inputs, in the converter's order; ``problems``: inputs that gave no sample."""

    source: str
    sample_ids: list[str] = field(default_factory=list)
    samples: list[np.ndarray] = field(default_factory=list)  # each (T, M, V, C) float32
    problems: list[str] = field(default_factory=list)


def is_store(path) -> bool:
    return (Path(path) / "zarr.json").is_file()


def _files(inputs: Sequence[Path]) -> list[Path]:
    files = []
    for item in inputs:
        if item.is_dir():
            files.extend(p for p in sorted(item.rglob("*")) if p.is_file() and p.suffix in _SUFFIXES
                         and not p.name.endswith("_label.json") and (p.suffix != ".csv" or _is_keypoint_file(p)))
        elif item.is_file():
            files.append(item)
        else:
            raise FileNotFoundError(f"{item}: no such file or folder")
    return files


def detect_format(inputs: Sequence) -> tuple[InputFormat, list[Path]]:
    """The one format of the raw ``inputs`` (files, or folders searched recursively) and its files."""
    inputs = [Path(i) for i in inputs]
    files = _files(inputs)
    if not files:
        raise ValueError(f"{', '.join(map(str, inputs))}: no input files found (expected NTU .skeleton files, "
                         f"OpenPose per-frame JSON, Kinetics-Skeleton JSON, keypoint arrays or a skeltools store)")
    # JSON folders are sniffed by their first file, .skeleton files by name alone (a video's frames share a format)
    first: dict[Path, InputFormat] = {}
    found: dict[str, list[Path]] = {}
    for f in files:
        fmt = first.get(f.parent) if f.suffix == ".json" else None
        fmt = fmt or next((x for x in INPUT_FORMATS.values() if x.sniff(f)), None)
        if fmt is None:
            raise ValueError(f"{f}: input format not recognised (expected NTU .skeleton files, OpenPose per-frame "
                             f"JSON with 'people', Kinetics-Skeleton JSON with 'data', keypoint arrays or a store)")
        first.setdefault(f.parent, fmt)
        found.setdefault(fmt.source, []).append(f)
    if len(found) > 1:
        kinds = ", ".join(f"{len(v)} {INPUT_FORMATS[k].description}" for k, v in found.items())
        raise ValueError(f"the inputs mix formats ({kinds}); predict one format at a time")
    source, files = next(iter(found.items()))
    return INPUT_FORMATS[source], files


def check_compatible(what: str, attrs: Mapping[str, Any], *, source: str | None = None, layout: str | None = None,
                     num_joints: int | None = None) -> None:
    """Raise a clear error when data (raw files of format ``source``, or a store of ``layout``) cannot feed a
    model trained on a store with ``attrs``: another joint count, another layout, or raw data of another format."""
    want = layout_from_attrs(attrs)
    if num_joints is not None and num_joints != want.num_joints:
        raise ValueError(f"{what}: {num_joints} joints per person, but the model was trained on layout "
                         f"{want.name} with {want.num_joints} joints")
    if layout is not None and layout != want.name:
        raise ValueError(f"{what}: layout {layout}, but the model was trained on layout {want.name}")
    if source is not None and source != attrs["source"]:
        raise ValueError(f"{what}: {INPUT_FORMATS[source].description}, but the model was trained on "
                         f"{attrs['source']} data (layout {want.name}); predict applies the training "
                         f"preprocessing, so it takes raw inputs of that format, or a store")


def read_raw(inputs: Sequence, attrs: Mapping[str, Any], *, progress: bool = False) -> RawSamples:
    """Detect the format of ``inputs`` and preprocess every sample as the converter that wrote a store with
    ``attrs`` did. Inputs that fail or hold nobody are listed in ``problems``; none left is an error."""
    from tqdm import tqdm

    fmt, files = detect_format(inputs)
    what = ", ".join(map(str, inputs))
    check_compatible(what, attrs, source=fmt.source)
    options = fmt.options(attrs)
    out = RawSamples(fmt.source)
    for item in tqdm(fmt.items(files), desc="preprocess", unit="sample", disable=not progress, leave=False):
        result, data = options.process(item)
        if data is None:
            out.problems.append(f"{result.file}: {result.status}: {result.reason}")
            continue
        check_compatible(result.file, attrs, num_joints=data.shape[2])
        out.sample_ids.append(result.sample_id)
        out.samples.append(data)
    if not out.samples:
        raise ValueError(f"{what}: no input gave a sample:\n  " + "\n  ".join(out.problems))
    return out


def default_attrs(dataset: str) -> dict[str, Any]:
    """The sample attrs of a store converted from ``dataset``'s raw files with the converter's defaults (for a
    reference checkpoint, which comes without a store)."""
    from schemas.datasets import get_dataset
    from schemas.store import SAMPLE_ATTRS
    from skeltools import __version__

    spec = get_dataset(dataset)
    if dataset in ("ntu60", "ntu120"):
        from skeltools.convert import NtuOptions, _attrs

        attrs = _attrs(spec, NtuOptions(dataset=dataset), 0, 0, __version__)
    elif dataset == "kinetics400":
        from skeltools.convert_openpose import OpenPoseOptions, _attrs

        attrs = _attrs(spec, OpenPoseOptions(), 0, 0, __version__)
    else:
        raise ValueError(f"{dataset}: the default preprocessing is known for ntu60, ntu120 and kinetics400; "
                         f"give --store with a store converted like the checkpoint's training data instead")
    return {k: attrs[k] for k in SAMPLE_ATTRS if k in attrs}

"""The store schema (version 1): array names, dtypes and dims, group attrs, index columns, and ``validate()``.

A store is a zarr v3 group directory::

    NAME.zarr/zarr.json      group attrs (ATTRS below)
    NAME.zarr/joint          float32 (F, M, V, C): the frames of all samples, concatenated
    NAME.zarr/bone, joint_motion, bone_motion   same shape, written by ``skeltools modalities``
    NAME.zarr/offsets        int64 (N + 1,): sample i is frames offsets[i]:offsets[i + 1]
    NAME.zarr/index.parquet  one row per sample (INDEX_COLUMNS plus per-dataset source and split columns)
    NAME.zarr/report.json    the conversion report

Integrity records, written when a store is published (older stores lack them and still open): each frame array's
attrs hold ``shards`` (its shard files and their sizes in bytes; a shard of all-zero frames has no file), the
group attrs hold ``integrity`` (sha256 of the offsets and of ``index.parquet``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from schemas.layouts import layout_from_attrs

SCHEMA_VERSION = 1
FRAME_DIMS = ("frame", "person", "joint", "coord")
CHUNK_FRAMES = 128
SHARD_FRAMES = 32768
MODALITIES = ("joint", "bone", "joint_motion", "bone_motion")
COORDS = {"xyz": 3, "xy": 2, "xyc": 3}
SHARDS_ATTR = "shards"  # frame array attrs: {"c/<shard>/0/0/0": size in bytes} of every shard file at publish
INTEGRITY_ATTR = "integrity"  # group attrs: {"offsets": sha256 of int64 LE values, "index.parquet": sha256 of file}


@dataclass(frozen=True)
class ArraySpec:
    dtype: str
    dims: tuple[str, ...]


ARRAYS = {name: ArraySpec("float32", FRAME_DIMS) for name in MODALITIES} | {
    "offsets": ArraySpec("int64", ("sample_edge",)),
}
REQUIRED_ARRAYS = ("joint", "offsets")

# Group attrs: key -> (python type, meaning)
ATTRS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "schema": (int, "store schema version"),
    "dataset": (str, "dataset definition name (schemas.datasets), or a free name"),
    "layout": (str, "joint layout name (schemas.layouts; a custom one also has layout_definition)"),
    "coords": (str, "xyz | xy | xyc (2D with confidence as the third channel)"),
    "persons": (int, "M, person slots per frame"),
    "num_samples": (int, "N"),
    "num_frames": (int, "F, total frames"),
    "preset": (str, "selection + normalization preset"),
    "preprocessing": (dict, "what the preset did, in words and parameters"),
    "class_names": (list, "label -> class name"),
    "source": (str, "raw format the store was converted from"),
    "created": (str, "ISO 8601 UTC time of conversion"),
    "skeltools_version": (str, "version that wrote the store"),
}
# Attrs some stores have: key -> (python type, meaning).
OPTIONAL_ATTRS: dict[str, tuple[type, str]] = {
    "layout_definition": (dict, "a custom layout's whole definition (schemas.layouts.Layout.to_dict())"),
    INTEGRITY_ATTR: (dict, "sha256 digests of offsets and index.parquet, recorded at publish"),
}

# The attrs that say how every sample was made (vs. counts and provenance): a training run copies them into its
# run.json, so that raw inputs can be preprocessed the same way without the store.
SAMPLE_ATTRS = ("dataset", "source", "layout", "layout_definition", "coords", "persons", "preset", "preprocessing",
                "class_names")

# Index columns every store has: name -> pyarrow type name.
INDEX_COLUMNS = {"sample_id": "string", "label": "int16", "length": "int32", "n_persons": "int8"}
# Per-dataset source columns.
SOURCE_COLUMNS = {
    "ntu": {"setup": "int16", "camera": "int8", "subject": "int16", "replication": "int8", "action": "int16"},
    "babel": {"seg_id": "string", "sid": "int32", "chunk_n": "int16", "anntr_id": "string", "split": "string"},
    "smarthome": {"activity": "string", "subject": "int16", "repetition": "int16", "video": "int16", "camera": "int8"},
    "generic": {},
}
SPLIT_COLUMN_TYPE = "bool"


def index_schema(source_columns: Mapping[str, str], split_columns, metadata: Mapping[str, str] | None = None):
    """The pyarrow schema of ``index.parquet`` for a dataset's source and split columns."""
    import pyarrow as pa

    types = {name: getattr(pa, t)() for name, t in (INDEX_COLUMNS | dict(source_columns)).items()}
    types |= {name: pa.bool_() for name in split_columns}
    return pa.schema(list(types.items()), metadata={k.encode(): v.encode() for k, v in (metadata or {}).items()})


def validate(attrs: Mapping[str, Any], arrays: Mapping[str, tuple[tuple[int, ...], str]],
             index_columns: Mapping[str, str], num_rows: int) -> list[str]:
    """Check a store's metadata against the schema; return a list of problems (empty when valid).

    ``arrays`` maps array name -> (shape, dtype string); ``index_columns`` maps column -> pyarrow type string.
    """
    problems = []
    for key, (kind, _) in ATTRS.items():
        if key not in attrs:
            problems.append(f"attrs: missing {key!r}")
        elif not isinstance(attrs[key], kind):
            problems.append(f"attrs: {key!r} should be {kind.__name__}, is {type(attrs[key]).__name__}")
    for key, (kind, _) in OPTIONAL_ATTRS.items():
        if key in attrs and not isinstance(attrs[key], kind):
            problems.append(f"attrs: {key!r} should be {kind.__name__}, is {type(attrs[key]).__name__}")
    if isinstance(attrs.get("layout"), str) and isinstance(attrs.get("layout_definition", {}), dict):
        try:
            num_joints = layout_from_attrs(attrs).num_joints
        except ValueError as exc:
            problems.append(f"attrs: {exc}")
        else:
            shape = arrays.get("joint", ((),))[0]
            if len(shape) == 4 and shape[2] != num_joints:
                problems.append(f"array 'joint': {shape[2]} joints, layout {attrs['layout']!r} has {num_joints}")
    if attrs.get("schema") not in (None, SCHEMA_VERSION):
        problems.append(f"attrs: schema {attrs.get('schema')} is not supported (this version reads {SCHEMA_VERSION})")
    if attrs.get("coords") is not None and attrs.get("coords") not in COORDS:
        problems.append(f"attrs: coords {attrs.get('coords')!r} is not one of {', '.join(COORDS)}")
    for name in REQUIRED_ARRAYS:
        if name not in arrays:
            problems.append(f"array {name!r} is missing")
    joint_shape = arrays.get("joint", ((),))[0]
    for name, (shape, dtype) in arrays.items():
        spec = ARRAYS.get(name)
        if spec is None:
            continue
        if dtype != spec.dtype:
            problems.append(f"array {name!r}: dtype {dtype}, expected {spec.dtype}")
        if len(shape) != len(spec.dims):
            problems.append(f"array {name!r}: {len(shape)} dims, expected {len(spec.dims)} {spec.dims}")
        elif spec.dims == FRAME_DIMS and tuple(shape) != tuple(joint_shape):
            problems.append(f"array {name!r}: shape {tuple(shape)} differs from joint {tuple(joint_shape)}")
    if len(joint_shape) == 4 and isinstance(attrs.get("persons"), int) and joint_shape[1] != attrs["persons"]:
        problems.append(f"array 'joint': {joint_shape[1]} person slots, attrs say {attrs['persons']}")
    if len(joint_shape) == 4 and attrs.get("coords") in COORDS and joint_shape[3] != COORDS[attrs["coords"]]:
        problems.append(f"array 'joint': {joint_shape[3]} channels, coords {attrs['coords']!r} needs {COORDS[attrs['coords']]}")
    if "offsets" in arrays and arrays["offsets"][0] != (num_rows + 1,):
        problems.append(f"array 'offsets': shape {arrays['offsets'][0]}, expected ({num_rows + 1},) for {num_rows} index rows")
    if isinstance(attrs.get("num_samples"), int) and attrs["num_samples"] != num_rows:
        problems.append(f"index: {num_rows} rows, attrs say {attrs['num_samples']} samples")
    for name, kind in INDEX_COLUMNS.items():
        if name not in index_columns:
            problems.append(f"index: missing column {name!r}")
        elif index_columns[name] != kind:
            problems.append(f"index: column {name!r} is {index_columns[name]}, expected {kind}")
    return problems

"""Your own keypoints: one sample per ``.npy``, ``.npz`` or ``.csv`` file, read as ``(T, M, V, C)`` float32.

Arrays (``.npy``; ``.npz`` holding one array, or the one named by ``key``) have the axis order declared by
``axes``: ``TVC`` (one person), ``TMVC`` or ``MTVC``. A CSV file is long-format, one row per keypoint, with the
header ``frame,person,joint,<channel>...`` (e.g. ``frame,person,joint,x,y,z``): ``frame`` and ``person`` are
0-based integers, ``joint`` a 0-based index or a joint name, and one column per channel. T is one more than the
largest frame number; the persons are the distinct person numbers, in increasing order (a person number is an id,
not a slot: ids 0 and 2000 are two persons); keypoints without a row are zero. NaN and inf are kept as read.
"""
from __future__ import annotations

import csv
import zipfile
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np

AXES = ("TVC", "TMVC", "MTVC")
SUFFIXES = (".npy", ".npz", ".csv")
CSV_INDEX_COLUMNS = ("frame", "person", "joint")
#: A CSV's dense ``(T, M, V, C)`` array may hold at most this many values per value read (plus ``CSV_SLACK``):
#: frame gaps are fine, a frame number far beyond the others is refused before it is allocated.
CSV_DENSITY = 64
CSV_SLACK = 2**20
#: Errors of damaged array files (truncated, bad CRC, bad compressed data) besides OSError/ValueError/EOFError.
_DAMAGED = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error)


class GenericInputError(ValueError):
    """A keypoint file that cannot be read as declared; the message names the file and what was expected."""


def to_tmvc(array: np.ndarray, axes: str) -> np.ndarray:
    """An array in axis order ``axes`` (one of ``AXES``) as ``(T, M, V, C)`` float32 (a copy when it must be)."""
    if axes not in AXES:
        raise ValueError(f"unknown axes {axes!r}; choose from {', '.join(AXES)}")
    if array.ndim != len(axes):
        raise ValueError(f"{array.ndim} dimensions {tuple(array.shape)}, but axes {axes} needs {len(axes)}")
    if axes == "TVC":
        array = array[:, None]
    elif axes == "MTVC":
        array = array.transpose(1, 0, 2, 3)
    return np.ascontiguousarray(array, dtype=np.float32)


def _load_array(path: Path, key: str | None) -> np.ndarray:
    shape, dtype, stored = _stored_header(path, key)
    declared = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    if declared > stored:  # checked before numpy allocates what the header declares
        raise GenericInputError(f"{path}: the header declares shape {shape} of {dtype} ({declared} bytes), but the "
                                f"file holds {stored} bytes of data (truncated?)")
    if path.suffix.lower() == ".npy":
        return np.load(path, allow_pickle=False)
    with np.load(path, allow_pickle=False) as archive:
        names = list(archive.files)
        if key is None:
            if len(names) != 1:
                raise GenericInputError(f"{path}: holds {len(names)} arrays ({', '.join(names) or 'none'}); "
                                        "name the one to read (--npz-key)")
            key = names[0]
        if key not in names:
            raise GenericInputError(f"{path}: no array {key!r} (arrays: {', '.join(names) or 'none'})")
        return archive[key]


def read_csv_keypoints(path, joint_names: Sequence[str] = ()) -> np.ndarray:
    """A long-format keypoint CSV (module docstring) as ``(T, M, V, C)`` float32; V is ``len(joint_names)`` when
    given, else one more than the largest joint index."""
    path = Path(path)
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader, [])]
        if tuple(h.lower() for h in header[:3]) != CSV_INDEX_COLUMNS or len(header) < 4:
            raise GenericInputError(f"{path}: line 1: expected the header frame,person,joint,<channel>... "
                                    f"(e.g. frame,person,joint,x,y,z), got {','.join(header) or 'nothing'}")
        channels = len(header) - 3
        names = {n: i for i, n in enumerate(joint_names)}
        index, values = [], []
        for line, row in enumerate(reader, start=2):
            if not row or not "".join(row).strip():
                continue
            if len(row) != len(header):
                raise GenericInputError(f"{path}: line {line}: {len(row)} values, the header has {len(header)}")
            try:
                frame, person = int(row[0]), int(row[1])
            except ValueError:
                raise GenericInputError(f"{path}: line {line}: frame and person must be integers, got "
                                        f"{row[0]!r}, {row[1]!r}") from None
            joint = row[2].strip()
            if joint in names:
                v = names[joint]
            elif joint.isdigit() and (not names or int(joint) < len(names)):
                v = int(joint)
            else:
                raise GenericInputError(f"{path}: line {line}: joint {joint!r} is not a joint index"
                                        + (f" 0..{len(names) - 1} or name of the layout" if names else ""))
            if frame < 0 or person < 0:
                raise GenericInputError(f"{path}: line {line}: negative frame or person number")
            try:
                values.append([float(x) for x in row[3:]])
            except ValueError:
                raise GenericInputError(f"{path}: line {line}: channel values must be numbers, got "
                                        f"{','.join(row[3:])}") from None
            index.append((frame, person, v, line))
    if not index:
        raise GenericInputError(f"{path}: no keypoint rows after the header")
    if max(row[0] for row in index) >= 2**31 or max(row[1] for row in index) >= 2**31:
        f, p, _, line = max(index, key=lambda row: max(row[0], row[1]))
        raise GenericInputError(f"{path}: line {line}: frame {f} or person {p} is beyond 2^31-1")
    idx = np.array(index, dtype=np.int64)
    persons, idx[:, 1] = np.unique(idx[:, 1], return_inverse=True)
    shape = (int(idx[:, 0].max()) + 1, len(persons), len(names) or int(idx[:, 2].max()) + 1, channels)
    if np.prod(shape, dtype=np.float64) > CSV_DENSITY * len(values) * channels + CSV_SLACK:
        line = index[int(np.argmax(idx[:, 0]))][3]
        raise GenericInputError(f"{path}: line {line}: frame {int(idx[:, 0].max())} is far beyond the file's other "
                                f"rows ({len(index)} rows would fill {shape[0]} frames; a wrong frame number?)")
    out = np.zeros(shape, np.float32)
    flat = np.ravel_multi_index(tuple(idx[:, :3].T), shape[:3])
    unique, first = np.unique(flat, return_index=True)
    if len(unique) != len(flat):
        dup = np.setdiff1d(np.arange(len(flat)), first)[0]
        f, p, v, line = index[dup]
        raise GenericInputError(f"{path}: line {line}: frame {f}, person {p}, joint {v} is given twice")
    out.reshape(-1, channels)[flat] = np.array(values, dtype=np.float32)
    return out


def read_keypoints(path, axes: str = "TMVC", *, npz_key: str | None = None, joint_names: Sequence[str] = (),
                   channels: int | None = None) -> np.ndarray:
    """One keypoint file as ``(T, M, V, C)`` float32, checked against the layout's ``joint_names`` (V) and
    ``channels`` (C) when given. ``axes`` applies to arrays; a CSV names its own axes. Raises GenericInputError."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise GenericInputError(f"{path}: not a keypoint file (expected {', '.join(SUFFIXES)})")
    try:
        if suffix == ".csv":
            data = read_csv_keypoints(path, joint_names)
        else:
            raw = _load_array(path, npz_key)
            if not np.issubdtype(raw.dtype, np.number) or np.issubdtype(raw.dtype, np.complexfloating):
                raise GenericInputError(f"{path}: dtype {raw.dtype} is not a real number type")
            try:
                data = to_tmvc(raw, axes)
            except ValueError as exc:
                raise GenericInputError(f"{path}: {exc}") from None
    except GenericInputError:
        raise
    except _DAMAGED as exc:  # unreadable, truncated, not an array file
        raise GenericInputError(f"{path}: cannot be read ({exc})") from None
    if joint_names and data.shape[2] != len(joint_names):
        raise GenericInputError(f"{path}: {data.shape[2]} joints (axes {axes}, shape (T, M, V, C) = {data.shape}), "
                                f"the layout has {len(joint_names)}")
    if channels is not None and data.shape[3] != channels:
        raise GenericInputError(f"{path}: {data.shape[3]} channels per joint, expected {channels} for the coords")
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise GenericInputError(f"{path}: no frames or no persons (shape (T, M, V, C) = {data.shape})")
    return data


def array_header(fh) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype from a ``.npy`` header at the start of ``fh`` (left at the data)."""
    version = np.lib.format.read_magic(fh)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = read(fh)
    return tuple(shape), dtype


def _stored_header(path: Path, npz_key: str | None) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, bytes of data the file holds) of a .npy file, or of one array in a .npz, from its header
    and the file's (or zip entry's) size alone."""
    if path.suffix.lower() == ".npy":
        with open(path, "rb") as fh:
            shape, dtype = array_header(fh)
            return shape, dtype, path.stat().st_size - fh.tell()
    with zipfile.ZipFile(path) as archive:
        names = [n.removesuffix(".npy") for n in archive.namelist()]
        if npz_key is None and len(names) != 1:
            raise GenericInputError(f"{path}: holds {len(names)} arrays ({', '.join(names) or 'none'}); "
                                    "name the one to read (--npz-key)")
        key = npz_key if npz_key is not None else names[0]
        if key not in names:
            raise GenericInputError(f"{path}: no array {key!r} (arrays: {', '.join(names) or 'none'})")
        with archive.open(f"{key}.npy") as fh:
            shape, dtype = array_header(fh)
            return shape, dtype, archive.getinfo(f"{key}.npy").file_size - fh.tell()


def keypoint_shape(path, axes: str = "TMVC", *, npz_key: str | None = None,
                   joint_names: Sequence[str] = ()) -> tuple[int, int, int, int]:
    """``(T, M, V, C)`` of a keypoint file: from the array header for ``.npy``/``.npz`` (no data read), by reading
    a CSV. Raises GenericInputError."""
    path = Path(path)
    if path.suffix.lower() not in (".npy", ".npz"):
        return read_keypoints(path, axes, npz_key=npz_key, joint_names=joint_names).shape
    try:
        shape = _stored_header(path, npz_key)[0]
    except GenericInputError:
        raise
    except _DAMAGED as exc:
        raise GenericInputError(f"{path}: cannot be read ({exc})") from None
    if len(shape) != len(axes):
        raise GenericInputError(f"{path}: {len(shape)} dimensions {shape}, but axes {axes} needs {len(axes)}")
    sizes = dict(zip(axes, shape))
    return sizes["T"], sizes.get("M", 1), sizes["V"], sizes["C"]

"""Many small files read inside numba kernels: libc ``openat``/``statx``/``read``/``close`` called by name into one
reused scratch buffer, so a reader of per-frame files pays four system calls a file and creates no Python object;
a video's files are opened relative to their open folder (a one-component path lookup).

Python's ``open(path, "rb").read()`` plus an ``os.stat`` cost about 15 us a file here, this about 4 us (the C
floor). Linux only (``AVAILABLE``: glibc's ``statx``); elsewhere readers take their Python path. A file that
cannot be opened or read is reported, not raised: the caller reads it again in Python, which words the error.

Each read also records the file's size and modification time (ns) as :func:`file_stats` gives them, the input
digest that decides whether an interrupted conversion may reuse finished work.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import sys
from typing import Sequence

import numpy as np
from numba import njit, types

from skeltools import jit  # noqa: F401  (picks numba's cache folder before the kernels are defined)

_openat = types.ExternalFunction("openat", types.intc(types.intc, types.voidptr, types.intc))
_read = types.ExternalFunction("read", types.intp(types.intc, types.voidptr, types.uintp))
_close = types.ExternalFunction("close", types.intc(types.intc))
_statx = types.ExternalFunction("statx", types.intc(types.intc, types.voidptr, types.intc, types.uintc, types.voidptr))

OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
CWD = -100  # AT_FDCWD: paths are opened as given
SCRATCH_BYTES = 1 << 16
# struct statx (linux/stat.h, the same on every architecture): what is asked, and where the answers are.
_STATX_SIZE, _STATX_MTIME, _AT_EMPTY_PATH = 0x200, 0x40, 0x1000
_STATX_BYTES, _SIZE_AT, _MTIME_AT = 256, 40, 112


def _libc_available() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if not all(hasattr(libc, name) for name in ("openat", "read", "close", "statx")):
            return False
        stat = ctypes.create_string_buffer(_STATX_BYTES)
        return libc.statx(CWD, b"/", 0, _STATX_SIZE | _STATX_MTIME, stat) == 0  # a kernel that has it
    except (OSError, AttributeError):
        return False


AVAILABLE = _libc_available()


def file_stats(paths: Sequence) -> np.ndarray:
    """``(F, 2)`` int64: each file's size and modification time in ns; -1, -1 where it cannot be stat'ed."""
    stats = np.full((len(paths), 2), -1, np.int64)
    for i, path in enumerate(paths):
        try:
            st = os.stat(path)
        except OSError:
            continue
        stats[i] = st.st_size, st.st_mtime_ns
    return stats


def stats_digest(stats: np.ndarray) -> str:
    """A short digest of :func:`file_stats` rows."""
    return hashlib.blake2b(np.ascontiguousarray(stats, "<i8").tobytes(), digest_size=16).hexdigest()


@njit(cache=True, nogil=True)
def stat_buffer():
    """The scratch :func:`read_file` takes for ``statx``: the struct, then a NUL (the empty path of
    ``AT_EMPTY_PATH``)."""
    return np.zeros(_STATX_BYTES + 1, np.uint8)


def open_folder(folder) -> int:
    """A descriptor of ``folder`` for :func:`read_file`, or :data:`CWD` when it cannot be opened (the paths are then
    opened whole). Close it with :func:`close_folder`."""
    try:
        return os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return CWD


def close_folder(fd: int) -> None:
    if fd != CWD:
        os.close(fd)


def encode_paths(paths: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """Paths -> (their bytes, each NUL-terminated, back to back; ``(F + 1,)`` start of each, then the end)."""
    joined = "".join(f"{os.fspath(p)}\0" for p in paths).encode(sys.getfilesystemencoding(), "surrogateescape")
    names = np.frombuffer(joined, np.uint8)
    starts = np.zeros(len(paths) + 1, np.int64)
    starts[1:] = np.flatnonzero(names == 0) + 1  # a path holds no NUL
    return names, starts


@njit(cache=True, nogil=True)
def read_file(folder, names, start, buf, stat, stats):
    """The file whose NUL-terminated path begins at ``names[start]`` (relative to the open folder ``folder``, or
    :data:`CWD`) -> (buf, size): its bytes are ``buf[:size]``, in ``buf`` or in a larger buffer that replaces it
    (pass the returned one to the next call); size -1 when it could not be opened or read.
    ``stats[:] = size, mtime_ns`` of the opened file (before reading it), else -1; ``stat`` is a
    :func:`stat_buffer`."""
    stats[:] = -1
    fd = _openat(folder, names[start:].ctypes.data, OPEN_FLAGS)
    if fd < 0:
        return buf, -1
    if _statx(fd, stat[_STATX_BYTES:].ctypes.data, _AT_EMPTY_PATH, _STATX_SIZE | _STATX_MTIME, stat.ctypes.data) == 0:
        stats[0] = stat[_SIZE_AT:_SIZE_AT + 8].view(np.int64)[0]
        stats[1] = (stat[_MTIME_AT:_MTIME_AT + 8].view(np.int64)[0] * 1_000_000_000
                    + stat[_MTIME_AT + 8:_MTIME_AT + 12].view(np.uint32)[0])
    size = 0
    while True:
        if size == buf.size:
            grown = np.empty(2 * buf.size, np.uint8)
            grown[:size] = buf
            buf = grown
        want = buf.size - size
        got = _read(fd, buf[size:].ctypes.data, want)
        if got < 0:
            size = -1
            break
        size += got
        if got < want:  # a regular file returns less than asked only at its end
            break
    _close(fd)
    return buf, size

"""Many small files read inside numba kernels: libc ``open``/``read``/``close`` called by name into one reused
scratch buffer, so a reader of per-frame files pays three system calls a file and creates no Python object.

Python's ``open(path, "rb").read()`` costs about 12 us a file here, this about 4 us (the C floor). POSIX systems
only (``AVAILABLE``); elsewhere readers take their Python path. A file that cannot be opened or read is reported,
not raised: the caller reads it again in Python, which words the error.
"""
from __future__ import annotations

import ctypes
import os
from typing import Sequence

import numpy as np
from numba import njit, types

_open = types.ExternalFunction("open", types.intc(types.voidptr, types.intc))
_read = types.ExternalFunction("read", types.intp(types.intc, types.voidptr, types.uintp))
_close = types.ExternalFunction("close", types.intc(types.intc))

OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
SCRATCH_BYTES = 1 << 16


def _libc_available() -> bool:
    if os.name != "posix":
        return False
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return False
    return all(hasattr(libc, name) for name in ("open", "read", "close"))


AVAILABLE = _libc_available()


def encode_paths(paths: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """Paths -> (their bytes, each NUL-terminated, back to back; ``(F + 1,)`` start of each, then the end)."""
    raw = [os.fsencode(p) + b"\0" for p in paths]
    starts = np.zeros(len(raw) + 1, np.int64)
    np.cumsum([len(r) for r in raw], out=starts[1:])
    return np.frombuffer(b"".join(raw), np.uint8), starts


@njit(cache=True, nogil=True)
def read_file(names, start, buf):
    """The file whose NUL-terminated path begins at ``names[start]`` -> (buf, size): its bytes are ``buf[:size]``,
    in ``buf`` or in a larger buffer that replaces it (pass the returned one to the next call); size -1 when it
    could not be opened or read."""
    fd = _open(names[start:].ctypes.data, OPEN_FLAGS)
    if fd < 0:
        return buf, -1
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

"""numba's on-disk cache for skeltools' kernels: where it lives, whether a kernel is in it, compiling it once.

Importing this module (every module that defines kernels does, before defining them) picks the cache folder, before
numba is configured: the in-tree ``__pycache__`` folders when they can be written (numba's default), else
``$XDG_CACHE_HOME/skeltools/numba`` (default ``~/.cache/skeltools/numba``), else a per-user folder under the
temp directory. A read-only install (site-packages owned by root, a container image) thus keeps its compiled
kernels across runs instead of failing or compiling every time. ``NUMBA_CACHE_DIR`` set by the user always wins.
The choice goes into the environment, so worker processes use the same folder.

``call(kernel, *args)``: how the entry points call their kernels. On a kernel's first use in a process it is
loaded from the cache when there, else one process at a time compiles it (a file lock in the cache folder:
parallel workers wait for the first and then load its result instead of all compiling the same code), after one
line on stderr saying so. Kernels compile on first use, so a command compiles only the kernels it runs.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Callable, Sequence

_PACKAGE = Path(__file__).resolve().parent
KERNEL_DIRS = (_PACKAGE, _PACKAGE / "readers")  # the folders of modules that define cached kernels
NOTICE = "skeltools: compiling kernels (first run only; later runs load them from the cache)"


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/skeltools/numba``, ``~/.cache/skeltools/numba`` by default."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "skeltools" / "numba"


def choose_cache_dir(kernel_dirs=KERNEL_DIRS) -> str | None:
    """The folder numba should cache in: None for its in-tree default (every ``__pycache__`` writable)."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return os.environ["NUMBA_CACHE_DIR"]
    if all(_writable(Path(d) / "__pycache__") for d in kernel_dirs):
        return None
    uid = os.getuid() if hasattr(os, "getuid") else 0
    for folder in (user_cache_dir(), Path(tempfile.gettempdir()) / f"skeltools-numba-{uid}"):
        if _writable(folder):
            return str(folder)
    return None


def configure_cache(kernel_dirs=KERNEL_DIRS) -> str | None:
    """Point numba (and child processes) at ``choose_cache_dir()``; return the folder (None: in-tree)."""
    folder = choose_cache_dir(kernel_dirs)
    if folder is not None:
        os.environ["NUMBA_CACHE_DIR"] = folder
        if "numba" in sys.modules:
            from numba.core import config

            config.CACHE_DIR = folder
    return folder


def is_cached(kernel) -> bool:
    """Whether ``kernel`` (a ``cache=True`` numba dispatcher) is compiled in this process or in the cache."""
    return bool(kernel.overloads) or bool(kernel._cache._cache_file._load_index())


def call(kernel, *args, parts: Sequence[tuple] = (), siblings: Sequence[tuple] = (),
         notice: Callable[[str], None] | None = None):
    """``kernel(*args)``. On the kernel's first use in this process: loaded from the cache, or compiled under a lock
    shared by every process using this cache (the others wait, then load its result), announced in one line.

    ``parts``: ``(callee, signature)`` pairs the kernel calls, costliest first. Before the kernel is compiled, each
    process takes the parts nobody is compiling yet and compiles them into the cache, so that pool workers starting
    together split the work; the kernel's own compile then loads them. ``siblings``: ``(kernel, signature)`` pairs
    the caller runs next that do not depend on this kernel; a process that finds one nobody is compiling compiles
    it first, while another compiles this kernel (nobody waits for a sibling here).
    """
    if kernel.overloads or is_cached(kernel):
        return kernel(*args)
    import fcntl

    notice_lock = _lock(kernel, "notice")  # held while this call compiles: one process announces
    try:
        fcntl.flock(notice_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        announced = False
    except BlockingIOError:
        announced = True  # by another process
    try:
        return _compile_and_call(kernel, args, parts, siblings, notice, announced)
    finally:
        notice_lock.close()


def _compile_and_call(kernel, args: tuple, parts: Sequence[tuple], siblings: Sequence[tuple], notice,
                      announced: bool):
    import fcntl

    for callee, signature in (*siblings, *parts):
        with _lock(callee) as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # another process is compiling it
            if not is_cached(callee):
                announced = announced or _announce(notice)
                callee.compile(signature)
    with _lock(kernel) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process compiling it: wait, then load its result
        if not is_cached(kernel) and not announced:
            _announce(notice)
        for callee, _ in parts:  # parts another process is still compiling: wait for them rather than redo them
            with _lock(callee) as part_lock:
                fcntl.flock(part_lock, fcntl.LOCK_EX)
        return kernel(*args)


def _lock(kernel, what: str = "compile"):
    return open(Path(kernel._cache._cache_path) / f".{kernel.py_func.__name__}.{what}.lock", "a")


def _announce(notice: Callable[[str], None] | None) -> bool:
    (notice or _stderr)(NOTICE)
    return True


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


configure_cache()

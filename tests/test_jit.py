"""numba's cache folder: in-tree when writable, else the user cache folder, else the temp folder; compile notice."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap

from skeltools import jit


def _unwritable_package(tmp_path):
    """A package folder whose ``__pycache__`` cannot be created (a file is in the way: works as root too)."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__pycache__").write_text("not a folder")
    (pkg / "kern.py").write_text(textwrap.dedent("""
        from numba import njit

        @njit(cache=True)
        def add_one(x):
            return x + 1

        @njit(cache=True)
        def twice_plus_two(x):
            return 2 * add_one(x)

        @njit(cache=True)
        def times_three(x):
            return 3 * x
    """))
    return pkg


def test_cache_folder_choice(tmp_path, monkeypatch):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    writable = tmp_path / "ok"
    writable.mkdir()
    assert jit.choose_cache_dir([writable]) is None and (writable / "__pycache__").is_dir()
    pkg = _unwritable_package(tmp_path)
    assert jit.choose_cache_dir([writable, pkg]) == str(tmp_path / "xdg" / "skeltools" / "numba")
    (tmp_path / "blocked").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "blocked"))  # the user cache cannot be made either
    assert jit.choose_cache_dir([pkg]) == os.path.join(tempfile.gettempdir(), f"skeltools-numba-{os.getuid()}")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    assert jit.choose_cache_dir([pkg]) == str(tmp_path / "mine")


_RUN = """
import sys
from skeltools import jit
print("folder", jit.configure_cache([sys.argv[1]]))
sys.path.insert(0, sys.argv[1])
import kern
first = jit.call(kern.add_one, 41, notice=lambda line: print("notice", line))
print("value", first, kern.add_one(1), "hits", sum(kern.add_one.stats.cache_hits.values()))
"""


def test_a_read_only_install_caches_in_the_user_folder(tmp_path):
    pkg = _unwritable_package(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"} | {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    runs = [subprocess.run([sys.executable, "-c", _RUN, str(pkg)], env=env, capture_output=True, text=True,
                           check=True).stdout.splitlines() for _ in range(2)]
    folder = str(tmp_path / "xdg" / "skeltools" / "numba")
    assert runs[0] == [f"folder {folder}", f"notice {jit.NOTICE}", "value 42 2 hits 0"]  # compiled, announced
    assert runs[1] == [f"folder {folder}", "value 42 2 hits 1"]  # loaded from the user folder, silently
    assert any(name.endswith(".nbi") for _, _, files in os.walk(folder) for name in files)


_TOGETHER = """
import sys
from numba import types
from skeltools import jit
jit.configure_cache([sys.argv[1]])
sys.path.insert(0, sys.argv[1])
import kern
value = jit.call(kern.twice_plus_two, 20, parts=((kern.add_one, (types.int64,)),), notice=lambda l: print("notice"))
print("value", value, "callee cached", jit.is_cached(kern.add_one))
"""


def test_processes_starting_together_compile_once_and_announce_once(tmp_path):
    pkg = _unwritable_package(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"} | {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    procs = [subprocess.Popen([sys.executable, "-c", _TOGETHER, str(pkg)], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    lines = [line for p in procs for line in p.communicate()[0].splitlines()]
    assert all(p.returncode == 0 for p in procs)
    assert sorted(lines) == ["notice", "value 42 callee cached True", "value 42 callee cached True"]


_SIBLINGS = """
import sys
from numba import types
from skeltools import jit
jit.configure_cache([sys.argv[1]])
sys.path.insert(0, sys.argv[1])
import kern
value = jit.call(kern.twice_plus_two, 20, parts=((kern.add_one, (types.int64,)),),
                 siblings=((kern.times_three, (types.int64,)),), notice=lambda l: print("notice"))
print("sibling ready", bool(kern.times_three.overloads))  # compiled here, before its own call
print("values", value, jit.call(kern.times_three, 5))
misses = [sum(k.stats.cache_misses.values()) for k in (kern.twice_plus_two, kern.times_three)]
print("compiled", *misses)
"""


def test_siblings_compile_once_beside_the_kernel(tmp_path):
    """Two kernels that do not depend on each other (the NTU parser's two passes): processes starting together
    compile each once between them, the sibling while another compiles the kernel."""
    pkg = _unwritable_package(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"} | {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    procs = [subprocess.Popen([sys.executable, "-c", _SIBLINGS, str(pkg)], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [p.communicate()[0].splitlines() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    lines = [line for out in outputs for line in out]
    assert lines.count("notice") == 1 and lines.count("values 42 15") == 2
    compiled = [tuple(map(int, line.split()[1:])) for line in lines if line.startswith("compiled")]
    assert [sum(c[0] for c in compiled), sum(c[1] for c in compiled)] == [1, 1]  # each kernel compiled once in all
    assert "sibling ready True" in lines  # by the process that did not compile the kernel, or by the only one

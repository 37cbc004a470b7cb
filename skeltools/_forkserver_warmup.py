"""Imported once by the conversion pool's forkserver: loads the heavy modules and the numba parser from its
cache, so that every forked worker starts with them ready instead of loading them itself."""
from skeltools import convert, presets  # noqa: F401
from skeltools.readers.ntu import parse_skeleton

parse_skeleton(b"1\n1\n72057594037931101 0 1 1 1 1 0 0.01 -0.25 2\n25\n" + b"0.1 0.2 3.5 1 2 3 4 0 0 0 0 2\n" * 25)

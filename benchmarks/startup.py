"""Benchmark: CLI start-up phase by phase, small conversions warm, and the first run after install (empty cache).

    python benchmarks/startup.py                    # phases, info, convert of 10 files, first run of 100 files
    python benchmarks/startup.py --first-files 0    # skip the first-run part (it compiles for tens of seconds)

Every figure is the median wall time of --repeat fresh processes. Phases are what a command pays before its work:
the interpreter, each heavy import, loading the NTU parser from numba's cache, starting a forkserver pool of 2
workers (what `convert` paid on any corpus before small ones ran in-process). The first run points
``NUMBA_CACHE_DIR`` at an empty folder (a fresh install) and is compared with the same command warm.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PHASES = {
    "python -c pass (interpreter)": "pass",
    "import click + skeltools.cli": "import skeltools.cli",
    "import numpy": "import numpy",
    "import pyarrow.parquet": "import pyarrow.parquet",
    "import zarr": "import zarr",
    "import numba": "import numba",
    "NTU parser from the numba cache": "from skeltools.readers.ntu import parse_skeleton; "
                                       "parse_skeleton(open(__import__('sys').argv[1], 'rb').read())",
    "forkserver pool of 2 started and closed": "from skeltools.convert import _Executor\n"
                                               "with _Executor(2, False) as e: e._ready_pool()",
}


def timed(cmd: list[str], repeat: int, env: dict | None = None) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--first-files", type=int, default=100, help="files of the first-run comparison (0: skip)")
    args = ap.parse_args()
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cli = [sys.executable, "-m", "skeltools"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        subprocess.run([*cli, "synth", "ntu", str(tmp / "raw"), "--samples", str(max(10, args.first_files))],
                       check=True, capture_output=True, env=env)
        files = sorted((tmp / "raw").iterdir())
        (tmp / "raw10").mkdir()
        for path in files[:10]:
            os.link(path, tmp / "raw10" / path.name)
        convert10 = [*cli, "convert", "ntu", str(tmp / "raw10"), "-o", str(tmp / "s10.zarr"), "-q", "--overwrite"]
        subprocess.run(convert10, check=True, capture_output=True, env=env)  # warms numba's cache

        print(f"start-up phases (median of {args.repeat} processes)")
        for name, code in PHASES.items():
            print(f"  {name:42s} {timed([sys.executable, '-c', code, str(files[0])], args.repeat, env):6.2f} s")
        print("commands, warm")
        for name, cmd in {"skeltools --help": [*cli, "--help"],
                          "skeltools info STORE (10 samples)": [*cli, "info", str(tmp / "s10.zarr")],
                          "skeltools convert ntu, 10 files": convert10}.items():
            print(f"  {name:42s} {timed(cmd, args.repeat, env):6.2f} s")

        if args.first_files:
            raw = tmp / "raw"
            cmd = [*cli, "convert", "ntu", str(raw), "-o", str(tmp / "first.zarr"), "-q", "--overwrite"]
            firsts = []
            for r in range(args.repeat):  # each first run with a cache folder of its own, empty
                fresh_env = dict(env, NUMBA_CACHE_DIR=str(tmp / f"numba-cache-{r}"))
                t0 = time.perf_counter()
                subprocess.run(cmd, check=True, capture_output=True, env=fresh_env)
                firsts.append(time.perf_counter() - t0)
            first = statistics.median(firsts)
            warm = timed(cmd, args.repeat, fresh_env)
            print(f"convert ntu of {len(files)} files, first run (empty numba cache; median of {args.repeat}) vs warm")
            print(f"  first {first:6.2f} s, warm {warm:6.2f} s: {first / warm:.2f}x")


if __name__ == "__main__":
    main()

"""Start-up: what a command imports and starts for a small job (figures in benchmarks/startup.py)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import skeltools.convert as convert_mod
from skeltools.convert import convert_ntu, count_files
from skeltools.store import SkeletonStore
from skeltools.synth import write_ntu_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("raw")
    write_ntu_corpus(out, 6, seed=5)
    return out


def test_a_corpus_of_one_group_converts_in_process_without_a_pool(corpus, tmp_path, monkeypatch):
    def no_pool(self):
        raise AssertionError("a worker pool was started for a one-group corpus")

    reference = convert_ntu([corpus], tmp_path / "ref.zarr", exclude_list=(), workers=1, progress=False)
    monkeypatch.setattr(convert_mod._Executor, "_start_pool", no_pool)
    report = convert_ntu([corpus], tmp_path / "s.zarr", exclude_list=(), workers=2, progress=False)
    assert report["workers"] == 1 and report["counts"]["converted"] == reference["counts"]["converted"] == 6
    a, b = SkeletonStore.open(tmp_path / "ref.zarr"), SkeletonStore.open(tmp_path / "s.zarr")
    assert a.array("joint")[:].tobytes() == b.array("joint")[:].tobytes() and a.index.equals(b.index)


def test_count_files_stops_at_the_limit(corpus, tmp_path):
    one = sorted(corpus.iterdir())[0]
    assert count_files([corpus], 100) == 6
    assert count_files([corpus, one], 100) == 7
    assert count_files([corpus], 4) == 4
    assert count_files([tmp_path / "absent"], 10) == 0


def test_info_imports_neither_zarr_nor_numba_nor_torch(corpus, tmp_path):
    convert_ntu([corpus], tmp_path / "s.zarr", exclude_list=(), workers=1, progress=False)
    code = ("import sys; from skeltools.cli import main\n"
            "try:\n    main(['info', sys.argv[1]])\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
            "import json; print(json.dumps(sorted(m for m in ('zarr', 'numba', 'torch') if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "s.zarr")], capture_output=True, text=True,
                         check=True).stdout
    assert "samples     6" in out
    assert json.loads(out.strip().splitlines()[-1]) == []

"""The command line: instant --help, synth, demo, info, error handling."""
from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from skeltools.cli import main


def test_help_imports_no_heavy_module():
    code = ("import sys; from skeltools.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'zarr', 'numba', 'pyarrow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("[]")
    assert "convert" in out and "synth" in out and "demo" in out


def test_python_dash_m_skeltools_runs_the_cli():
    out = subprocess.run([sys.executable, "-m", "skeltools", "layout"], capture_output=True, text=True, check=True)
    assert "ntu25" in out.stdout and "coco18" in out.stdout


def test_every_command_has_help_with_an_example():
    runner = CliRunner()
    groups = [[g, c] for g in ("convert", "synth") for c in main.commands[g].commands]
    assert ["convert", "smarthome"] in groups and ["synth", "smarthome"] in groups
    for args in groups + [["info"], ["demo"]]:
        result = runner.invoke(main, args + ["--help"])
        assert result.exit_code == 0 and "Example:" in result.output, args


@pytest.mark.parametrize("cores", [1, 2])
def test_synth_and_demo(tmp_path, monkeypatch, cores):
    monkeypatch.setattr("os.cpu_count", lambda: cores)  # 2 or more: the two streams train side by side
    runner = CliRunner()
    result = runner.invoke(main, ["synth", "ntu", str(tmp_path / "raw"), "--samples", "5", "--seed", "1"])
    assert result.exit_code == 0 and "5 .skeleton files" in result.output
    assert len(list((tmp_path / "raw").glob("*.skeleton"))) == 5
    result = runner.invoke(main, ["demo", "--out", str(tmp_path / "demo"), "--samples", "30", "--classes", "3",
                                  "--arch", "stgcn", "--epochs", "1", "--clip-len", "8", "--batch-size", "4",
                                  "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "[2/7] convert: 30 samples" in result.output and "samples     30" in result.output
    steps = [line.split("]")[0] + "]" for line in result.output.splitlines() if line.startswith("[")]
    assert steps == [f"[{n}/7]" for n in range(1, 8)]
    assert "(a seeded 20% of xsub_train (" in result.output  # the demo validates on a fifth of the train part
    assert "[7/7] ensemble" in result.output and "fused (probs)" in result.output
    for stream in ("stgcn_j", "stgcn_b"):
        assert (tmp_path / "demo" / "runs" / stream / "scores.parquet").is_file()
    assert ("train and test side by side: 2 processes, 1 thread(s) each" in result.output) == (cores == 2)


def test_errors_are_one_line_unless_debug(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["info", str(tmp_path)])
    assert result.exit_code == 1 and result.output.startswith("error:") and "not a skeltools store" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(main, ["--debug", "info", str(tmp_path)])
    assert result.exit_code != 0 and type(result.exception).__name__ == "StoreError"

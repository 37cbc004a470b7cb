"""`show` and `stats` write real, non-blank pictures; without matplotlib they say how to get it."""
from __future__ import annotations

import sys

import numpy as np
import pytest
from click.testing import CliRunner

from skeltools.cli import main
from skeltools.store import SkeletonStore
from skeltools.convert import convert_ntu
from skeltools.synth import write_ntu_corpus
from skeltools.viz import project

plt = pytest.importorskip("matplotlib.pyplot")
Image = pytest.importorskip("PIL.Image")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("viz")
    write_ntu_corpus(root / "raw", 8, seed=2)
    convert_ntu([root / "raw"], root / "s.zarr", progress=False, workers=1)
    return root / "s.zarr"


def not_blank(path) -> np.ndarray:
    image = plt.imread(path)
    assert image.std() > 0.01  # something was drawn
    return image


def test_show_png_and_gif(store, tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["show", str(store), "0", "-o", str(tmp_path / "s.png"), "--azimuth", "30"])
    assert result.exit_code == 0, result.output
    assert not_blank(tmp_path / "s.png").shape[:2] == (224, 1056)  # 6 panels of 2.2 x 2.8 inches at 80 dpi
    sample_id = SkeletonStore.open(store).index.column("sample_id")[3].as_py()
    result = runner.invoke(main, ["show", str(store), sample_id, "-o", str(tmp_path / "s.gif")])
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "s.gif") as gif:
        assert gif.size == (320, 320) and gif.n_frames == SkeletonStore.open(store).lengths[3]


def test_stats(store, tmp_path):
    result = CliRunner().invoke(main, ["stats", str(store), "-o", str(tmp_path / "stats.png")])
    assert result.exit_code == 0, result.output
    assert not_blank(tmp_path / "stats.png").shape[:2] == (320, 1200)


def test_projection():
    sample = np.zeros((1, 1, 2, 3), np.float32)
    sample[0, 0, 0] = (1.0, 2.0, 3.0)
    xy = project(sample, "xyz", azimuth=90)
    np.testing.assert_allclose(xy[0, 0, 0], (-3.0, 2.0), atol=1e-12)
    assert np.isnan(xy[0, 0, 1]).all()  # absent joint
    np.testing.assert_allclose(project(sample, "xyc")[0, 0, 0], (1.0, -2.0))


def test_without_matplotlib(store, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = CliRunner().invoke(main, ["stats", str(store), "-o", str(tmp_path / "x.png")])
    assert result.exit_code == 1 and "pip install 'skeltools[viz]'" in result.output

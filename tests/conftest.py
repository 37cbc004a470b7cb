"""Shared fixtures. Real-data tests read genuine third-party files from the folder named by SKELTOOLS_FIXTURES
(default: ../shared/fixtures beside the checkout) and skip cleanly when it is absent."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def fixtures_dir() -> Path | None:
    path = Path(os.environ.get("SKELTOOLS_FIXTURES", REPO.parent / "shared" / "fixtures"))
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def fixtures() -> Path:
    path = fixtures_dir()
    if path is None:
        pytest.skip("real-data fixtures not found (set SKELTOOLS_FIXTURES to the shared/fixtures folder)")
    return path


def _subfolder(fixtures: Path, name: str) -> Path:
    path = fixtures / name
    if not path.is_dir():
        pytest.skip(f"{path} is missing")
    return path


@pytest.fixture(scope="session")
def ntu_fixtures(fixtures) -> Path:
    return _subfolder(fixtures, "ntu")


@pytest.fixture(scope="session")
def smarthome_fixtures(fixtures) -> Path:
    return _subfolder(fixtures, "smarthome")


@pytest.fixture(scope="session")
def babel_fixtures(fixtures) -> Path:
    return _subfolder(fixtures, "babel")


@pytest.fixture(scope="session")
def amass_sample(fixtures) -> Path:
    return _subfolder(fixtures, "amass") / "amass_sample.npz"


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Tiny test inputs gain nothing from threads; on a busy 2-core machine contending threads run 10x slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def ntu_train_store(tmp_path_factory):
    """A tiny synthetic NTU store for training: 150 files of 3 very different actions (jump up, salute,
    handshaking), with bones; the raw files are in its sibling ``raw/``."""
    from skeltools.convert import convert_ntu
    from skeltools.modalities import write_modalities
    from skeltools.synth import write_ntu_corpus

    root = tmp_path_factory.mktemp("train")
    raw = root / "raw"
    paths = write_ntu_corpus(raw, 150, seed=5, num_classes=3)
    assert len(paths) == 150
    convert_ntu([raw], root / "s.zarr", progress=False, workers=1)
    write_modalities(root / "s.zarr", ["bone"])
    return root / "s.zarr"


@pytest.fixture
def kill_at_group(monkeypatch):
    """``kill_at_group(n)``: the n-th group a conversion processes raises KeyboardInterrupt, as a killed run would;
    ``kill_at_group(None)`` lets conversions run again."""
    import skeltools.convert as convert_mod

    original = convert_mod.process_group

    def arm(call: int | None) -> None:
        calls = []

        def dies(task):
            calls.append(task[0])
            if len(calls) == call:
                raise KeyboardInterrupt
            return original(task)

        monkeypatch.setattr(convert_mod, "process_group", original if call is None else dies)

    return arm


@pytest.fixture(scope="module")
def flush_denormals():
    """Tiny randomly initialised nets produce denormal floats, which slow CPU forwards many times."""
    import torch

    torch.set_flush_denormal(True)
    yield
    torch.set_flush_denormal(False)


@pytest.fixture(scope="session")
def smarthome_stores(tmp_path_factory):
    """Synthetic Smarthome clips (62, 30-120 frames) converted twice: cross-subject ``cs`` (31 classes) and
    cross-view ``cv`` (19 classes)."""
    from skeltools.convert_smarthome import convert_smarthome
    from skeltools.synth_sets import write_smarthome_corpus

    root = tmp_path_factory.mktemp("smarthome")
    write_smarthome_corpus(root / "raw", 62, seed=2, frames_range=(30, 120))
    for dataset in ("smarthome", "smarthome_cv"):
        convert_smarthome([root / "raw"], root / f"{dataset}.zarr", dataset=dataset, workers=1, progress=False)
    return {"cs": root / "smarthome.zarr", "cv": root / "smarthome_cv.zarr"}

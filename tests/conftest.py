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


@pytest.fixture(scope="session")
def ntu_fixtures(fixtures) -> Path:
    path = fixtures / "ntu"
    if not path.is_dir():
        pytest.skip(f"{path} is missing")
    return path

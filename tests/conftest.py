from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo_root(monkeypatch) -> Path:
    """Run the test from the repository root (configs and params.yaml use repo-relative paths)."""
    monkeypatch.chdir(REPO)
    return REPO


@pytest.fixture(autouse=True)
def _quiet_threads():
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    yield

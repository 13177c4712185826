from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def reference_dir() -> Path:
    path = SHARED / "reference"
    if not (path / "cases.json").exists():
        pytest.skip("../shared/reference is not present")
    return path


@pytest.fixture
def shared_datasets() -> Path:
    path = SHARED / "datasets"
    if not (path / "ml1m" / "dataset_stats.json").exists():
        pytest.skip("../shared/datasets/ml1m is not present")
    return path

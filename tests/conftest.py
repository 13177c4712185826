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


@pytest.fixture(scope="session")
def pattern_run(tmp_path_factory):
    """A model trained (through the CLI) on a dataset where the next item is always the previous + 1:
    (root, config path, run dir)."""
    from synthetic import write_config, write_cycle_dataset

    from gsasrec.cli import main

    root = tmp_path_factory.mktemp("pattern")
    write_cycle_dataset(root / "datasets", **PATTERN)
    config = write_config(root / "cycle.py", sequence_length=20, max_epochs=64, max_batches_per_epoch=13,
                          dropout_rate=0.2, negs_per_pos=16, early_stopping_patience=100)
    run_dir = root / "run"
    code = main(["train", f"--config={config}", "--datasets-dir", str(root / "datasets"),
                 "--output-dir", str(run_dir), "--seed", "3", "--device", "cpu", "--no-progress"])
    assert code == 0
    return root, config, run_dir


# With the reference's N(0, 1) embeddings learning starts slowly; ~800 steps (a few seconds) suffice here.
PATTERN = {"num_users": 400, "num_items": 50, "val_users": 64}

"""Data-parallel training: 2 CPU processes with gloo, launched through torchrun and through --nproc."""

import json
import subprocess
import sys

import pytest
import torch
from synthetic import write_config, write_cycle_dataset

from gsasrec.cli import main
from gsasrec.config import load_config
from gsasrec.model import GSASRec
from gsasrec.runs import read_records

RANK_SCRIPT = """
import os, sys, torch
from pathlib import Path
from gsasrec.config import load_config
from gsasrec.data.folder import read_dataset
from gsasrec.training import RunOptions, train

config = load_config(sys.argv[1])
dataset = read_dataset(config.dataset_name, sys.argv[2])
out = Path(sys.argv[3])
result = train(config, dataset, RunOptions(output_dir=out / "run", seed=4, max_steps=4))
torch.save(result.model.state_dict(), out / f"rank{os.environ['RANK']}.pt")
"""


@pytest.fixture
def setup(tmp_path):
    write_cycle_dataset(tmp_path / "datasets", num_users=256, num_items=30, val_users=16)
    config = write_config(tmp_path / "c.py", max_epochs=2, max_batches_per_epoch=2, train_batch_size=64,
                          negs_per_pos=64, dropout_rate=0.0)
    return tmp_path, config


def test_parameters_stay_identical_across_ranks(setup):
    tmp_path, config = setup
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                             str(script), str(config), str(tmp_path / "datasets"), str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    torch.manual_seed(4)  # the run's seed: the initial weights every rank started from
    initial = GSASRec.from_config(load_config(config), 30).state_dict()
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    assert not torch.equal(rank0["output_embedding.weight"], initial["output_embedding.weight"])
    # Only rank 0 writes the run directory.
    assert [r["step"] for r in read_records(tmp_path / "run")] == [2, 4]


def test_nproc_matches_a_single_process_run_of_the_same_global_batch(setup):
    tmp_path, config = setup
    common = ["--config", str(config), "--datasets-dir", str(tmp_path / "datasets"), "--seed", "9",
              "--max-steps", "1", "--no-progress"]
    assert main(["train", *common, "--output-dir", str(tmp_path / "single")]) == 0
    assert main(["train", *common, "--output-dir", str(tmp_path / "ddp"), "--nproc", "2"]) == 0
    single, ddp = read_records(tmp_path / "single"), read_records(tmp_path / "ddp")
    assert len(single) == len(ddp) == 1
    # Same initial weights and the same 64 users; only the negatives differ (each rank draws its own).
    assert ddp[0]["loss"] == pytest.approx(single[0]["loss"], rel=0.03)
    assert json.loads((tmp_path / "ddp" / "config.json").read_text())["run"]["world_size"] == 2

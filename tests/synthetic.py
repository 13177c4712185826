"""Tiny datasets with an obvious sequential pattern, written through the library's own writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gsasrec.data.folder import Sequences, write_dataset
from gsasrec.data.split import leave_one_out, reference_validation_users


def cycle_sequences(num_users: int, num_items: int, seed: int, min_length: int = 6,
                    max_length: int = 20) -> Sequences:
    """Each user walks the catalogue in order from a random start: the next item is always the
    previous one + 1 (wrapping), so a sequential model can be nearly perfect and popularity cannot."""
    rng = np.random.default_rng(seed)
    sequences = []
    for _ in range(num_users):
        start = int(rng.integers(num_items))
        length = int(rng.integers(min_length, max_length + 1))
        sequences.append([(start + step) % num_items + 1 for step in range(length)])
    return Sequences.from_lists(sequences)


def write_cycle_dataset(root: Path, name: str = "cycle", num_users: int = 300, num_items: int = 30,
                        val_users: int = 64, seed: int = 0) -> Path:
    return write_synthetic(Path(root) / name, cycle_sequences(num_users, num_items, seed), num_items,
                           val_users, seed)


def write_synthetic(path: Path, sequences: Sequences, num_items: int, val_users: int, seed: int) -> Path:
    """A dataset folder of these sequences, split as the reference splits ML-1M."""
    num_users = len(sequences)
    train, val, test = leave_one_out(sequences, reference_validation_users(num_users, val_users, seed))
    stats = {"num_users": num_users, "num_items": num_items, "num_interactions": int(len(sequences.items))}
    return write_dataset(path, stats, train, val, test)


def write_config(path: Path, dataset_name: str = "cycle", **fields) -> Path:
    """A config file in the seed's form."""
    values = {"dataset_name": dataset_name, "sequence_length": 16, "embedding_dim": 32, "num_heads": 2,
              "num_blocks": 2, "dropout_rate": 0.1, "negs_per_pos": 8, "train_batch_size": 32,
              "max_batches_per_epoch": 10, "max_epochs": 4, "early_stopping_patience": 5, **fields}
    body = ",\n    ".join(f"{k}={v!r}" for k, v in values.items())
    header = "from config import GSASRecExperimentConfig\n\n"
    path.write_text(f"{header}config = GSASRecExperimentConfig(\n    {body},\n)\n")
    return path


def successor_sequences(num_users: int = 800, num_items: int = 300, seed: int = 0, follow: float = 0.9,
                        min_length: int = 10, max_length: int = 60) -> Sequences:
    """Each item has one fixed successor (a random permutation of the catalogue), which comes next with
    probability `follow`; otherwise the next item is uniform. A sequential model can reach an nDCG@10 of
    about `follow`; popularity, which is nearly flat here, stays near random (about 0.02 for 300 items)."""
    rng = np.random.default_rng(seed)
    successor = rng.permutation(num_items)
    sequences = []
    for _ in range(num_users):
        length = int(rng.integers(min_length, max_length + 1))
        item = int(rng.integers(num_items))
        sequence = [item]
        for _ in range(length - 1):
            item = int(successor[item]) if rng.random() < follow else int(rng.integers(num_items))
            sequence.append(item)
        sequences.append([i + 1 for i in sequence])
    return Sequences.from_lists(sequences)


def write_successor_dataset(root: Path, name: str = "successor", num_users: int = 800, num_items: int = 300,
                            val_users: int = 128, seed: int = 0) -> Path:
    return write_synthetic(Path(root) / name, successor_sequences(num_users, num_items, seed), num_items,
                           val_users, seed)

"""A generated log of short sessions, for step-cost benchmarks on data unlike ML-1M.

    python benchmarks/make_short_sessions.py benchmarks/runs/datasets
    python benchmarks/speed.py --config benchmarks/runs/datasets/short_sessions.py \
        --datasets-dir benchmarks/runs/datasets --no-eval [--no-pack]

Writes <dir>/short_sessions (20,000 users, 15,000 items, history lengths log-normal with median 20,
clipped to 5..200; items Zipf-like) split as the reference splits ML-1M, and <dir>/short_sessions.py, a
config naming only the dataset: the reference's defaults (length 200, 256 wide, 3 blocks, 4 heads, 256
negatives, batch 128).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from gsasrec.data.folder import Sequences, write_dataset
from gsasrec.data.split import leave_one_out, reference_validation_users

USERS, ITEMS, MEDIAN_LENGTH = 20_000, 15_000, 20


def short_sessions(seed: int = 0) -> Sequences:
    rng = np.random.default_rng(seed)
    lengths = np.clip(np.round(rng.lognormal(np.log(MEDIAN_LENGTH), 0.6, USERS)), 5, 200).astype(np.int64)
    popularity = 1.0 / np.arange(1, ITEMS + 1) ** 0.8
    items = rng.choice(ITEMS, size=int(lengths.sum()), p=popularity / popularity.sum()) + 1
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return Sequences.from_lists([items[a:b].tolist() for a, b in zip(offsets[:-1], offsets[1:])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets_dir", type=Path)
    args = parser.parse_args()
    sequences = short_sessions()
    train, val, test = leave_one_out(sequences, reference_validation_users(USERS, 512, 0))
    stats = {"num_users": USERS, "num_items": ITEMS, "num_interactions": int(len(sequences.items))}
    path = write_dataset(args.datasets_dir / "short_sessions", stats, train, val, test, force=True)
    config = args.datasets_dir / "short_sessions.py"
    config.write_text("from config import GSASRecExperimentConfig\n\n"
                      "config = GSASRecExperimentConfig(dataset_name='short_sessions')\n")
    print(f"wrote {path} (median history {int(np.median(sequences.lengths))}) and {config}")


if __name__ == "__main__":
    main()

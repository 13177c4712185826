"""Training and evaluation with a synthetic 1-million-item catalogue on the CPU.

    python benchmarks/large_catalogue.py                  # 1,000,000 items
    python benchmarks/large_catalogue.py --items 200000 --quick

Builds a dataset folder of --users users with 50 interactions each over --items items (Zipf-like
popularity), trains with 256 negatives for --steps steps (sparse logits: bagged products on a CPU; the dense path
is refused at this size) and evaluates the 512 validation users with top-10 lists computed in item blocks
of at most score_chunk_elements scores. Prints seconds per step, evaluation time and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from gsasrec.config import make_config
from gsasrec.data.folder import Sequences, read_dataset, write_dataset
from gsasrec.data.split import leave_one_out, sample_validation_users
from gsasrec.evaluation import evaluate_config
from gsasrec.training import RunOptions, train


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--score-chunk-elements", type=int, default=1 << 26)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.users = 5, 4000
    rng = np.random.default_rng(0)
    lengths = np.full(args.users, 50)
    items = np.minimum(rng.zipf(1.1, lengths.sum()), args.items)
    sequences = Sequences(items.astype(np.int64), np.concatenate([[0], np.cumsum(lengths)]))
    with tempfile.TemporaryDirectory() as folder:
        train_split, val, test = leave_one_out(sequences, sample_validation_users(lengths, 512, 0))
        stats = {"num_users": args.users, "num_items": args.items, "num_interactions": int(lengths.sum())}
        write_dataset(Path(folder) / "large", stats, train_split, val, test)
        dataset = read_dataset("large", folder)
        config = make_config(dataset_name="large", sequence_length=50, embedding_dim=64, num_heads=1,
                             num_blocks=2, dropout_rate=0.2, negs_per_pos=256, train_batch_size=64,
                             max_batches_per_epoch=args.steps, max_epochs=1,
                             score_chunk_elements=args.score_chunk_elements)
        before = peak_rss_mb()
        started = time.perf_counter()
        result = train(config, dataset, RunOptions(output_dir=Path(folder) / "run", seed=0, progress=False))
        training_seconds = time.perf_counter() - started  # includes one validation
        started = time.perf_counter()
        metrics = evaluate_config(result.model, dataset.val, config)
        evaluation_seconds = time.perf_counter() - started
    full_matrix_mb = 512 * (args.items + 2) * 4 / 2**20
    print(json.dumps({"items": args.items, "users": args.users, "steps": result.steps,
                      "train_and_validate_s": round(training_seconds, 1),
                      "s_per_step_incl_validation": round(training_seconds / result.steps, 2),
                      "evaluate_512_users_s": round(evaluation_seconds, 2),
                      "score_block_mb": round(args.score_chunk_elements * 4 / 2**20),
                      "full_512_x_items_matrix_would_be_mb": round(full_matrix_mb),
                      "peak_rss_mb": round(peak_rss_mb()), "rss_before_training_mb": round(before),
                      "nDCG@10": round(metrics["nDCG@10"], 4), "torch": torch.__version__}))


if __name__ == "__main__":
    main()

"""Evaluate every checkpoint under pretrained/ on the ML-1M test split and print the seed's table beside it.

    python scripts/seed_table.py [--datasets-dir ../shared/datasets] [--folder pretrained]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gsasrec.checkpoint import load_model
from gsasrec.data.recipes import open_dataset
from gsasrec.evaluation import evaluate_config

# The seed README's table (test set, all users, rated items filtered, top 10).
SEED = {"SASRec": {"R@1": 0.0442, "R@10": 0.2392, "nDCG@10": 0.1259},
        "gSASRec": {"R@1": 0.0754, "R@10": 0.3003, "nDCG@10": 0.1726}}


def model_kind(config) -> str:
    return "SASRec" if config.negs_per_pos == 1 and config.gbce_t == 0.0 and config.loss == "gbce" else "gSASRec"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets-dir")
    parser.add_argument("--folder", default=str(Path(__file__).resolve().parents[1] / "pretrained"))
    args = parser.parse_args()
    checkpoints = sorted(Path(args.folder).glob("*.pt"))
    if not checkpoints:
        raise SystemExit(f"no checkpoints in {args.folder}")
    print("| checkpoint | loss | negatives | t | R@1 | R@10 | nDCG@10 | seed R@1 | seed R@10 | seed nDCG@10 |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    dataset = None
    for path in checkpoints:
        model, config, _ = load_model(path)
        dataset = dataset or open_dataset(config.dataset_name, args.datasets_dir)
        metrics = evaluate_config(model, dataset.test, config, ["R@1", "R@10", "nDCG@10"])
        seed = SEED[model_kind(config)]
        print(f"| {path.name} | {config.loss} | {config.negs_per_pos} | {config.gbce_t} | "
              + " | ".join(f"{metrics[m]:.4f}" for m in ("R@1", "R@10", "nDCG@10")) + " | "
              + " | ".join(f"{seed[m]:.4f}" for m in ("R@1", "R@10", "nDCG@10")) + " |")


if __name__ == "__main__":
    main()

"""Ship a trained run's weights under pretrained/: a weights-only checkpoint (weights, config, dataset
stats) carrying the run's facts (command, steps, minutes) and its test metrics and calibration.

    python scripts/ship_checkpoint.py --run benchmarks/runs/gsasrec --name ml1m_gsasrec_t0.75 \
        --datasets-dir ../shared/datasets --command "gsasrec train --config configs/ml1m_gsasrec_cpu.py ..."

The final weights (last.pt) are shipped: the recipes' budgets end on a decayed learning rate, and the
512 validation users are too few to pick an earlier epoch reliably. `gsasrec evaluate --checkpoint
pretrained/NAME.pt` then prints the stored test metrics (tests/test_pretrained.py checks that it does).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gsasrec.calibration import expected_calibration_error, scored_pairs
from gsasrec.checkpoint import LAST_CHECKPOINT, load_model, save_checkpoint
from gsasrec.data.recipes import open_dataset
from gsasrec.evaluation import evaluate_config
from gsasrec.runs import read_records, read_run_config

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, type=Path, help="run folder")
    parser.add_argument("--name", required=True, help="file name under pretrained/ (without .pt)")
    parser.add_argument("--command", required=True, help="the command that trained the run")
    parser.add_argument("--datasets-dir")
    parser.add_argument("--output", type=Path, default=REPO / "pretrained")
    args = parser.parse_args()
    model, config, payload = load_model(args.run / LAST_CHECKPOINT)
    dataset = open_dataset(config.dataset_name, args.datasets_dir)
    test = evaluate_config(model, dataset.test, config)
    calibration = expected_calibration_error(*scored_pairs(model, dataset.test, negatives=1000))
    records = read_records(args.run)
    environment = read_run_config(args.run)["environment"]
    facts = {"command": args.command, "seed": payload["seed"], "steps": payload["progress"]["steps"],
             "minutes": round(records[-1]["seconds"] / 60, 1), "machine": environment["platform"],
             "threads": environment["threads"], "torch": environment["torch"],
             "test_metrics": test, "calibration": calibration.measures()}
    args.output.mkdir(parents=True, exist_ok=True)
    save_checkpoint(args.output / f"{args.name}.pt", model, config, dataset.stats, **facts)
    print(json.dumps({"file": str(args.output / f"{args.name}.pt"), **facts}))


if __name__ == "__main__":
    main()

"""Ship a trained run's weights under pretrained/: a weights-only checkpoint (weights, config, dataset
stats) carrying the run's facts (command, steps, minutes) and its test metrics and calibration.

    python scripts/ship_checkpoint.py --run benchmarks/runs/gsasrec --name ml1m_gsasrec_t0.75 \
        --datasets-dir ../shared/datasets --command "gsasrec train --config configs/ml1m_gsasrec_cpu.py ..."

The final weights (last.pt) are shipped: the recipes' budgets end on a decayed learning rate, and the
512 validation users are too few to pick an earlier epoch reliably. `gsasrec evaluate --checkpoint
pretrained/NAME.pt` then prints the stored test metrics (tests/test_pretrained.py checks that it does).

    python scripts/ship_checkpoint.py --refresh pretrained/*.pt --datasets-dir ../shared/datasets

measures shipped files again (after a change to how a figure is measured) and rewrites them with their
weights and training facts unchanged.
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
    parser.add_argument("--run", type=Path, help="run folder")
    parser.add_argument("--name", help="file name under pretrained/ (without .pt)")
    parser.add_argument("--command", help="the command that trained the run")
    parser.add_argument("--refresh", nargs="+", type=Path, metavar="FILE",
                        help="shipped files to measure again and rewrite (instead of --run/--name/--command)")
    parser.add_argument("--datasets-dir")
    parser.add_argument("--output", type=Path, default=REPO / "pretrained")
    args = parser.parse_args()
    if args.refresh:
        for path in args.refresh:
            refresh(path, args.datasets_dir)
    elif args.run and args.name and args.command:
        ship(args)
    else:
        parser.error("give --run, --name and --command, or --refresh FILE ...")


def measure(model, config, datasets_dir: str | None) -> tuple[dict, dict, dict]:
    """(test metrics, calibration figures, dataset stats) of a model on its dataset's test split."""
    dataset = open_dataset(config.dataset_name, datasets_dir)
    test = evaluate_config(model, dataset.test, config)
    pairs = scored_pairs(model, dataset.test, negatives=1000, filter_rated=config.filter_rated)
    return test, expected_calibration_error(*pairs).measures(), dataset.stats


def ship(args: argparse.Namespace) -> None:
    model, config, payload = load_model(args.run / LAST_CHECKPOINT)
    test, calibration, stats = measure(model, config, args.datasets_dir)
    records = read_records(args.run)
    environment = read_run_config(args.run)["environment"]
    facts = {"command": args.command, "seed": payload["seed"], "steps": payload["progress"]["steps"],
             "minutes": round(records[-1]["seconds"] / 60, 1), "machine": environment["platform"],
             "threads": environment["threads"], "torch": environment["torch"],
             "test_metrics": test, "calibration": calibration}
    args.output.mkdir(parents=True, exist_ok=True)
    save_checkpoint(args.output / f"{args.name}.pt", model, config, stats, **facts)
    print(json.dumps({"file": str(args.output / f"{args.name}.pt"), **facts}))


def refresh(path: Path, datasets_dir: str | None) -> None:
    model, config, payload = load_model(path)
    test, calibration, stats = measure(model, config, datasets_dir)
    kept = {key: value for key, value in payload.items()
            if key not in ("format", "state_dict", "config", "dataset_stats")}
    save_checkpoint(path, model, config, stats, **{**kept, "test_metrics": test, "calibration": calibration})
    print(json.dumps({"file": str(path), "test_metrics": test, "calibration": calibration}))


if __name__ == "__main__":
    main()

"""gsasrec tune: an Optuna search over the settings of `train --dataset`, trial by trial."""

from __future__ import annotations

import argparse
from pathlib import Path

from gsasrec.cli import PRECISION_CHOICES, add_common, formatter, positive_float, positive_int, seed_number
from gsasrec.errors import GSASRecError

EXAMPLES = """examples:
  gsasrec tune --dataset shop --trials 20 --max-minutes 3          # about an hour; rerun to resume
  gsasrec tune --dataset shop --trials 40 --max-minutes 3 --storage postgresql://host/db   # shared study
  gsasrec train --config runs/tune-shop/best_config.py --max-minutes 30   # then train the best longer"""


def register(commands) -> None:
    tune = commands.add_parser(
        "tune", help="search hyperparameters with Optuna (trials pruned on validation)", formatter_class=formatter,
        description="Each trial trains the derived settings of `train --dataset` with embedding_dim, num_blocks, "
                    "dropout_rate, learning_rate, negs_per_pos and gbce_t drawn by Optuna's TPE sampler, for "
                    "--max-minutes, validating as it goes; a trial below the median of earlier trials at the "
                    "same validation is stopped (pruned). The study lives in <output-dir>/study.db (or "
                    "--storage): running the same command again resumes it, and several processes can share "
                    "one. At the end: best_config.py, trials.csv and trials.png in the output folder.",
        epilog=EXAMPLES)
    tune.add_argument("--dataset", required=True, metavar="NAME", help="dataset folder name")
    tune.add_argument("--trials", type=positive_int, required=True, metavar="N",
                      help="finished trials the study should have (those of an earlier, interrupted tune count)")
    budget = tune.add_mutually_exclusive_group(required=True)
    budget.add_argument("--max-minutes", type=positive_float, metavar="M", help="training minutes of each trial")
    budget.add_argument("--max-steps", type=positive_int, metavar="N", help="or training steps of each trial")
    tune.add_argument("--output-dir", metavar="DIR", help="tune folder (default: runs/tune-<dataset>)")
    tune.add_argument("--storage", metavar="URL",
                      help="an Optuna database URL to keep (or share) the study in, e.g. "
                           "sqlite:////shared/study.db or postgresql://... (default: <output-dir>/study.db)")
    tune.add_argument("--study-name", metavar="NAME", help="study name in the database (default gsasrec-<dataset>)")
    tune.add_argument("--seed", type=seed_number, default=0,
                      help="sampler seed; trial N trains with seed + N (default 0)")
    tune.add_argument("--precision", choices=PRECISION_CHOICES, default="auto",
                      help="training precision (default auto: bf16 where the hardware has it, else fp32)")
    add_common(tune)
    tune.set_defaults(handler=run)


def run(args: argparse.Namespace) -> None:
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise GSASRecError("tuning needs Optuna: pip install 'gsasrec[tune]'") from None
    from gsasrec.data.recipes import open_dataset
    from gsasrec.runtime import resolve_device, resolve_precision
    from gsasrec.tuning import BEST_CONFIG, TRIALS_PLOT, TRIALS_TABLE, TuneOptions, tune

    device = resolve_device(args.device)
    dataset = open_dataset(args.dataset, args.datasets_dir)
    output_dir = Path(args.output_dir or f"runs/tune-{args.dataset}")
    precision = resolve_precision(args.precision, device)
    options = TuneOptions(trials=args.trials, minutes_per_trial=args.max_minutes, steps_per_trial=args.max_steps,
                          output_dir=output_dir,
                          storage=args.storage, study_name=args.study_name, seed=args.seed, device=str(device),
                          precision=precision)
    tune(dataset, options, report=lambda line: print(line, flush=True))
    for name in (BEST_CONFIG, TRIALS_TABLE, TRIALS_PLOT):
        print(f"wrote {output_dir / name}")

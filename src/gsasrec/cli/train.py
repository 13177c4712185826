"""gsasrec train: from a config file, or --resume a run folder; --nproc for local data-parallel runs."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from gsasrec.cli import INTERRUPTED, add_common, formatter, positive_float, positive_int
from gsasrec.errors import GSASRecError

EXAMPLES = """examples:
  gsasrec train --config configs/ml1m_gsasrec_10min.py --precision bf16 --max-steps 1400   # ~10 CPU minutes
  gsasrec train --config=configs/ml1m_sasrec.py --datasets-dir ../shared/datasets --max-minutes 30
  gsasrec train --config configs/ml1m_gsasrec.py --seed 1 --max-steps 200 --output-dir runs/try
  gsasrec train --resume runs/try                    # after Ctrl-C, SIGTERM or a crash
  gsasrec train --config configs/ml1m_gsasrec.py --nproc 2
  torchrun --nproc_per_node=4 -m gsasrec train --config configs/ml1m_gsasrec.py"""


def register(commands) -> None:
    train = commands.add_parser(
        "train", help="train a model from a Python config file", formatter_class=formatter,
        description="Train gSASRec/SASRec on a dataset folder. Validates after every epoch, keeps the best "
                    "checkpoint by val_metric, stops early after early_stopping_patience epochs without "
                    "improvement.", epilog=EXAMPLES)
    train.add_argument("--config", metavar="FILE",
                       help="Python config file defining config = GSASRecExperimentConfig(...)")
    train.add_argument("--resume", metavar="RUN_DIR",
                       help="continue an interrupted run from its last.pt (instead of --config)")
    train.add_argument("--nproc", type=positive_int, metavar="N",
                       help="data-parallel on N local processes (a shortcut for torchrun --nproc_per_node=N "
                            "-m gsasrec train ...): gloo on CPU, NCCL on GPUs")
    add_common(train)
    train.add_argument("--output-dir", metavar="DIR",
                       help="run directory for config.json, metrics.jsonl, best.pt "
                            "(default: runs/<dataset>-<timestamp>)")
    train.add_argument("--force", action="store_true",
                       help="start over in an --output-dir that already holds a run (its files are replaced)")
    train.add_argument("--seed", type=int, metavar="N",
                       help="random seed; the same seed repeats a CPU run exactly (default: random, recorded)")
    train.add_argument("--max-steps", type=positive_int, metavar="N",
                       help="stop after N training steps (validates once more first)")
    train.add_argument("--max-minutes", type=positive_float, metavar="M",
                       help="stop after M minutes of training (validates once more first)")
    train.add_argument("--precision", choices=("fp32", "bf16"), default=None,
                       help="bf16: autocast matrix products to bfloat16, loss in float32; about 1.8x faster "
                            "on CPUs with bf16 units and on GPUs (default fp32, as the reference; "
                            "--resume keeps the run's)")
    train.add_argument("--compile", action="store_true", default=None,
                       help="torch.compile the model for training (a one-time compile of ~30 s)")
    train.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="a progress bar with the run's ETA, or (--no-progress) a plain line every 30 s: "
                            "step, loss, steps/s, ETA (default: a bar on a terminal, lines otherwise)")
    train.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int | None:
    from gsasrec.checkpoint import LAST_CHECKPOINT
    from gsasrec.config import load_config
    from gsasrec.data.recipes import open_dataset
    from gsasrec.distributed import is_main_process, launch
    from gsasrec.runtime import resolve_device
    from gsasrec.training import RunOptions, resume, train

    if (args.config is None) == (args.resume is None):
        raise GSASRecError("train needs exactly one of --config FILE or --resume RUN_DIR")
    if args.nproc and args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        code = launch(args.nproc, without_option(args.argv, "--nproc"))
        if code != 0:
            raise GSASRecError(f"distributed training failed (exit code {code}); see the ranks' output above")
        return None
    device = resolve_device(args.device)
    if args.resume:  # the run's recorded budget, precision and compile go on unless a flag says otherwise
        result = resume(args.resume, args.datasets_dir, device=device, progress=args.progress,
                        max_steps=args.max_steps, max_minutes=args.max_minutes, precision=args.precision,
                        compile=args.compile)
    else:
        options = RunOptions(output_dir=Path(args.output_dir) if args.output_dir else None, device=device,
                             seed=args.seed, max_steps=args.max_steps, max_minutes=args.max_minutes,
                             progress=args.progress, precision=args.precision or "fp32",
                             compile=bool(args.compile), force=args.force)
        config = load_config(args.config)
        result = train(config, open_dataset(config.dataset_name, args.datasets_dir), options)
    if not is_main_process():
        return None
    if result.interrupted:  # Ctrl-C or SIGTERM: the trainer has saved last.pt and printed how to resume
        return INTERRUPTED
    print(f"best {result.val_metric} {result.best_metric:.4f} at step {result.best_step} "
          f"({result.steps} steps, {result.epochs} epochs, {result.seconds:.0f} s)")
    print(f"best checkpoint: {result.best_checkpoint}")
    print(f"final weights: {result.run_dir / LAST_CHECKPOINT}")
    print(f"evaluate it with: gsasrec evaluate --checkpoint {result.best_checkpoint}")
    return None


def without_option(argv: list[str], name: str) -> list[str]:
    """argv without `name VALUE` / `name=VALUE`."""
    kept, skip = [], False
    for word in argv:
        if skip:
            skip = False
        elif word == name:
            skip = True
        elif not word.startswith(name + "="):
            kept.append(word)
    return kept

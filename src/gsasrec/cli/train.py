"""gsasrec train: from a config file, or --resume a run folder; --nproc for local data-parallel runs."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from gsasrec.cli import (
    INTERRUPTED,
    PRECISION_CHOICES,
    add_common,
    formatter,
    launch_ranks,
    non_negative_int,
    positive_float,
    positive_int,
    seed_number,
)
from gsasrec.errors import GSASRecError

DEFAULT_MINUTES = 10.0  # derive.DEFAULT_MINUTES (not imported: --help must not wait for numpy and torch)

EXAMPLES = """examples:
  gsasrec train --config configs/ml1m_gsasrec_10min.py --precision auto --max-steps 1400   # 3-4 min, bf16 CPU
  gsasrec train --config configs/ml1m_gsasrec.py --set shared_negatives=True   # negatives drawn once per batch row
  gsasrec train --dataset shop --max-minutes 10      # no config: settings derived from the data
  gsasrec train --dataset shop --set embedding_dim=64 --set dropout_rate=0.2
  gsasrec train --config=configs/ml1m_sasrec.py --datasets-dir ../shared/datasets --max-minutes 30
  gsasrec train --config configs/ml1m_gsasrec.py --seed 1 --max-steps 200 --output-dir runs/try
  gsasrec train --resume runs/try                    # after Ctrl-C, SIGTERM or a crash
  gsasrec train --config configs/ml1m_gsasrec.py --nproc 2 --output-dir runs/ddp
  gsasrec train --resume runs/ddp --nproc 2           # a distributed run, continued as one
  gsasrec train --config configs/ml1m_gsasrec.py --nproc 2 --output-dir runs/ddp --resume-if-exists --max-restarts 3
  torchrun --nproc_per_node=4 --max-restarts=3 -m gsasrec train --config configs/ml1m_gsasrec.py \\
      --output-dir runs/big --resume-if-exists      # workers restarted after a failure pick up last.pt
  GSASREC_NATIVE=0 gsasrec train --config configs/ml1m_gsasrec.py   # torch's gBCE path, not the C kernel

environment:
  GSASREC_NATIVE   1 (default): on a CPU, gBCE with each position's own negatives runs in a C kernel built by
                   the machine's C compiler on first use (cached in ~/.cache/gsasrec/native), and so do the
                   draws of the negatives and dropout masks (the numbers torch would draw); 0: torch's paths
                   (the same loss up to float rounding). Without a compiler torch's paths are taken either way.
  GOMP_SPINCOUNT   rounds torch's idle CPU threads spin before they sleep: 20000 unless set (libgomp's own
                   default, 300000, cost a bf16 ML-1M step 7%)
  GSASREC_DATASETS the datasets folder when --datasets-dir is not given (else ./datasets)"""


def register(commands) -> None:
    train = commands.add_parser(
        "train", help="train a model from a dataset name or a Python config file", formatter_class=formatter,
        description="Train gSASRec/SASRec on a dataset folder. Validates after every epoch, keeps the best "
                    "checkpoint by val_metric, stops early after early_stopping_patience epochs without "
                    "improvement. With --dataset, every setting comes from the dataset's statistics and "
                    "the budget (printed with its reason, and written to <run>/config.py to edit and pass "
                    "back with --config).", epilog=EXAMPLES)
    train.add_argument("--config", metavar="FILE",
                       help="Python config file defining config = GSASRecExperimentConfig(...)")
    train.add_argument("--dataset", metavar="NAME",
                       help="train on dataset folder NAME with settings derived from its statistics and the "
                            f"budget (default budget: --max-minutes {DEFAULT_MINUTES:g}; precision: bf16 where "
                            "the hardware has it)")
    train.add_argument("--set", action="append", metavar="FIELD=VALUE", dest="overrides",
                       help="replace one config field of --config or --dataset, e.g. --set embedding_dim=64 "
                            "(repeatable; VALUE is a Python literal)")
    train.add_argument("--resume", metavar="RUN_DIR",
                       help="continue an interrupted run from its last.pt (instead of --config); with --nproc or "
                            "torchrun, as a distributed run (bit-identical on the CPU with its own world size)")
    train.add_argument("--resume-if-exists", action="store_true",
                       help="with --output-dir: continue the run there from its last.pt when it has one, else "
                            "start it; refused when that run has another config. For restarted workers "
                            "(torchrun --max-restarts) and re-submitted batch jobs")
    train.add_argument("--nproc", type=positive_int, metavar="N",
                       help="data-parallel on N local processes (a shortcut for torchrun --nproc_per_node=N "
                            "-m gsasrec train ...): gloo on CPU, NCCL on GPUs")
    train.add_argument("--max-restarts", type=non_negative_int, metavar="K", default=0,
                       help="with --nproc and --resume-if-exists: when a process fails, start them all again "
                            "from last.pt, up to K times (torchrun's --max-restarts; default 0)")
    add_common(train)
    train.add_argument("--output-dir", metavar="DIR",
                       help="run directory for config.json, metrics.jsonl, best.pt "
                            "(default: runs/<dataset>-<timestamp>)")
    train.add_argument("--force", action="store_true",
                       help="start over in an --output-dir that already holds a run (its files are replaced)")
    train.add_argument("--seed", type=seed_number, metavar="N",
                       help="random seed; the same seed repeats a CPU run exactly (default: random, recorded)")
    train.add_argument("--max-steps", type=positive_int, metavar="N",
                       help="stop after N training steps (validates once more first)")
    train.add_argument("--max-minutes", type=positive_float, metavar="M",
                       help="stop after M minutes of training (validates once more first)")
    train.add_argument("--precision", choices=PRECISION_CHOICES, default=None,
                       help="bf16: autocast matrix products to bfloat16, loss in float32; about 1.4x faster "
                            "on CPUs with bf16 units (AVX-512 BF16, AMX) and on GPUs, but many times slower "
                            "on CPUs without them; auto: bf16 where the hardware has it, else fp32 (default: "
                            "fp32 with --config, as the reference; auto with --dataset; --resume keeps the run's)")
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
    from gsasrec.derive import parse_overrides, with_overrides
    from gsasrec.runtime import is_main_process, resolve_device, resolve_precision
    from gsasrec.training import RunOptions, resume, train

    if sum(x is not None for x in (args.config, args.dataset, args.resume)) != 1:
        raise GSASRecError("train needs exactly one of --dataset NAME, --config FILE or --resume RUN_DIR")
    if args.resume and args.overrides:
        raise GSASRecError("--set changes a new run's config; a resumed run keeps its own")
    check_restart_options(args)
    code = launch_ranks(args, args.max_restarts)
    if code is not None:
        if code != 0:
            run_dir = args.resume or args.output_dir
            hint = f"; continue it with: gsasrec train --resume {run_dir} --nproc {args.nproc}" if run_dir else ""
            raise GSASRecError(f"distributed training failed (exit code {code}); see the ranks' output above{hint}")
        return None
    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device) if args.precision else None
    changes = dict(device=device, progress=args.progress, max_steps=args.max_steps, max_minutes=args.max_minutes,
                   precision=precision, compile=args.compile)
    existing = existing_run_to_continue(args) if args.resume_if_exists else None
    if existing == "ended":
        return None
    if args.resume or existing == "resume":  # the run's recorded budget, precision and compile go on
        result = resume(args.resume or args.output_dir, args.datasets_dir, **changes)
    else:
        if precision is None:  # auto for derived settings; with a config file the reference's fp32
            precision = resolve_precision("auto", device) if args.dataset else "fp32"
        options = RunOptions(output_dir=Path(args.output_dir) if args.output_dir else None, device=device,
                             seed=args.seed, max_steps=args.max_steps, max_minutes=args.max_minutes,
                             progress=args.progress, precision=precision,
                             compile=bool(args.compile), force=args.force or existing == "start",
                             command=shlex.join(["gsasrec", *args.argv]))
        overrides = parse_overrides(args.overrides)
        if args.dataset:
            dataset = open_dataset(args.dataset, args.datasets_dir)
            config = settings_for(dataset, options, overrides, precision_given=args.precision not in (None, "auto"))
        else:
            config = with_overrides(load_config(args.config), overrides)
            dataset = open_dataset(config.dataset_name, args.datasets_dir)
        result = train(config, dataset, options)
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


def check_restart_options(args: argparse.Namespace) -> None:
    if args.resume_if_exists and (not args.output_dir or args.resume or args.force):
        raise GSASRecError("--resume-if-exists needs --output-dir (the run to continue) and a --config or --dataset "
                           "to start it with; it does not go with --resume or --force")
    if args.max_restarts and not (args.nproc and args.resume_if_exists):
        raise GSASRecError("--max-restarts needs --nproc N and --resume-if-exists (restarted processes continue "
                           "from last.pt; under torchrun itself, give torchrun --max-restarts)")


def existing_run_to_continue(args: argparse.Namespace) -> str:
    """--resume-if-exists: 'resume' the run in --output-dir, 'start' it (none there, or one that saved no
    last.pt yet), or 'ended' (it has finished or spent its budget: said, nothing to do). A run there of
    another config is an error: a new run is never mixed into an old one."""
    from gsasrec.config import load_config
    from gsasrec.derive import parse_overrides, with_overrides
    from gsasrec.runtime import is_main_process
    from gsasrec.training import config_difference, existing_run, resume_options, why_ended

    recorded, state = existing_run(args.output_dir)
    if recorded is None:
        return "start"
    overrides = parse_overrides(args.overrides)
    if args.config:
        wanted = with_overrides(load_config(args.config), overrides).to_dict()
    else:  # derived settings depend on a timing: the dataset and --set values say whether it is the same run
        wanted = {"dataset_name": args.dataset, **overrides}
    difference = config_difference(recorded, wanted)
    if difference:
        raise GSASRecError(f"{args.output_dir} holds another run ({difference}); --resume-if-exists continues only "
                           f"the same run: give another --output-dir, or --force to start over")
    if state is None:
        return "start"
    reason = why_ended(state, resume_options(args.output_dir, state, {"max_steps": args.max_steps,
                                                                       "max_minutes": args.max_minutes}))
    if reason:
        if is_main_process():
            print(f"{args.output_dir} {reason.split(';')[0]}: nothing to do")
        return "ended"
    return "resume"


def settings_for(dataset, options, overrides: dict, precision_given: bool):
    """The derived config for `dataset` (options get the default budget where the command line gave none),
    printed with its reasons; options.config_notes carries them into <run>/config.py."""
    from gsasrec.derive import DEFAULT_MINUTES, derive_config, measure_step_seconds, with_overrides
    from gsasrec.runtime import is_main_process

    shown = is_main_process()
    if precision_given:
        notes = {"precision": f"{options.precision}: --precision"}
    else:  # auto, resolved by run()
        hardware = "has" if options.precision == "bf16" else "has no"
        notes = {"precision": f"{options.precision}: this {options.device.type.upper()} {hardware} bf16 units"}
    if options.max_steps is None and options.max_minutes is None:
        options.max_minutes = DEFAULT_MINUTES
        notes["budget"] = f"{DEFAULT_MINUTES:g} minutes (the default; --max-minutes or --max-steps to change)"
    if options.max_steps is not None:
        derived = derive_config(dataset, max_steps=options.max_steps)
    else:
        trial = with_overrides(derive_config(dataset, max_steps=1).config, overrides)
        if shown:
            print("timing a few training steps to fit the learning-rate decay to the budget ...", flush=True)
        seconds = measure_step_seconds(trial, dataset, options.device, options.precision)
        derived = derive_config(dataset, step_seconds=seconds, max_minutes=options.max_minutes)
    config = with_overrides(derived.config, overrides)
    reasons = {**derived.reasons, **{name: "--set" for name in overrides}}
    options.config_notes = reasons
    if shown:
        print(f"settings for dataset {dataset.name} (from its statistics and the budget):")
        for name, note in notes.items():
            print(f"  {name:<24} {note}")
        for name, reason in reasons.items():
            print(f"  {name:<24} {getattr(config, name)!r:<8} {reason}")
    return config


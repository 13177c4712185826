"""gsasrec evaluate: metrics of a checkpoint on the test or validation split, and its calibration."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gsasrec.cli import PRECISION_CHOICES, add_common, formatter, positive_int
from gsasrec.errors import GSASRecError
from gsasrec.files import check_writable

EXAMPLES = """examples:
  gsasrec evaluate --checkpoint runs/ml1m-20261128-101500/best.pt
  gsasrec evaluate --config=configs/ml1m_gsasrec.py --checkpoint ref.pt --split test --json
  gsasrec evaluate --config configs/ml1m_gsasrec.py ref.pt --metrics nDCG@10 RR@10 P@5
  gsasrec evaluate --checkpoint runs/ml1m/last.pt --calibration --calibration-plot reliability.png
  gsasrec evaluate --checkpoint runs/shop/last.pt --no-transition-term   # the network alone
  gsasrec evaluate --baseline transitions --dataset ml1m      # what a model must beat"""


# config field -> the option that sets it for one evaluation
OVERRIDES = {"metrics": "metrics", "recommendation_limit": "recommendation_limit",
             "filter_rated": "filter_rated", "eval_batch_size": "batch_size", "transition_term": "transition_term"}


def register(commands) -> None:
    evaluate = commands.add_parser(
        "evaluate", help="evaluate a checkpoint on the test or validation split", formatter_class=formatter,
        description="Rank all items for every user of a split and report ir-measures metrics. "
                    "A checkpoint written by 'gsasrec train' needs no --config; a bare reference "
                    "state_dict does.", epilog=EXAMPLES)
    evaluate.add_argument("checkpoint_path", nargs="?", metavar="CHECKPOINT",
                          help="checkpoint file (or use --checkpoint)")
    evaluate.add_argument("--checkpoint", metavar="FILE", help="checkpoint file")
    evaluate.add_argument("--baseline", choices=("popularity", "transitions"),
                          help="evaluate a trivial recommender instead of a checkpoint, by the same code: the "
                               "most popular training items, or the items that most often followed the "
                               "user's last item (popularity filling in); needs --dataset")
    evaluate.add_argument("--dataset", metavar="NAME", help="the dataset folder for --baseline")
    evaluate.add_argument("--config", metavar="FILE",
                          help="Python config file (default: the config stored in the checkpoint)")
    evaluate.add_argument("--split", choices=("test", "val"), default="test",
                          help="which held-out split to rank (default: test)")
    evaluate.add_argument("--metrics", nargs="+", metavar="MEASURE",
                          help="ir-measures names, e.g. nDCG@10 R@10 RR (default: the config's metrics)")
    evaluate.add_argument("--recommendation-limit", type=positive_int, metavar="K",
                          help="length of each ranked list (default: the config's recommendation_limit)")
    evaluate.add_argument("--filter-rated", action=argparse.BooleanOptionalAction, default=None,
                          help="exclude items already in the user's history (default: the config's)")
    evaluate.add_argument("--transition-term", action=argparse.BooleanOptionalAction, default=None,
                          help="add the checkpoint's transition term to the scores, when it has one (the default); "
                               "--no-transition-term ranks by the network alone")
    evaluate.add_argument("--batch-size", type=positive_int, metavar="N",
                          help="most users scored at once (default: the config's eval_batch_size)")
    evaluate.add_argument("--precision", choices=PRECISION_CHOICES, default="fp32",
                          help="bf16: the model's matrix products in bfloat16, about 2x faster on CPUs with "
                               "bf16 units (many times slower without them), metrics within rounding of fp32's; "
                               "auto: bf16 where the hardware has it (default fp32: the reference's figures "
                               "to the number)")
    evaluate.add_argument("--json", action="store_true",
                          help="end the output with one JSON object mapping each measure to its value")
    evaluate.add_argument("--calibration", action="store_true",
                          help="also report the expected calibration error (ECE) of sigmoid(score) as the "
                               "probability of being the next item, the expected/observed ratio (E/O, 1 when "
                               "calibrated on average), and save a reliability diagram; with rated-item "
                               "filtering over each user's unrated items (what can be recommended), else "
                               "over the whole catalogue")
    evaluate.add_argument("--calibration-negatives", type=positive_int, default=1000, metavar="M",
                          help="non-target items sampled per user for --calibration (default 1000)")
    evaluate.add_argument("--calibration-plot", metavar="PNG",
                          help="where to save the reliability diagram (default: <checkpoint name>_calibration.png "
                               "in the working directory)")
    add_common(evaluate)
    evaluate.set_defaults(handler=run)


def run(args: argparse.Namespace) -> None:
    from gsasrec.config import load_config
    from gsasrec.evaluation import evaluate_checkpoint
    from gsasrec.runtime import retain_freed_memory

    if args.baseline or args.dataset:
        return run_baseline(args)
    retain_freed_memory()  # the ranking's score blocks are reused batch after batch (a short-lived process)
    checkpoint = args.checkpoint or args.checkpoint_path
    if checkpoint is None:
        raise GSASRecError("evaluate needs a checkpoint: --checkpoint FILE")
    if args.checkpoint and args.checkpoint_path:
        raise GSASRecError("give the checkpoint once: either --checkpoint FILE or a positional FILE")
    overrides = {field: getattr(args, option) for field, option in OVERRIDES.items()
                 if getattr(args, option) is not None}
    if args.calibration:
        check_writable(calibration_plot(args, checkpoint))  # before the passes, not after them
    try:
        result = evaluate_checkpoint(checkpoint, args.split, args.datasets_dir,
                                     load_config(args.config) if args.config else None, args.device,
                                     precision=args.precision, **overrides)
    except GSASRecError as error:
        # A config field the user set through a flag: name the flag too.
        flag = f"--{OVERRIDES[error.field].replace('_', '-')}" if error.field in OVERRIDES else None
        raise GSASRecError(f"{error} (set with {flag})" if flag else str(error)) from None
    config, device = result.config, result.model.output_table.device
    term = result.model.transition_term
    with_term = f", transition term {term.describe()}" if term is not None else ""
    print(f"{args.split}: {len(result.split.inputs)} users, top {config.recommendation_limit}, "
          f"filter_rated={config.filter_rated}{with_term}, {result.seconds:.2f} s on {device}", file=sys.stderr)
    metrics = dict(result.metrics)
    if args.calibration:
        metrics.update(report_calibration(result, args, checkpoint).measures())
    print_metrics(metrics, args.json)


def print_metrics(metrics: dict, as_json: bool) -> None:
    width = max(len(name) for name in metrics)
    for name, value in metrics.items():
        print(f"{name:<{width}}  {value:.6f}")
    if as_json:
        print(json.dumps(metrics))


def run_baseline(args: argparse.Namespace) -> None:
    """evaluate --baseline NAME --dataset NAME: the config's evaluation settings are the defaults'."""
    import time

    from gsasrec.baselines import evaluate_baseline
    from gsasrec.config import make_config
    from gsasrec.data.recipes import open_dataset

    if not (args.baseline and args.dataset):
        raise GSASRecError("--baseline needs --dataset NAME (and --dataset is only for --baseline)")
    if args.checkpoint or args.checkpoint_path or args.config or args.calibration:
        raise GSASRecError("--baseline evaluates no checkpoint: drop --checkpoint, --config and --calibration")
    overrides = {field: getattr(args, option) for field, option in OVERRIDES.items()
                 if getattr(args, option) is not None}
    config = make_config(dataset_name=args.dataset, **overrides)
    dataset = open_dataset(args.dataset, args.datasets_dir)
    split = dataset.split(args.split)
    started = time.perf_counter()
    metrics = evaluate_baseline(args.baseline, dataset.train, split, dataset.num_items, config.metrics,
                                config.recommendation_limit, config.filter_rated)
    print(f"{args.split}: {len(split.inputs)} users, baseline {args.baseline}, top {config.recommendation_limit}, "
          f"filter_rated={config.filter_rated}, {time.perf_counter() - started:.2f} s", file=sys.stderr)
    print_metrics(metrics, args.json)


def calibration_plot(args: argparse.Namespace, checkpoint: str) -> Path:
    # in the working directory, not beside the checkpoint: a shipped model's folder is not for our files
    return Path(args.calibration_plot or f"{Path(checkpoint).stem}_calibration.png")


def report_calibration(result, args: argparse.Namespace, checkpoint: str):
    from gsasrec.calibration import expected_calibration_error, save_reliability_diagram, scored_pairs
    from gsasrec.progress import JobProgress

    filter_rated = result.config.filter_rated
    with JobProgress("calibration pass", len(result.split.inputs), "users") as progress:
        probabilities, labels, weights = scored_pairs(result.model, result.split, args.calibration_negatives,
                                                      filter_rated=filter_rated, progress=progress)
    calibration = expected_calibration_error(probabilities, labels, weights)
    network = " (the network's scores, without the transition term)" if result.model.transition_term else ""
    print(f"calibration{network}: each user's target against {args.calibration_negatives} items drawn from "
          f"{'its unrated items' if filter_rated else 'the whole catalogue'}", file=sys.stderr)
    plot = calibration_plot(args, checkpoint)
    save_reliability_diagram(calibration, plot, f"{Path(checkpoint).name}, {args.split} split")
    print(f"reliability diagram: {plot}", file=sys.stderr)
    return calibration

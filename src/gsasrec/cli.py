"""`gsasrec` command line: thin glue over the Python API."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from gsasrec.errors import GSASRecError

if TYPE_CHECKING:
    from gsasrec.calibration import Calibration

EXAMPLES = {
    "train": """examples:
  gsasrec train --config configs/ml1m_gsasrec.py
  gsasrec train --config=configs/ml1m_sasrec.py --datasets-dir ../shared/datasets --max-minutes 30
  gsasrec train --config configs/ml1m_gsasrec.py --seed 1 --max-steps 200 --output-dir runs/try
  gsasrec train --resume runs/try                    # after Ctrl-C, SIGTERM or a crash
  gsasrec train --config configs/ml1m_gsasrec.py --nproc 2
  torchrun --nproc_per_node=4 -m gsasrec train --config configs/ml1m_gsasrec.py""",
    "runs": """examples:
  gsasrec runs list
  gsasrec runs list other/runs --json
  gsasrec runs show runs/ml1m-20261128-101500""",
    "evaluate": """examples:
  gsasrec evaluate --checkpoint runs/ml1m-20261128-101500/best.pt
  gsasrec evaluate --config=configs/ml1m_gsasrec.py --checkpoint ref.pt --split test --json
  gsasrec evaluate --config configs/ml1m_gsasrec.py ref.pt --metrics nDCG@10 RR@10 P@5""",
    "recommend": """examples:
  gsasrec recommend --checkpoint runs/ml1m/best.pt --history "1 2 3 4" -k 5
  gsasrec recommend --checkpoint runs/ml1m/best.pt --user 17 --split test --json""",
    "serve": """examples:
  gsasrec serve --checkpoint runs/ml1m/best.pt --port 8000
  curl -s localhost:8000/recommend -H 'content-type: application/json' -d '{"history": [1, 2, 3], "k": 5}'""",
    "export": """examples:
  gsasrec export --checkpoint runs/ml1m/best.pt --format onnx --output ml1m.onnx
  gsasrec export --checkpoint runs/ml1m/best.pt --format torchscript --output ml1m.pt""",
    "data": """examples:
  gsasrec data ml1m                                   # download the SASRec ML-1M file and split it
  gsasrec data ml1m --source ml-1m.txt --extra ../shared/datasets/ml1m/extra
  gsasrec data import --interactions events.csv --name shop --user-col user --item-col sku --time-col ts
  gsasrec data steam --source steam_reviews.json.gz
  gsasrec data gowalla --source loc-gowalla_totalCheckins.txt.gz
  gsasrec data stats ml1m --histogram ml1m_lengths.png""",
}


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--datasets-dir", metavar="DIR",
                        help="folder holding dataset folders (default: $GSASREC_DATASETS, else ./datasets)")
    parser.add_argument("--device", default="auto", metavar="auto|cpu|cuda",
                        help="where the model runs (default: auto, CUDA when available)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gsasrec", formatter_class=_formatter,
        description="gSASRec and SASRec sequential recommenders: train, evaluate.",
        epilog="run 'gsasrec COMMAND --help' for a command's options and examples")
    parser.add_argument("--version", action="version", version=f"gsasrec {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = commands.add_parser(
        "train", help="train a model from a Python config file", formatter_class=_formatter,
        description="Train gSASRec/SASRec on a dataset folder. Validates after every epoch, keeps the best "
                    "checkpoint by val_metric, stops early after early_stopping_patience epochs without "
                    "improvement.", epilog=EXAMPLES["train"])
    train.add_argument("--config", metavar="FILE",
                       help="Python config file defining config = GSASRecExperimentConfig(...)")
    train.add_argument("--resume", metavar="RUN_DIR",
                       help="continue an interrupted run from its last.pt (instead of --config)")
    train.add_argument("--nproc", type=_positive_int, metavar="N",
                       help="data-parallel on N local processes (a shortcut for torchrun --nproc_per_node=N "
                            "-m gsasrec train ...): gloo on CPU, NCCL on GPUs")
    add_common(train)
    train.add_argument("--output-dir", metavar="DIR",
                       help="run directory for config.json, metrics.jsonl, best.pt "
                            "(default: runs/<dataset>-<timestamp>)")
    train.add_argument("--seed", type=int, metavar="N",
                       help="random seed; the same seed repeats a CPU run exactly (default: random, recorded)")
    train.add_argument("--max-steps", type=_positive_int, metavar="N",
                       help="stop after N training steps (validates once more first)")
    train.add_argument("--max-minutes", type=_positive_float, metavar="M",
                       help="stop after M minutes of training (validates once more first)")
    train.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                       help="bf16: autocast matrix products to bfloat16, loss in float32; about 1.8x faster "
                            "on CPUs with bf16 units and on GPUs (default fp32, as the reference)")
    train.add_argument("--compile", action="store_true",
                       help="torch.compile the model for training (a one-time compile of ~30 s)")
    train.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="show a progress bar (default: only on a terminal)")
    train.set_defaults(handler=run_train)

    evaluate = commands.add_parser(
        "evaluate", help="evaluate a checkpoint on the test or validation split", formatter_class=_formatter,
        description="Rank all items for every user of a split and report ir-measures metrics. "
                    "A checkpoint written by 'gsasrec train' needs no --config; a bare reference "
                    "state_dict does.", epilog=EXAMPLES["evaluate"])
    evaluate.add_argument("checkpoint_path", nargs="?", metavar="CHECKPOINT",
                          help="checkpoint file (or use --checkpoint)")
    evaluate.add_argument("--checkpoint", metavar="FILE", help="checkpoint file")
    evaluate.add_argument("--config", metavar="FILE",
                          help="Python config file (default: the config stored in the checkpoint)")
    evaluate.add_argument("--split", choices=("test", "val"), default="test",
                          help="which held-out split to rank (default: test)")
    evaluate.add_argument("--metrics", nargs="+", metavar="MEASURE",
                          help="ir-measures names, e.g. nDCG@10 R@10 RR (default: the config's metrics)")
    evaluate.add_argument("--recommendation-limit", type=_positive_int, metavar="K",
                          help="length of each ranked list (default: the config's recommendation_limit)")
    evaluate.add_argument("--filter-rated", action=argparse.BooleanOptionalAction, default=None,
                          help="exclude items already in the user's history (default: the config's)")
    evaluate.add_argument("--batch-size", type=_positive_int, metavar="N",
                          help="users scored at once (default: the config's eval_batch_size)")
    evaluate.add_argument("--json", action="store_true",
                          help="end the output with one JSON object mapping each measure to its value")
    evaluate.add_argument("--calibration", action="store_true",
                          help="also report the expected calibration error (ECE) of sigmoid(score) as the "
                               "probability of being the next item, the expected/observed ratio (E/O, 1 when "
                               "calibrated on average), and save a reliability diagram")
    evaluate.add_argument("--calibration-negatives", type=_positive_int, default=1000, metavar="M",
                          help="non-target items sampled per user for --calibration (default 1000)")
    evaluate.add_argument("--calibration-plot", metavar="PNG",
                          help="where to save the reliability diagram (default: <checkpoint>_calibration.png)")
    add_common(evaluate)
    evaluate.set_defaults(handler=run_evaluate)
    add_data_commands(commands)
    add_serving_commands(commands)
    add_runs_commands(commands)
    return parser


def add_runs_commands(commands) -> None:
    runs = commands.add_parser("runs", help="summarise training runs", formatter_class=_formatter,
                               epilog=EXAMPLES["runs"],
                               description="List run directories or show one: best validation metric, steps, "
                                           "time, whether it can be resumed.")
    actions = runs.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="one line per run under a folder", formatter_class=_formatter,
                                 epilog=EXAMPLES["runs"])
    listing.add_argument("root", nargs="?", default="runs", help="folder of run directories (default runs)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(handler=run_runs_list)
    show = actions.add_parser("show", help="one run in detail", formatter_class=_formatter, epilog=EXAMPLES["runs"])
    show.add_argument("run_dir", help="run directory")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=run_runs_show)


def run_runs_list(args: argparse.Namespace) -> None:
    from gsasrec.runs import find_runs, summarize_run

    summaries = [summarize_run(run) for run in find_runs(Path(args.root))]
    if args.json:
        for summary in summaries:
            print(json.dumps(summary))
        return
    if not summaries:
        print(f"no runs under {args.root}")
        return
    print(f"{'run':<40} {'dataset':<10} {'metric':<9} {'best':>7} {'step':>7} {'epochs':>6} {'min':>6}  resumable")
    for s in summaries:
        best = f"{s['best']:.4f}" if s["best"] is not None else "-"
        print(f"{s['run']:<40} {str(s['dataset']):<10} {s['val_metric']:<9} {best:>7} {str(s['best_step']):>7} "
              f"{s['epochs']:>6} {s['minutes']:>6}  {'yes' if s['resumable'] else 'no'}")


def run_runs_show(args: argparse.Namespace) -> None:
    from gsasrec.runs import RUN_CONFIG, read_records, summarize_run

    summary = summarize_run(Path(args.run_dir))
    config = json.loads((Path(args.run_dir) / RUN_CONFIG).read_text())
    if args.json:
        print(json.dumps({**summary, "config": config, "epochs_log": read_records(Path(args.run_dir))}))
        return
    for key, value in summary.items():
        print(f"{key:<12} {value}")
    print("config       " + ", ".join(f"{k}={v}" for k, v in config["config"].items()))
    print("environment  " + ", ".join(f"{k}={v}" for k, v in config.get("environment", {}).items()))
    for record in read_records(Path(args.run_dir))[-5:]:
        metrics = " ".join(f"{k} {v:.4f}" for k, v in record["metrics"].items())
        print(f"  epoch {record['epoch']:>4} step {record['step']:>7} loss {record['loss']:.4f} {metrics}")


def add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, metavar="FILE", help="checkpoint file")
    parser.add_argument("--config", metavar="FILE", help="config file (needed for a bare state_dict)")
    add_common(parser)


def add_serving_commands(commands) -> None:
    recommend = commands.add_parser(
        "recommend", help="top-k next items for a history or a dataset user", formatter_class=_formatter,
        epilog=EXAMPLES["recommend"],
        description="Recommend next items. Item ids are the dataset's external ids (item_ids.tsv) when it "
                    "has them; names come from item_names.tsv. probability = sigmoid(score), calibrated "
                    "when the model was trained with gbce_t=1.")
    add_model_options(recommend)
    source = recommend.add_mutually_exclusive_group(required=True)
    source.add_argument("--history", metavar='"ID ID ..."', help="item ids, oldest first, space-separated")
    source.add_argument("--user", metavar="N", help="a user of the dataset split (the Nth line of its input)")
    recommend.add_argument("--split", choices=("test", "val"), default="test", help="split for --user")
    recommend.add_argument("-k", type=_positive_int, default=10, help="how many items (default 10)")
    recommend.add_argument("--include-seen", action="store_true", help="do not exclude history items")
    recommend.add_argument("--json", action="store_true", help="print JSON instead of a table")
    recommend.set_defaults(handler=run_recommend)

    serve = commands.add_parser(
        "serve", help="HTTP service: POST /recommend, /recommend/batch; GET /health, /items/{id}, /docs",
        formatter_class=_formatter, epilog=EXAMPLES["serve"],
        description="Serve recommendations over HTTP (needs: pip install 'gsasrec[serve]'). Concurrent "
                    "requests are scored in batches. OpenAPI docs at /docs.")
    add_model_options(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--max-k", type=_positive_int, default=100, help="largest k accepted (default 100)")
    serve.add_argument("--max-history", type=_positive_int, default=10_000,
                       help="longest history accepted (default 10000)")
    serve.set_defaults(handler=run_serve)

    export = commands.add_parser(
        "export", help="export a scorer (history -> scores) to ONNX or TorchScript", formatter_class=_formatter,
        epilog=EXAMPLES["export"],
        description="Export the model as a scorer: input history (batch, sequence_length) int64 internal "
                    "ids left-padded with num_items + 1; output scores (batch, num_items + 2). ONNX needs "
                    "pip install 'gsasrec[export]'.")
    add_model_options(export)
    export.add_argument("--format", choices=("onnx", "torchscript"), required=True, help="file format")
    export.add_argument("--output", required=True, metavar="FILE", help="where to write it")
    export.set_defaults(handler=run_export)


def load_recommender(args: argparse.Namespace):
    from gsasrec.config import load_config
    from gsasrec.recommender import Recommender

    config = load_config(args.config) if args.config else None
    return Recommender.from_checkpoint(args.checkpoint, args.device, args.datasets_dir, config)


def run_recommend(args: argparse.Namespace) -> None:
    recommender = load_recommender(args)
    target = None
    if args.history is not None:
        history = args.history.split()
    else:
        history, target = user_history(recommender, args)
    result = recommender.recommend(history, args.k, exclude_seen=not args.include_seen)
    if args.json:
        print(json.dumps({"items": result.items, "unknown_items": result.unknown_items}))
        return
    if result.unknown_items:
        print(f"ignored unknown item ids: {' '.join(map(str, result.unknown_items))}", file=sys.stderr)
    print(f"{'rank':>4}  {'item':>10}  {'score':>8}  {'prob':>6}  name")
    for row in result.items:
        hit = "  <- held-out item" if target is not None and str(row["item"]) == str(target) else ""
        print(f"{row['rank']:>4}  {str(row['item']):>10}  {row['score']:>8.3f}  {row['probability']:>6.3f}  "
              f"{row['name'] or ''}{hit}")


def user_history(recommender, args: argparse.Namespace) -> tuple[list, object]:
    """The history and held-out item of --user N in --split, as external ids."""
    from gsasrec.data.folder import read_dataset

    dataset = read_dataset(recommender.config.dataset_name, args.datasets_dir)
    split = dataset.split(args.split)
    if not args.user.isdigit() or not 1 <= int(args.user) <= len(split.inputs):
        raise GSASRecError(f"--user must be a line number 1..{len(split.inputs)} of {args.split}, got {args.user!r}")
    row = int(args.user) - 1
    catalog = recommender.catalog
    history = [catalog.external[i - 1] for i in split.inputs[row].tolist()]
    return history, catalog.external[int(split.targets[row]) - 1]


def run_serve(args: argparse.Namespace) -> None:
    try:
        from gsasrec.serve import serve
        import fastapi, uvicorn  # noqa: F401
    except ImportError:
        raise GSASRecError("serving needs the serve extra: pip install 'gsasrec[serve]'") from None
    serve(load_recommender(args), args.host, args.port, max_k=args.max_k, max_history=args.max_history)


def run_export(args: argparse.Namespace) -> None:
    from gsasrec.checkpoint import load_model
    from gsasrec.config import load_config
    from gsasrec.export import export_scorer

    config = load_config(args.config) if args.config else None
    model, _, _ = load_model(args.checkpoint, config)
    path = export_scorer(model, args.output, args.format)
    print(f"wrote {path}")


def add_data_commands(commands) -> None:
    data = commands.add_parser(
        "data", help="build dataset folders (ml1m, steam, gowalla, your own log) and describe them",
        formatter_class=_formatter, epilog=EXAMPLES["data"],
        description="Build a dataset folder from raw data, or summarise one. Folders are written to a "
                    "temporary sibling and renamed into place when complete; an existing folder is only "
                    "replaced with --force.")
    recipes = data.add_subparsers(dest="recipe", metavar="RECIPE", required=True)

    ml1m = recipes.add_parser("ml1m", formatter_class=_formatter, epilog=EXAMPLES["data"],
                              help="MovieLens-1M (SASRec version), split exactly as the reference")
    ml1m.add_argument("--source", metavar="PATH_OR_URL", default=None,
                      help="the raw `user item` file, a path or URL (default: the reference's URL)")
    ml1m.add_argument("--extra", metavar="DIR",
                      help="folder with movies.dat and sas_to_original_items.txt: adds item_names.tsv")
    ml1m.set_defaults(handler=run_data_ml1m)

    log = recipes.add_parser("import", formatter_class=_formatter, epilog=EXAMPLES["data"],
                             help="your own interaction log (CSV, TSV, Parquet, JSON lines)")
    log.add_argument("--interactions", required=True, metavar="FILE", help="the log, one event per row")
    log.add_argument("--name", required=True, help="dataset name (folder name under the datasets dir)")
    log.add_argument("--format", choices=("csv", "tsv", "parquet", "jsonl"),
                     help="file format (default: from the extension)")
    log.add_argument("--user-col", default="user_id", metavar="COL", help="user column (default user_id)")
    log.add_argument("--item-col", default="item_id", metavar="COL", help="item column (default item_id)")
    log.add_argument("--time-col", metavar="COL",
                     help="time column: numbers or ISO dates (default: none, file order is time order)")
    log.add_argument("--min-item-interactions", type=_positive_int, default=0, metavar="K",
                     help="drop items with fewer than K events")
    log.add_argument("--min-user-interactions", type=_positive_int, default=0, metavar="K",
                     help="drop users with fewer than K events")
    log.add_argument("--k-core", action="store_true", help="repeat both filters until nothing changes")
    log.add_argument("--item-names", metavar="FILE",
                     help="table of external item id (first column) and title (second column)")
    add_split_options(log)
    log.set_defaults(handler=run_data_import)

    for kind, source_help in (("steam", "steam_reviews.json(.gz) from the SASRec authors"),
                              ("gowalla", "loc-gowalla_totalCheckins.txt(.gz) from SNAP")):
        recipe = recipes.add_parser(kind, formatter_class=_formatter, epilog=EXAMPLES["data"],
                                    help=f"{kind.capitalize()} from its public raw file")
        recipe.add_argument("--source", metavar="PATH_OR_URL", help=f"{source_help} (default: its URL)")
        recipe.add_argument("--name", default=kind, help=f"dataset name (default {kind})")
        add_split_options(recipe)
        recipe.set_defaults(handler=run_data_raw, kind=kind)

    stats = recipes.add_parser("stats", formatter_class=_formatter, epilog=EXAMPLES["data"],
                               help="users, items, interactions, sequence lengths, a histogram PNG")
    stats.add_argument("name", help="dataset name")
    stats.add_argument("--datasets-dir", metavar="DIR", help="folder holding dataset folders")
    stats.add_argument("--histogram", metavar="PNG", help="where to save it (default: NAME_lengths.png)")
    stats.add_argument("--json", action="store_true", help="print the summary as JSON")
    stats.set_defaults(handler=run_data_stats)
    for parser in (ml1m, log):
        add_output_options(parser)


def add_split_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--val-users", type=_positive_int, default=512, metavar="N",
                        help="validation users drawn at random (default 512)")
    parser.add_argument("--seed", type=int, default=42, help="seed of that draw (default 42)")
    add_output_options(parser)


def add_output_options(parser: argparse.ArgumentParser) -> None:
    if any(a.dest == "force" for a in parser._actions):
        return
    parser.add_argument("--datasets-dir", metavar="DIR",
                        help="folder holding dataset folders (default: $GSASREC_DATASETS, else ./datasets)")
    parser.add_argument("--force", action="store_true", help="replace an existing dataset folder")


def run_data_ml1m(args: argparse.Namespace) -> None:
    from gsasrec.data.folder import resolve_datasets_dir
    from gsasrec.data.recipes import ML1M_URL, build_ml1m

    path = build_ml1m(resolve_datasets_dir(args.datasets_dir), args.source or ML1M_URL,
                      Path(args.extra) if args.extra else None, force=args.force)
    print(f"wrote {path}")


def run_data_import(args: argparse.Namespace) -> None:
    from gsasrec.data.folder import resolve_datasets_dir
    from gsasrec.data.interactions import ImportOptions, detect_format, import_log, read_item_names, read_log

    options = ImportOptions(user_col=args.user_col, item_col=args.item_col, time_col=args.time_col,
                            min_item_interactions=args.min_item_interactions,
                            min_user_interactions=args.min_user_interactions, k_core=args.k_core,
                            val_users=args.val_users, seed=args.seed)
    source = Path(args.interactions)
    datasets_dir = resolve_datasets_dir(args.datasets_dir)
    if (datasets_dir / args.name).exists() and not args.force:
        raise GSASRecError(f"dataset folder {datasets_dir / args.name} already exists (use --force to replace it)")
    frame = read_log(source, detect_format(source, args.format), options)
    names = read_item_names(Path(args.item_names)) if args.item_names else None
    path, report = import_log(frame, args.name, datasets_dir, options, force=args.force, item_names=names,
                              source=str(source))
    print_report(path, report)


def run_data_raw(args: argparse.Namespace) -> None:
    from gsasrec.data.folder import resolve_datasets_dir
    from gsasrec.data.recipes import GOWALLA_URL, STEAM_URL, build_from_raw

    source = args.source or (STEAM_URL if args.kind == "steam" else GOWALLA_URL)
    path, report = build_from_raw(args.kind, source, resolve_datasets_dir(args.datasets_dir), args.name,
                                  args.force, args.val_users, args.seed)
    print_report(path, report)


def print_report(path: Path, report) -> None:
    for line in report.lines() + report.notes:
        print(line)
    print(f"wrote {path}")


def run_data_stats(args: argparse.Namespace) -> None:
    from gsasrec.data.folder import read_dataset
    from gsasrec.data.stats import save_length_histogram, summarize

    dataset = read_dataset(args.name, args.datasets_dir)
    summary = summarize(dataset)
    histogram = save_length_histogram(dataset, Path(args.histogram or f"{args.name}_lengths.png"))
    summary["histogram"] = str(histogram)
    if args.json:
        print(json.dumps(summary))
        return
    lengths = summary.pop("sequence_length")
    for key, value in summary.items():
        print(f"{key:<24} {value}")
    print("sequence length          " + ", ".join(f"{k} {v:g}" for k, v in lengths.items()))


def run_train(args: argparse.Namespace) -> None:
    import os

    from gsasrec.config import load_config
    from gsasrec.distributed import launch
    from gsasrec.runs import LAST_CHECKPOINT, RUN_CONFIG
    from gsasrec.runtime import resolve_device
    from gsasrec.training import RunOptions, resume, train

    if (args.config is None) == (args.resume is None):
        raise GSASRecError("train needs exactly one of --config FILE or --resume RUN_DIR")
    if args.nproc and args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        code = launch(args.nproc, without_option(args.argv, "--nproc"))
        if code != 0:
            raise GSASRecError(f"distributed training failed (exit code {code}); see the ranks' output above")
        return
    device = resolve_device(args.device)
    options = RunOptions(output_dir=Path(args.output_dir) if args.output_dir else None, device=device,
                         seed=args.seed, max_steps=args.max_steps, max_minutes=args.max_minutes,
                         progress=args.progress, precision=args.precision, compile=args.compile)
    if args.resume:
        run_dir = Path(args.resume)
        stored = json.loads((run_dir / RUN_CONFIG).read_text()) if (run_dir / RUN_CONFIG).exists() else {}
        name = stored.get("config", {}).get("dataset_name")
        if name is None:
            raise GSASRecError(f"{run_dir} is not a run directory (no {RUN_CONFIG})")
        datasets_dir = args.datasets_dir or str(Path(stored["run"]["dataset_path"]).parent)
        result = resume(run_dir, read_or_build_dataset(name, datasets_dir), options)
        metric = stored["config"]["val_metric"]
    else:
        config = load_config(args.config)
        result = train(config, read_or_build_dataset(config.dataset_name, args.datasets_dir), options)
        metric = config.val_metric
    if int(os.environ.get("RANK", "0")) != 0:
        return
    if result.interrupted:
        raise GSASRecError(f"interrupted at step {result.steps}; resume with: gsasrec train --resume {result.run_dir}")
    print(f"best {metric} {result.best_metric:.4f} at step {result.best_step} "
          f"({result.steps} steps, {result.epochs} epochs, {result.seconds:.0f} s)")
    print(f"best checkpoint: {result.best_checkpoint}")
    print(f"final weights: {result.run_dir / LAST_CHECKPOINT}")
    print(f"evaluate it with: gsasrec evaluate --checkpoint {result.best_checkpoint}")


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


def read_or_build_dataset(name: str, datasets_dir: str | None):
    """The dataset folder; ML-1M is first built by its recipe when it is not there yet."""
    from gsasrec.data.folder import read_dataset, resolve_datasets_dir
    from gsasrec.data.recipes import build_ml1m

    root = resolve_datasets_dir(datasets_dir)
    if name == "ml1m" and not (root / name).exists():
        print(f"{root / name} not found: building it with 'gsasrec data ml1m'", file=sys.stderr)
        build_ml1m(root)
    return read_dataset(name, root)


def run_evaluate(args: argparse.Namespace) -> None:
    from gsasrec.checkpoint import load_model
    from gsasrec.config import load_config, make_config
    from gsasrec.data.folder import read_dataset
    from gsasrec.evaluation import evaluate_config
    from gsasrec.runtime import resolve_device

    checkpoint = args.checkpoint or args.checkpoint_path
    if checkpoint is None:
        raise GSASRecError("evaluate needs a checkpoint: --checkpoint FILE")
    if args.checkpoint and args.checkpoint_path:
        raise GSASRecError("give the checkpoint once: either --checkpoint FILE or a positional FILE")
    config = load_config(args.config) if args.config else None
    device = resolve_device(args.device)
    model, config, _ = load_model(checkpoint, config, device=device)
    overrides = {name: value for name, value in (
        ("metrics", args.metrics), ("recommendation_limit", args.recommendation_limit),
        ("filter_rated", args.filter_rated), ("eval_batch_size", args.batch_size)) if value is not None}
    config = make_config(**{**dataclasses.asdict(config), **overrides})
    dataset = read_dataset(config.dataset_name, args.datasets_dir)
    if dataset.num_items != model.num_items:
        raise GSASRecError(f"checkpoint {checkpoint} was trained on num_items={model.num_items}, "
                           f"but dataset {dataset.path} has num_items={dataset.num_items}")
    started = time.perf_counter()
    metrics = evaluate_config(model, dataset.split(args.split), config)
    seconds = time.perf_counter() - started
    users = len(dataset.split(args.split).inputs)
    print(f"{args.split}: {users} users, top {config.recommendation_limit}, "
          f"filter_rated={config.filter_rated}, {seconds:.2f} s on {device}", file=sys.stderr)
    if args.calibration:
        metrics.update(report_calibration(model, dataset.split(args.split), args, checkpoint).measures())
    width = max(len(name) for name in metrics)
    for name, value in metrics.items():
        print(f"{name:<{width}}  {value:.6f}")
    if args.json:
        print(json.dumps(metrics))


def report_calibration(model, split, args: argparse.Namespace, checkpoint: str) -> Calibration:
    from gsasrec.calibration import expected_calibration_error, save_reliability_diagram, scored_pairs

    probabilities, labels, weights = scored_pairs(model, split, args.calibration_negatives)
    calibration = expected_calibration_error(probabilities, labels, weights)
    plot = Path(args.calibration_plot or f"{Path(checkpoint).with_suffix('')}_calibration.png")
    save_reliability_diagram(calibration, plot, f"{Path(checkpoint).name}, {args.split} split")
    print(f"reliability diagram: {plot}", file=sys.stderr)
    return calibration


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def _version() -> str:
    from gsasrec import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    from gsasrec.runtime import retain_freed_memory

    args = build_parser().parse_args(argv)
    args.argv = list(argv) if argv is not None else sys.argv[1:]
    retain_freed_memory()
    try:
        args.handler(args)
    except GSASRecError as error:
        print(f"gsasrec: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gsasrec: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""gsasrec recommend | serve | export: a trained checkpoint put to use."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gsasrec.cli import add_common, formatter, port_number, positive_int
from gsasrec.errors import GSASRecError

RECOMMEND_EXAMPLES = """examples:
  gsasrec recommend --checkpoint runs/ml1m/best.pt --history "1 2 3 4" -k 5
  gsasrec recommend --checkpoint runs/ml1m/best.pt --user 17 --split test --json
  gsasrec recommend --checkpoint pretrained/ml1m_gsasrec_t0.75.pt --history-names "Toy Story (1995); Fargo (1996)"
  gsasrec recommend --checkpoint runs/shop/best.pt --all --split full --output recs.parquet   # every user
  gsasrec recommend --checkpoint runs/shop/best.pt --all --users vip.txt --output vip.csv -k 20
  gsasrec recommend --checkpoint runs/shop/best.pt --all --output recs.parquet --nproc 4     # 4 shards"""
SERVE_EXAMPLES = """examples:
  gsasrec serve --checkpoint runs/ml1m/best.pt --port 8000          # then open http://127.0.0.1:8000/
  gsasrec serve --checkpoint gsasrec=pretrained/ml1m_gsasrec_t0.75.pt --checkpoint sasrec=pretrained/ml1m_sasrec.pt
  curl -s localhost:8000/recommend -H 'content-type: application/json' -d '{"history": [1, 2, 3], "k": 5}'"""
EXPORT_EXAMPLES = """examples:
  gsasrec export --checkpoint runs/ml1m/best.pt --format onnx --output ml1m.onnx
  gsasrec export --checkpoint runs/ml1m/best.pt --format torchscript --output ml1m.pt"""


def register(commands) -> None:
    recommend = commands.add_parser(
        "recommend", help="top-k next items for a history or a dataset user", formatter_class=formatter,
        epilog=RECOMMEND_EXAMPLES,
        description="Recommend next items. Item ids are the dataset's external ids (item_ids.tsv) when it "
                    "has them; names come from item_names.tsv. probability = sigmoid(score), calibrated "
                    "when the model was trained with gbce_t=1.")
    add_model_options(recommend)
    source = recommend.add_mutually_exclusive_group(required=True)
    source.add_argument("--history", metavar='"ID ID ..."', help="item ids, oldest first, space-separated")
    source.add_argument("--history-names", metavar='"NAME; NAME ..."',
                        help="item names (titles), oldest first, separated by ';' (case-insensitive)")
    source.add_argument("--user", metavar="ID",
                        help="a user of the dataset split: the user's own id where the dataset has user_ids.tsv "
                             "(an imported log), or N for the Nth line of the split's input")
    source.add_argument("--all", action="store_true",
                        help="every user of the split (or of --users FILE), written to --output in blocks: "
                             "resumable (run the same command again), shardable (--nproc N or torchrun)")
    recommend.add_argument("--split", choices=("test", "val", "train", "full"), default="test",
                           help="whose history: a split's input (test, val: the history before its held-out item; "
                                "train), or, with --all, full: the test input and its held-out item, all the "
                                "dataset knows of a user (default test)")
    recommend.add_argument("-k", type=positive_int, default=10, help="how many items (default 10)")
    recommend.add_argument("--include-seen", action="store_true", help="do not exclude history items")
    recommend.add_argument("--json", action="store_true", help="print JSON instead of a table")
    every = recommend.add_argument_group("every user (--all)")
    every.add_argument("--output", metavar="FILE",
                       help="where the rows go: NAME.parquet (a folder of part files, read as one table by "
                            "Polars and Spark), NAME.csv or NAME.jsonl; columns user, rank, item, score, "
                            "probability and name (when the dataset has names)")
    every.add_argument("--users", metavar="FILE", help="only these users: their ids, one per line")
    every.add_argument("--block-users", type=positive_int, default=10_000, metavar="N",
                       help="users per block, the unit of memory, of resuming and of sharding (default 10000)")
    every.add_argument("--force", action="store_true",
                       help="replace an existing --output, or start over an unfinished job of other settings")
    every.add_argument("--nproc", type=positive_int, metavar="N",
                       help="N local processes, each writing its share of the blocks (torchrun --nproc_per_node)")
    every.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="a progress bar, or (--no-progress) a line every 30 s (default: a bar on a terminal)")
    recommend.set_defaults(handler=run_recommend)

    serve = commands.add_parser(
        "serve", help="HTTP service and explorer page: GET /, POST /recommend, /recommend/batch, GET /models, "
                      "/items, /users, /docs", formatter_class=formatter, epilog=SERVE_EXAMPLES,
        description=f"Serve recommendations over HTTP (needs the serve extra: {SERVE_EXTRA}). The page at / "
                    "explores the models: build a history, open a dataset user, compare models side by side. "
                    "Concurrent requests are scored in batches. API pages at /docs (Swagger UI) and /redoc.")
    serve.add_argument("--checkpoint", required=True, action="append", metavar="[NAME=]FILE",
                       help="checkpoint file; repeat to serve several models side by side, each named NAME "
                            "(default: the file's name without .pt); the first answers requests naming none")
    serve.add_argument("--config", metavar="FILE", help="config file (needed for a bare state_dict; one checkpoint)")
    add_common(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=port_number, default=8000, help="port, 1-65535 (default 8000)")
    serve.add_argument("--max-k", type=positive_int, default=100, help="largest k accepted (default 100)")
    serve.add_argument("--max-history", type=positive_int, default=10_000,
                       help="longest history accepted (default 10000)")
    serve.set_defaults(handler=run_serve)

    export = commands.add_parser(
        "export", help="export a scorer (history -> scores) to ONNX or TorchScript", formatter_class=formatter,
        epilog=EXPORT_EXAMPLES,
        description="Export the model as a scorer: input history (batch, sequence_length) int64 internal "
                    "ids left-padded with num_items + 1; output scores (batch, num_items + 2). ONNX needs "
                    "pip install 'gsasrec[export]'.")
    # no --device or --datasets-dir: the scorer is traced on the CPU and needs no dataset
    export.add_argument("--checkpoint", required=True, metavar="FILE", help="checkpoint file")
    export.add_argument("--config", metavar="FILE", help="config file (needed for a bare state_dict)")
    export.add_argument("--format", choices=("onnx", "torchscript"), required=True, help="file format")
    export.add_argument("--output", required=True, metavar="FILE", help="where to write it")
    export.set_defaults(handler=run_export)


def add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, metavar="FILE", help="checkpoint file")
    parser.add_argument("--config", metavar="FILE", help="config file (needed for a bare state_dict)")
    add_common(parser)


SERVE_EXTRA = "pip install 'gsasrec[serve]' (in a checkout: pip install -e \".[serve]\")"


def load_recommender(args: argparse.Namespace, checkpoint: str | None = None):
    from gsasrec.config import load_config
    from gsasrec.recommender import Recommender

    config = load_config(args.config) if args.config else None
    return Recommender.from_checkpoint(checkpoint or args.checkpoint, args.device, args.datasets_dir, config)


def named_checkpoints(values: list[str]) -> dict[str, str]:
    """--checkpoint [NAME=]FILE values as {name: file}; a name defaults to the file's name without .pt."""
    from pathlib import Path

    named = {}
    for value in values:
        name, _, path = value.rpartition("=") if "=" in value and not Path(value).exists() else ("", "", value)
        name = name or Path(path).stem
        if not name or name in named:
            problem = "a name is needed" if not name else f"the name {name!r} is taken"
            raise GSASRecError(f"--checkpoint {value}: {problem}; name each model: --checkpoint NAME=FILE")
        named[name] = path
    return named


def run_recommend(args: argparse.Namespace) -> int | None:
    every_user_options = ("output", "users", "nproc")
    if not args.all and any(getattr(args, name) is not None for name in every_user_options):
        raise GSASRecError("--output, --users and --nproc go with --all (every user of the split)")
    if not args.all and args.split in ("train", "full"):
        raise GSASRecError(f"--split {args.split} goes with --all; --user takes test or val")
    if args.all:
        return run_every_user(args)
    recommender = load_recommender(args)
    target = None
    if args.user is None and recommender.missing_dataset_note():
        print(recommender.missing_dataset_note(), file=sys.stderr)
    if args.history is not None:
        history = args.history.split()
    elif args.history_names is not None:
        history = history_from_names(recommender.catalog, args.history_names)
    else:
        history, target = user_history(recommender, args)
    result = recommender.recommend(history, args.k, exclude_seen=not args.include_seen)
    held_out = None
    if target is not None:
        held_out = {"item": target, "rank": recommender.rank_of(history, target, not args.include_seen)}
    if args.json:
        user = {"user": args.user, "history": history, "held_out": held_out} if held_out else {}
        print(json.dumps(result.to_dict() | user))
        return
    if result.unknown_items:
        print(f"ignored unknown item ids: {' '.join(map(str, result.unknown_items))}", file=sys.stderr)
    print(f"{'rank':>4}  {'item':>10}  {'score':>8}  {'prob':>6}  name")
    for row in result.items:
        hit = "  <- held-out item" if target is not None and str(row["item"]) == str(target) else ""
        print(f"{row['rank']:>4}  {str(row['item']):>10}  {row['score']:>8.3f}  {row['probability']:>6.3f}  "
              f"{row['name'] or ''}{hit}")
    if held_out is not None:
        where = f"rank {held_out['rank']}" if held_out["rank"] else "excluded (already in the history)"
        print(f"held-out item {held_out['item']}: {where}")


def run_every_user(args: argparse.Namespace) -> int | None:
    """recommend --all: the top k of every user to --output, in this process or in --nproc shards."""
    import time

    from gsasrec.cli import INTERRUPTED, launch_ranks
    from gsasrec.distributed import finish_together, join, leave
    from gsasrec.every_user import output_format, recommend_every_user
    from gsasrec.runtime import resolve_device

    if args.output is None:
        raise GSASRecError("--all needs --output FILE (.parquet, .csv or .jsonl)")
    output_format(Path(args.output))
    code = launch_ranks(args)
    if code is not None:
        if code != 0:
            raise GSASRecError(f"recommend --all failed (exit code {code}); see the processes' output above; the "
                               f"same command continues it")
        return None
    world = join(resolve_device(args.device))
    try:
        started = time.perf_counter()
        recommender = load_recommender(argparse.Namespace(**{**vars(args), "device": str(world.device)}))
        outcome = finish_together(world, recommend_every_user(
            recommender, args.split, args.output, args.k, not args.include_seen, args.users, args.block_users,
            args.force, world, args.progress))
    finally:
        leave(world)
    if not world.is_main:
        return None
    seconds = time.perf_counter() - started
    kept = f", {outcome.kept_blocks} kept from an earlier run" if outcome.kept_blocks else ""
    print(f"{outcome.users} users, {outcome.rows} rows in {seconds:.1f} s ({outcome.users / seconds:.0f} users/s"
          f"{f' on {world.size} processes' if world.distributed else ''}); {outcome.written_blocks} blocks written"
          f"{kept}")
    if outcome.interrupted:
        print(f"interrupted: run the same command again to continue {outcome.output}")
        return INTERRUPTED
    print(f"wrote {outcome.output}")
    return None


def history_from_names(catalog, text: str) -> list:
    """External ids of the ';'-separated names in `text`; an error listing every name not found, with the
    closest names the catalogue has."""
    names = [name.strip() for name in text.split(";") if name.strip()]
    if not any(name is not None for name in catalog.names):
        raise GSASRecError("--history-names: this model's dataset has no item names (item_names.tsv); use --history")
    found, missing = [], []
    for name in names:
        internal = catalog.by_name(name)
        if internal is None:
            missing.append(name)
        else:
            found.append(catalog.external[internal - 1])
    if missing:
        hints = "; ".join(f"{name!r} (closest: {', '.join(map(repr, catalog.closest_names(name))) or 'none'})"
                          for name in missing)
        raise GSASRecError(f"--history-names: no item named {hints}")
    if not found:
        raise GSASRecError("--history-names: no names given; separate names with ';'")
    return found


def user_history(recommender, args: argparse.Namespace) -> tuple[list, object]:
    """The history and held-out item of --user in --split, as external ids, from the dataset folder the
    recommender found for its checkpoint (one rule for the catalogue and the split)."""
    from gsasrec.data.folder import split_line_of

    if recommender.dataset_folder is None:
        raise GSASRecError("--user needs the checkpoint's dataset folder, which is not here; pass --datasets-dir")
    split = recommender.split(args.split)
    try:
        line = split_line_of(recommender.dataset_folder, args.split, args.user)
    except GSASRecError:
        if not args.user.isdigit():
            raise
        line = None  # not a user id of the table, but a number: the line number, as without a table
    if line is None:  # no user_ids.tsv (the reference's ML-1M), or a line number
        if not args.user.isdigit() or not 1 <= int(args.user) <= len(split.inputs):
            raise GSASRecError(f"--user must be a user id of the dataset's user_ids.tsv or a line number "
                               f"1..{len(split.inputs)} of {args.split}, got {args.user!r}")
        line = int(args.user)
    return recommender.user_history(split, line)


def run_serve(args: argparse.Namespace) -> None:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401

        from gsasrec.serve import serve
    except ImportError:
        raise GSASRecError(f"serving needs the serve extra: {SERVE_EXTRA}") from None
    checkpoints = named_checkpoints(args.checkpoint)
    if args.config and len(checkpoints) > 1:
        raise GSASRecError("--config describes one bare state_dict: serve it alone, or use checkpoints that hold "
                           "their config")
    models = {name: load_recommender(args, path) for name, path in checkpoints.items()}
    for name, recommender in models.items():
        if recommender.missing_dataset_note():
            print(f"{name}: {recommender.missing_dataset_note()}", file=sys.stderr)
    serve(models, args.host, args.port, max_k=args.max_k, max_history=args.max_history)


def run_export(args: argparse.Namespace) -> None:
    from gsasrec.checkpoint import load_model
    from gsasrec.config import load_config
    from gsasrec.export import export_scorer
    from gsasrec.files import check_writable
    from gsasrec.progress import JobProgress

    check_writable(Path(args.output))  # before loading and tracing the model
    config = load_config(args.config) if args.config else None
    model, _, _ = load_model(args.checkpoint, config)
    with JobProgress(f"exporting {args.format}"):
        path = export_scorer(model, args.output, args.format)
    print(f"wrote {path}")
    term = model.transition_term
    if term is not None:
        print(f"note: the exported scorer is the network alone; this checkpoint's transition term "
              f"({term.describe()}: n1, n2 count what followed the last one and two items in training) "
              f"is not in it", file=sys.stderr)

"""gsasrec recommend | serve | export: a trained checkpoint put to use."""

from __future__ import annotations

import argparse
import json
import sys

from gsasrec.cli import add_common, formatter, port_number, positive_int
from gsasrec.errors import GSASRecError

RECOMMEND_EXAMPLES = """examples:
  gsasrec recommend --checkpoint runs/ml1m/best.pt --history "1 2 3 4" -k 5
  gsasrec recommend --checkpoint runs/ml1m/best.pt --user 17 --split test --json"""
SERVE_EXAMPLES = """examples:
  gsasrec serve --checkpoint runs/ml1m/best.pt --port 8000
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
    source.add_argument("--user", metavar="ID",
                        help="a user of the dataset split: the user's own id where the dataset has user_ids.tsv "
                             "(an imported log), or N for the Nth line of the split's input")
    recommend.add_argument("--split", choices=("test", "val"), default="test", help="split for --user")
    recommend.add_argument("-k", type=positive_int, default=10, help="how many items (default 10)")
    recommend.add_argument("--include-seen", action="store_true", help="do not exclude history items")
    recommend.add_argument("--json", action="store_true", help="print JSON instead of a table")
    recommend.set_defaults(handler=run_recommend)

    serve = commands.add_parser(
        "serve", help="HTTP service: POST /recommend, /recommend/batch; GET /health, /items/{id}, /docs",
        formatter_class=formatter, epilog=SERVE_EXAMPLES,
        description="Serve recommendations over HTTP (needs: pip install 'gsasrec[serve]'). Concurrent "
                    "requests are scored in batches. OpenAPI docs at /docs.")
    add_model_options(serve)
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
    add_model_options(export)
    export.add_argument("--format", choices=("onnx", "torchscript"), required=True, help="file format")
    export.add_argument("--output", required=True, metavar="FILE", help="where to write it")
    export.set_defaults(handler=run_export)


def add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, metavar="FILE", help="checkpoint file")
    parser.add_argument("--config", metavar="FILE", help="config file (needed for a bare state_dict)")
    add_common(parser)


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


def user_history(recommender, args: argparse.Namespace) -> tuple[list, object]:
    """The history and held-out item of --user N in --split, as external ids."""
    from gsasrec.data.folder import read_dataset, split_line_of

    dataset = read_dataset(recommender.config.dataset_name, args.datasets_dir)
    split = dataset.split(args.split)
    try:
        line = split_line_of(dataset.path, args.split, args.user)
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
        raise GSASRecError("serving needs the serve extra: pip install 'gsasrec[serve]'") from None
    serve(load_recommender(args), args.host, args.port, max_k=args.max_k, max_history=args.max_history)


def run_export(args: argparse.Namespace) -> None:
    from gsasrec.checkpoint import load_model
    from gsasrec.config import load_config
    from gsasrec.export import export_scorer
    from gsasrec.progress import JobProgress

    config = load_config(args.config) if args.config else None
    model, _, _ = load_model(args.checkpoint, config)
    with JobProgress(f"exporting {args.format}"):
        path = export_scorer(model, args.output, args.format)
    print(f"wrote {path}")

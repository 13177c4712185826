"""gsasrec runs list | show: what the run folders under a directory hold."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gsasrec.cli import formatter
from gsasrec.errors import GSASRecError

EXAMPLES = """examples:
  gsasrec runs list
  gsasrec runs list other/runs --json
  gsasrec runs show runs/ml1m-20261128-101500"""


def register(commands) -> None:
    runs = commands.add_parser("runs", help="summarise training runs", formatter_class=formatter,
                               epilog=EXAMPLES,
                               description="List run directories or show one: best validation metric, steps, "
                                           "time, whether it can be resumed.")
    actions = runs.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="one line per run under a folder", formatter_class=formatter,
                                 epilog=EXAMPLES)
    listing.add_argument("root", nargs="?", default="runs", help="folder of run directories (default runs)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(handler=run_list)
    show = actions.add_parser("show", help="one run in detail", formatter_class=formatter, epilog=EXAMPLES)
    show.add_argument("run_dir", help="run directory")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=run_show)


def run_list(args: argparse.Namespace) -> None:
    from gsasrec.runs import find_runs

    summaries = [summary_or_damage(run) for run in find_runs(Path(args.root))]
    if args.json:
        for summary in summaries:
            print(json.dumps(summary))
        return
    if not summaries:
        print(f"no runs under {args.root}")
        return
    print(f"{'run':<40} {'dataset':<10} {'metric':<9} {'best':>7} {'at step':>7} {'steps':>7} {'epochs':>6} "
          f"{'min':>6}  resumable")
    for s in summaries:
        if "damaged" in s:  # one damaged run does not hide the others
            print(f"{s['run']:<40} DAMAGED: {s['damaged']}")
            continue
        best = f"{s['best']:.4f}" if s["best"] is not None else "-"
        print(f"{s['run']:<40} {str(s['dataset']):<10} {s['val_metric']:<9} {best:>7} {str(s['best_step']):>7} "
              f"{s['steps']:>7} {epochs_text(s):>6} {s['minutes']:>6}  {'yes' if s['resumable'] else 'no'}")


def summary_or_damage(run: Path) -> dict:
    """A run's summary, or {"run", "damaged": the one-line reason} when its files are damaged."""
    from gsasrec.runs import summarize_run

    try:
        return summarize_run(run)
    except GSASRecError as error:
        return {"run": str(run), "damaged": str(error)}


def epochs_text(summary: dict) -> str:
    """'3' after three whole epochs; '3+18' when the run stands 18 steps into the fourth."""
    extra = f"+{summary['epoch_steps']}" if summary["epoch_steps"] else ""
    return f"{summary['epochs']}{extra}"


def run_show(args: argparse.Namespace) -> None:
    from gsasrec.runs import read_records, read_run_config, summarize_run

    run_dir = Path(args.run_dir)
    summary = summarize_run(run_dir)
    config = read_run_config(run_dir)
    if args.json:
        print(json.dumps({**summary, "config": config, "epochs_log": read_records(run_dir)}))
        return
    for key, value in summary.items():
        print(f"{key:<12} {value}")
    print("config       " + ", ".join(f"{k}={v}" for k, v in config["config"].items()))
    print("environment  " + ", ".join(f"{k}={v}" for k, v in config.get("environment", {}).items()))
    for record in read_records(run_dir)[-5:]:
        metrics = " ".join(f"{k} {v:.4f}" for k, v in record["metrics"].items())
        print(f"  epoch {record['epoch']:>4} step {record['step']:>7} loss {record['loss']:.4f} {metrics}")

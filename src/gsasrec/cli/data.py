"""gsasrec data: build dataset folders (ml1m, your own log, steam, gowalla) and describe them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gsasrec.cli import add_datasets_dir, formatter, positive_int, seed_number
from gsasrec.errors import GSASRecError

EXAMPLES = """examples:
  gsasrec data ml1m                                   # download the SASRec ML-1M file and split it
  gsasrec data ml1m --source ml-1m.txt --extra ../shared/datasets/ml1m/extra
  gsasrec data import --interactions events.csv --name shop --user-col user --item-col sku --time-col ts
  gsasrec data import --interactions events.csv --name shop --time-col ts --on-bad-rows drop \
      --split time --test-start 2024-06-01 --val-start 2024-05-15
  gsasrec data steam --source steam_reviews.json.gz
  gsasrec data gowalla --source loc-gowalla_totalCheckins.txt.gz
  gsasrec data stats ml1m
  gsasrec data stats ml1m --histogram ml1m_lengths.png"""


def register(commands) -> None:
    data = commands.add_parser(
        "data", help="build dataset folders (ml1m, steam, gowalla, your own log) and describe them",
        formatter_class=formatter, epilog=EXAMPLES,
        description="Build a dataset folder from raw data, or summarise one. Folders are written to a "
                    "temporary sibling and renamed into place when complete; an existing folder is only "
                    "replaced with --force.")
    recipes = data.add_subparsers(dest="recipe", metavar="RECIPE", required=True)

    ml1m = recipes.add_parser("ml1m", formatter_class=formatter, epilog=EXAMPLES,
                              help="MovieLens-1M (SASRec version), split exactly as the reference",
                              description="Download (or read) the SASRec authors' ML-1M file, check its "
                                          "SHA-256 and write the reference's split: every user's last item "
                                          "for test, the second-last of 512 sampled users for validation.")
    ml1m.add_argument("--source", metavar="PATH_OR_URL", default=None,
                      help="the raw `user item` file, a path or URL (default: the reference's URL)")
    ml1m.add_argument("--extra", metavar="DIR",
                      help="folder with movies.dat and sas_to_original_items.txt: adds item_names.tsv")
    add_output_options(ml1m)
    ml1m.set_defaults(handler=run_ml1m)

    log = recipes.add_parser("import", formatter_class=formatter, epilog=EXAMPLES,
                             help="your own interaction log (CSV, TSV, Parquet, JSON lines)",
                             description="Turn a log of user-item events into a dataset folder: ids are "
                                         "trimmed and numbered (user_ids.tsv, item_ids.tsv map them back), "
                                         "missing values (empty, N/A, null, NaN, None) drop their row, each "
                                         "user's events are ordered by time, and the folder is split "
                                         "leave-one-out (default) or at a date (--split time).")
    log.add_argument("--interactions", required=True, metavar="FILE", help="the log, one event per row")
    log.add_argument("--name", required=True, help="dataset name (folder name under the datasets dir)")
    log.add_argument("--format", choices=("csv", "tsv", "parquet", "jsonl"),
                     help="file format (default: from the extension)")
    log.add_argument("--user-col", default="user_id", metavar="COL", help="user column (default user_id)")
    log.add_argument("--item-col", default="item_id", metavar="COL", help="item column (default item_id)")
    log.add_argument("--time-col", metavar="COL",
                     help="time column: ISO 8601 dates and times (Z or +02:00 offsets; none: UTC) or epoch "
                          "seconds or milliseconds (1e11 and above), mixed freely (default: none, file order "
                          "is time order)")
    log.add_argument("--on-bad-rows", choices=("fail", "drop"), default="fail",
                     help="a row whose timestamp is none, or whose id holds a tab or line break: stop the "
                          "import naming it (fail, the default) or drop it and count it (drop)")
    log.add_argument("--split", choices=("leave-one-out", "time"), default="leave-one-out",
                     help="leave-one-out (default): each user's last event is test, the second-last of "
                          "--val-users users validation; time: test on the first event from --test-start of "
                          "every user active then, train on everything before (needs --time-col)")
    log.add_argument("--test-start", metavar="TIME", help="with --split time: where test begins (a date or time)")
    log.add_argument("--val-start", metavar="TIME",
                     help="with --split time: validate on the first event from this time (before --test-start) "
                          "and train only before it (default: each validation user's last training event)")
    log.add_argument("--min-item-interactions", type=positive_int, default=0, metavar="K",
                     help="drop items with fewer than K events")
    log.add_argument("--min-user-interactions", type=positive_int, default=0, metavar="K",
                     help="drop users with fewer than K events")
    log.add_argument("--k-core", action="store_true", help="repeat both filters until nothing changes")
    log.add_argument("--streaming", action="store_true",
                     help="read the log with Polars' streaming engine, holding only its ids and a table of "
                          "numbers, never its text (the default for CSV/TSV/Parquet files over a tenth of the "
                          "memory available)")
    log.add_argument("--item-names", metavar="FILE",
                     help="table of external item id (first column) and title (second column)")
    add_split_options(log)
    add_output_options(log)
    log.set_defaults(handler=run_import)

    for kind, source_help in (("steam", "steam_reviews.json(.gz) from the SASRec authors"),
                              ("gowalla", "loc-gowalla_totalCheckins.txt(.gz) from SNAP")):
        recipe = recipes.add_parser(kind, formatter_class=formatter, epilog=EXAMPLES,
                                    help=f"{kind.capitalize()} from its public raw file",
                                    description=f"Build the {kind} dataset folder of the gSASRec paper from "
                                                f"its public raw file ({source_help}): users and items with "
                                                f"fewer than 5 events removed, events ordered by time, split "
                                                f"leave-one-out.")
        recipe.add_argument("--source", metavar="PATH_OR_URL", help=f"{source_help} (default: its URL)")
        recipe.add_argument("--name", default=kind, help=f"dataset name (default {kind})")
        add_split_options(recipe)
        add_output_options(recipe)
        recipe.set_defaults(handler=run_raw, kind=kind)

    stats = recipes.add_parser("stats", formatter_class=formatter, epilog=EXAMPLES,
                               help="users, items, interactions, sequence lengths (and a histogram PNG)",
                               description="Summarise a dataset folder: counts and the percentiles of its "
                                           "users' history lengths; --histogram also draws them.")
    stats.add_argument("name", help="dataset name")
    add_datasets_dir(stats)
    stats.add_argument("--histogram", metavar="PNG", help="also save a histogram of history lengths there")
    stats.add_argument("--json", action="store_true", help="print the summary as JSON")
    stats.set_defaults(handler=run_stats)


def add_split_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--val-users", type=positive_int, default=512, metavar="N",
                        help="validation users drawn at random (default 512)")
    parser.add_argument("--seed", type=seed_number, default=42, help="seed of that draw (default 42)")


def add_output_options(parser: argparse.ArgumentParser) -> None:
    add_datasets_dir(parser)
    parser.add_argument("--force", action="store_true", help="replace an existing dataset folder")


def run_ml1m(args: argparse.Namespace) -> None:
    from gsasrec.data.folder import resolve_datasets_dir
    from gsasrec.data.recipes import ML1M_URL, build_ml1m
    from gsasrec.progress import JobProgress

    with JobProgress("building ml1m"):
        path = build_ml1m(resolve_datasets_dir(args.datasets_dir), args.source or ML1M_URL,
                          Path(args.extra) if args.extra else None, force=args.force)
    print(f"wrote {path}")


def run_import(args: argparse.Namespace) -> None:
    from gsasrec.data.folder import dataset_folder, resolve_datasets_dir
    from gsasrec.data.interactions import (
        ImportOptions,
        ImportReport,
        build_sequences,
        check_log_file,
        detect_format,
        read_item_names,
        read_log,
        write_import,
    )
    from gsasrec.data.streaming import should_stream, streamed_sequences
    from gsasrec.progress import JobProgress

    options = ImportOptions(user_col=args.user_col, item_col=args.item_col, time_col=args.time_col,
                            min_item_interactions=args.min_item_interactions,
                            min_user_interactions=args.min_user_interactions, k_core=args.k_core,
                            val_users=args.val_users, seed=args.seed, on_bad_rows=args.on_bad_rows,
                            split=args.split, **split_times(args))
    source = Path(args.interactions)
    datasets_dir = resolve_datasets_dir(args.datasets_dir)
    folder = dataset_folder(args.name, datasets_dir)
    if folder.exists() and not args.force:  # before the (possibly long) read of the log
        raise GSASRecError(f"dataset folder {folder} already exists (use --force to replace it)")
    report = ImportReport()
    fmt = detect_format(source, args.format)
    streaming = args.streaming or (source.is_file() and fmt != "jsonl" and should_stream(source))
    with JobProgress(f"importing {source.name}: reading{' (streaming)' if streaming else ''}") as progress:
        names = read_item_names(Path(args.item_names)) if args.item_names else None
        if streaming:
            check_log_file(source)
            built = streamed_sequences(source, fmt, options, report)
        else:
            built = build_sequences(read_log(source, fmt, options, report), options, report)
        progress.stage(f"importing {source.name}: splitting and writing {folder}")
        path, report = write_import(*built, args.name, datasets_dir, options, args.force, names, str(source),
                                    report)
    print_report(path, report)


def split_times(args: argparse.Namespace) -> dict:
    """test_start / val_start in seconds from --split time's options, checked before the log is read."""
    from gsasrec.data.times import parse_time_value

    if args.split != "time":
        if args.test_start or args.val_start:
            raise GSASRecError("--test-start and --val-start go with --split time")
        return {}
    if not args.time_col:
        raise GSASRecError("--split time needs the time column: name it with --time-col")
    if not args.test_start:
        raise GSASRecError("--split time needs --test-start TIME (where the test period begins)")
    try:
        times = {"test_start": parse_time_value(args.test_start, "--test-start")}
        if args.val_start:
            times["val_start"] = parse_time_value(args.val_start, "--val-start")
    except ValueError as error:
        raise GSASRecError(str(error)) from None
    if "val_start" in times and times["val_start"] >= times["test_start"]:
        raise GSASRecError(f"--val-start {args.val_start} must come before --test-start {args.test_start}")
    return times


def run_raw(args: argparse.Namespace) -> None:
    from gsasrec.data.folder import resolve_datasets_dir
    from gsasrec.data.recipes import GOWALLA_URL, STEAM_URL, build_from_raw
    from gsasrec.progress import JobProgress

    source = args.source or (STEAM_URL if args.kind == "steam" else GOWALLA_URL)
    with JobProgress(f"building {args.kind}"):
        path, report = build_from_raw(args.kind, source, resolve_datasets_dir(args.datasets_dir), args.name,
                                      args.force, args.val_users, args.seed)
    print_report(path, report)


def print_report(path: Path, report) -> None:
    for line in report.lines():
        print(line)
    print(f"wrote {path}")


def run_stats(args: argparse.Namespace) -> None:
    from gsasrec.data.folder import read_dataset
    from gsasrec.data.stats import save_length_histogram, summarize
    from gsasrec.files import check_writable

    if args.histogram:
        check_writable(Path(args.histogram))
    dataset = read_dataset(args.name, args.datasets_dir)
    summary = summarize(dataset)
    if args.histogram:
        summary["histogram"] = str(save_length_histogram(dataset, Path(args.histogram)))
    if args.json:
        print(json.dumps(summary))
        return
    lengths = summary.pop("sequence_length")
    for key, value in summary.items():
        print(f"{key:<24} {value}")
    print("sequence length          " + ", ".join(f"{k} {v:g}" for k, v in lengths.items()))

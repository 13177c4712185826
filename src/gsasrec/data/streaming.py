"""The import of data/interactions.py for logs larger than memory: the same steps as polars lazy queries run
by its streaming engine, so that only the distinct ids and one (user, item, time, row) table of numbers are
ever held, never the log's text.

The result is the in-memory import's, folder for folder (tests/test_own_logs.py), with one difference: a
timestamp in a form that chrono's formats do not read (an ISO week date, an ordinal day) is a bad value
here, where the in-memory path falls back on Python's ISO parser.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gsasrec.data.folder import LINE_BREAKS_AND_TABS, Sequences, offsets_of
from gsasrec.data.times import (
    EXPECTED,
    KIND_NAMES,
    MILLISECONDS_FROM,
    missing_markers,
    numeric_seconds,
    time_expressions,
)
from gsasrec.errors import GSASRecError, first_line

# A log larger than this share of the memory available is imported by streaming (`--streaming` forces it).
STREAM_ABOVE_MEMORY_SHARE = 0.1
ALL_KINDS = {**KIND_NAMES, "dates/times": "dates/times"}  # a column of dates or date-times as such


def should_stream(path: Path) -> bool:
    """Whether the log's file is large against the memory available now (Linux; elsewhere: not)."""
    try:
        with open("/proc/meminfo") as info:
            available = next(int(line.split()[1]) * 1024 for line in info if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        return False
    return Path(path).stat().st_size > STREAM_ABOVE_MEMORY_SHARE * available


def scan_log(path: Path, fmt: str, options):
    """A lazy frame of the log: user, item (text, trimmed, missing markers as null), raw_time, row."""
    import polars as pl

    wanted = [options.user_col, options.item_col] + ([options.time_col] if options.time_col else [])
    if fmt in ("csv", "tsv"):
        lazy = pl.scan_csv(path, separator="," if fmt == "csv" else "\t", infer_schema_length=10000,
                           schema_overrides={options.user_col: pl.Utf8, options.item_col: pl.Utf8})
    elif fmt == "parquet":
        lazy = pl.scan_parquet(path)
    else:
        lazy = pl.scan_ndjson(path)
    try:
        schema = lazy.collect_schema()
    except (pl.exceptions.PolarsError, OSError) as error:
        raise GSASRecError(f"{path}: cannot read as {fmt}: {first_line(error)}") from None
    missing = [c for c in wanted if c not in schema]
    if missing:
        raise GSASRecError(f"{path}: missing column {missing[0]!r}; it has {', '.join(schema)}")
    columns = [pl.col(options.user_col).cast(pl.Utf8).alias("raw_user"),
               pl.col(options.item_col).cast(pl.Utf8).alias("raw_item")]
    if options.time_col:
        columns.append(pl.col(options.time_col).alias("raw_time"))
    lazy = lazy.select(columns).with_row_index("row")
    lazy = lazy.with_columns(missing_markers(pl.col("raw_user")).alias("user"),
                             missing_markers(pl.col("raw_item")).alias("item"))
    if options.time_col:
        dtype = schema[options.time_col]
        if dtype in (pl.Date, pl.Datetime):
            seconds = pl.col("raw_time").cast(pl.Datetime("us")).dt.epoch("us").cast(pl.Float64) / 1e6
            kind = pl.when(seconds.is_not_null()).then(pl.lit("dates/times"))
            text = pl.col("raw_time").cast(pl.Utf8)
        elif dtype.is_numeric():
            seconds = numeric_seconds(pl.col("raw_time"))
            kind = (pl.when(seconds.is_null()).then(None)
                    .when(pl.col("raw_time").cast(pl.Float64).abs() >= MILLISECONDS_FROM).then(pl.lit("milliseconds"))
                    .otherwise(pl.lit("seconds")))
            text = seconds.cast(pl.Utf8)  # a missing number is missing, never bad
        else:
            text = missing_markers(pl.col("raw_time").cast(pl.Utf8))
            seconds, kind = time_expressions(text)
        lazy = lazy.with_columns(seconds.alias("time"), kind.alias("kind"),
                                 (seconds.is_null() & text.is_not_null()).alias("bad_time"))
    return lazy


def collect(lazy):
    return lazy.collect(engine="streaming")


def streamed_sequences(path: Path, fmt: str, options, report):
    """What interactions.build_sequences returns (sequences, user ids, item ids, times), from the file."""
    import polars as pl

    lazy = scan_log(path, fmt, options)
    timed = options.time_col is not None
    counts = collect(lazy.select(
        pl.len().alias("rows"),
        (pl.col("raw_user") != pl.col("raw_user").str.strip_chars()).sum().alias("user"),
        (pl.col("raw_item") != pl.col("raw_item").str.strip_chars()).sum().alias("item"),
        *([(pl.col("kind") == k).sum().alias(k) for k in ALL_KINDS] + [pl.col("bad_time").sum().alias("bad")]
          if timed else [])))
    report.rows_read = int(counts["rows"][0])
    for column in ("user", "item"):
        if counts[column][0]:
            report.notes.append(f"{counts[column][0]} {column} ids had surrounding whitespace: trimmed")
    if timed:
        kinds = ", ".join(f"{counts[k][0]} {name}" for k, name in ALL_KINDS.items() if counts[k][0])
        report.notes.append(f"timestamps read as: {kinds or 'none'}")
        bad = int(counts["bad"][0])
        if bad:
            examples = collect(lazy.filter(pl.col("bad_time")).select("row", "raw_time").head(3))
            shown = ", ".join(f"data row {r + 1}: {str(v)!r}" for r, v in examples.iter_rows())
            if options.on_bad_rows == "fail":
                row, value = examples.row(0)
                raise GSASRecError(f"{path}: column {options.time_col!r}, data row {row + 1}: {str(value)!r} is not "
                                   f"a timestamp (expected {EXPECTED}); drop such rows with --on-bad-rows drop")
            report.bad_rows_dropped += bad
            report.notes.append(f"{bad} rows with a bad timestamp dropped ({shown}{', ...' if bad > 3 else ''})")
            lazy = lazy.filter(~pl.col("bad_time"))
    before = report.rows_read - report.bad_rows_dropped
    lazy = lazy.drop_nulls(["user", "item"])
    remaining = int(collect(lazy.select(pl.len()))[0, 0])
    report.missing_ids_dropped = before - remaining
    lazy, unwritable = drop_unwritable(lazy, options, report)
    remaining -= unwritable
    if timed:
        missing_time = int(collect(lazy.select(pl.col("time").null_count()))[0, 0])
        if missing_time:
            lazy = lazy.drop_nulls(["time"])
            report.notes.append(f"{missing_time} rows with a missing timestamp dropped")
            remaining -= missing_time
    lazy = lazy.select("user", "item", *(["time"] if timed else []), "row")
    lazy = filter_counts(lazy, options)
    after = int(collect(lazy.select(pl.len()))[0, 0])
    report.filtered_out = remaining - after
    users = collect(lazy.group_by("user").agg(pl.len().alias("events"), pl.col("row").min().alias("first")))
    single = users.filter(pl.col("events") < 2)
    report.single_event_users_skipped = len(single)
    users = users.filter(pl.col("events") >= 2)
    if len(users) == 0:
        raise GSASRecError("no interactions left after dropping missing ids, filtering and skipping "
                           "single-event users; lower --min-user-interactions / --min-item-interactions")
    lazy = lazy.join(users.lazy().select("user"), on="user", how="semi")
    # Numbered in order of first appearance among the rows kept, as the in-memory path does.
    users = users.sort("first").with_row_index("user_id", offset=1)
    items = collect(lazy.group_by("item").agg(pl.col("row").min().alias("first"))).sort("first") \
        .with_row_index("item_id", offset=1)
    events = collect(lazy.join(users.lazy().select("user", "user_id"), on="user")
                     .join(items.lazy().select("item", "item_id"), on="item")
                     .select("user_id", "item_id", *(["time"] if timed else []), "row"))
    events = events.sort(["user_id"] + (["time"] if timed else []) + ["row"])
    counts = events.group_by("user_id").len().sort("user_id")["len"].to_numpy()
    sequences = Sequences(items=events["item_id"].to_numpy().astype(np.int64), offsets=offsets_of(counts))
    report.users, report.items, report.interactions = len(users), len(items), len(events)
    times = events["time"].to_numpy() if timed else None
    return sequences, users["user"].to_list(), items["item"].to_list(), times


def drop_unwritable(lazy, options, report):
    """(lazy, rows dropped): rows whose id holds a tab or line break fail the import, or are dropped and
    counted (as interactions.unwritable_ids)."""
    import polars as pl

    dropped = 0
    for column in ("user", "item"):
        is_bad = pl.col(column).str.contains(LINE_BREAKS_AND_TABS)
        bad = collect(lazy.filter(is_bad).select(pl.len().alias("count"), pl.col("row").first(),
                                                  pl.col(column).first().alias("value")))
        count = int(bad["count"][0])
        if not count:
            continue
        row, value = int(bad["row"][0]), bad["value"][0]
        if options.on_bad_rows == "fail":
            raise GSASRecError(f"data row {row + 1}: {column} id {value!r} contains a tab or line break, "
                               f"which the id tables cannot hold; clean the ids first, or drop such rows "
                               f"with --on-bad-rows drop")
        lazy = lazy.filter(~is_bad)
        report.bad_rows_dropped += count
        dropped += count
        report.notes.append(f"{count} rows whose {column} id holds a tab or line break dropped "
                            f"(data row {row + 1}: {value!r}{', ...' if count > 1 else ''})")
    return lazy, dropped


def filter_counts(lazy, options):
    """interactions.filter_counts with group-bys and semi-joins, which stream."""
    import polars as pl

    def at_least(frame, column: str, minimum: int):
        kept = frame.group_by(column).agg(pl.len().alias("n")).filter(pl.col("n") >= minimum).select(column)
        return frame.join(kept, on=column, how="semi")

    while True:
        before = int(collect(lazy.select(pl.len()))[0, 0])
        if options.min_item_interactions > 1:
            lazy = at_least(lazy, "item", options.min_item_interactions)
        if options.min_user_interactions > 1:
            lazy = at_least(lazy, "user", options.min_user_interactions)
        # A k-core repeats the filters on their own result; the query grows by one pair of group-bys a
        # round and is run again from the file, so memory stays flat (a handful of rounds, typically).
        if not options.k_core or int(collect(lazy.select(pl.len()))[0, 0]) == before:
            return lazy

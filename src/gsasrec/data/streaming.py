"""The import of data/interactions.py for logs larger than memory: the same steps as polars lazy queries run
by its streaming engine, so that only the distinct ids and one (user, item, time, row) table of numbers are
ever held, never the log's text.

The result is the in-memory import's, folder for folder (tests/test_own_logs.py), with one difference: a
timestamp in a form that chrono's formats do not read (an ISO week date, an ordinal day) is a bad value
here, where the in-memory path falls back on Python's ISO parser.
"""

from __future__ import annotations

from pathlib import Path

from gsasrec.data.folder import LINE_BREAKS_AND_TABS
from gsasrec.data.interactions import build_sequences, refuse_or_drop_ids
from gsasrec.data.times import EXPECTED, KIND_NAMES, column_time_expressions, kind_counts, missing_markers
from gsasrec.errors import GSASRecError, first_line

# A log larger than this share of the memory available is imported by streaming (`--streaming` forces it).
STREAM_ABOVE_MEMORY_SHARE = 0.1


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
        seconds, kind, bad = column_time_expressions(pl.col("raw_time"), schema[options.time_col])
        lazy = lazy.with_columns(seconds.alias("time"), kind.alias("kind"), bad.alias("bad_time"))
    return lazy


def collect(lazy):
    return lazy.collect(engine="streaming")


KIND_CODES = list(KIND_NAMES)  # the kind column of the numeric table: an index into this list


def streamed_sequences(path: Path, fmt: str, options, report):
    """What interactions.build_sequences returns (sequences, user ids, item ids, times), from the file.

    Three streamed passes: the distinct user ids, the distinct item ids, then the log as a table of numbers
    (user and item codes, time, row, flags), about 20 bytes a row. What follows is the in-memory import on
    that table, whose ids are codes: the text of the ids is held once per distinct id."""
    import polars as pl

    lazy = scan_log(path, fmt, options)
    timed = options.time_col is not None
    codes = {column: collect(lazy.select(column).drop_nulls().unique()).with_row_index("code")
             for column in ("user", "item")}
    flags = [(pl.col("raw_user") != pl.col("raw_user").str.strip_chars()).alias("trimmed_user"),
             (pl.col("raw_item") != pl.col("raw_item").str.strip_chars()).alias("trimmed_item")]
    if timed:
        # an Enum, one byte a row: replace_strict to numbers here made the streaming engine hold the log
        flags += [pl.col("kind").cast(pl.Enum(KIND_CODES)), pl.col("time"), pl.col("bad_time")]
    table = collect(lazy.join(codes["user"].lazy().rename({"code": "user_code"}), on="user", how="left")
                    .join(codes["item"].lazy().rename({"code": "item_code"}), on="item", how="left")
                    .select(pl.col("user_code").alias("user"), pl.col("item_code").alias("item"), *flags,
                            pl.col("row").cast(pl.UInt32)))  # logs of up to 4 billion rows
    report.rows_read = len(table)
    for column in ("user", "item"):
        trimmed = int(table[f"trimmed_{column}"].sum())
        if trimmed:
            report.notes.append(f"{trimmed} {column} ids had surrounding whitespace: trimmed")
    table = table.drop("trimmed_user", "trimmed_item")
    if timed:
        table = drop_bad_times(table, lazy, path, options, report)
    # Handed over in a list and let go here, so that build_sequences holds the only reference and each of
    # its steps frees the previous frame (a hundred million rows are 2 GB a copy).
    tables = [drop_unwritable(table, codes, options, report)]
    del table
    sequences, user_codes, item_codes, times = build_sequences(tables.pop(), options, report, check_ids=False)
    # with_row_index numbered the codes in the tables' own order: code c is row c
    return (sequences, codes["user"]["user"].gather(user_codes).to_list(),
            codes["item"]["item"].gather(item_codes).to_list(), times)


def drop_bad_times(table, lazy, path: Path, options, report):
    """The timestamp kinds note, and rows with a bad timestamp: fail, or drop and count (as read_log)."""
    import polars as pl

    kinds = kind_counts(table["kind"])
    report.notes.append(f"timestamps read as: {', '.join(f'{n} {k}' for k, n in kinds.items()) or 'none'}")
    bad_rows = table.filter(pl.col("bad_time"))["row"]
    if len(bad_rows):
        first = bad_rows.sort().head(3).to_list()  # the table is in no particular order
        examples = collect(lazy.filter(pl.col("row").is_in(first)).select("row", "raw_time")).sort("row")
        shown = ", ".join(f"data row {r + 1}: {str(v)!r}" for r, v in examples.iter_rows())
        if options.on_bad_rows == "fail":
            row, value = examples.row(0)
            raise GSASRecError(f"{path}: column {options.time_col!r}, data row {row + 1}: {str(value)!r} is not "
                               f"a timestamp (expected {EXPECTED}); drop such rows with --on-bad-rows drop")
        report.bad_rows_dropped += len(bad_rows)
        report.notes.append(f"{len(bad_rows)} rows with a bad timestamp dropped "
                            f"({shown}{', ...' if len(bad_rows) > 3 else ''})")
        table = table.filter(~pl.col("bad_time"))  # a copy: only when there is something to drop
    return table.drop("kind", "bad_time")


def drop_unwritable(table, codes: dict, options, report):
    """Rows whose id holds a tab or line break (judged once per distinct id): fail, or drop and count, as
    interactions.unwritable_ids does (rows with a missing id are not counted here: they go as missing)."""
    import polars as pl

    for column in ("user", "item"):
        bad_codes = codes[column].filter(pl.col(column).str.contains(LINE_BREAKS_AND_TABS))["code"]
        if not len(bad_codes):
            continue
        is_bad = pl.col(column).is_in(bad_codes.implode()) & pl.col("user").is_not_null() & pl.col("item").is_not_null()
        bad = table.filter(is_bad)
        if not len(bad):
            continue
        first = bad.sort("row").row(0, named=True)  # the table is in no particular order
        value = codes[column].filter(pl.col("code") == first[column])[column][0]
        table = refuse_or_drop_ids(table, is_bad, column, int(first["row"]), value, len(bad), options, report)
    return table

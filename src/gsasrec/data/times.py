"""Timestamps as real logs hold them, to seconds since 1970 (UTC), one column at a time.

Accepted, mixed freely in one column: ISO 8601 dates and date-times (`2024-05-02`, `2024-05-02 10:00`,
`2024-05-02T10:00:00.5Z`, `2024-05-02T10:00:00+02:00`, `2024/05/02`), and epoch numbers in seconds or
milliseconds, told apart by size: a number of at least 1e11 is milliseconds (1e11 seconds would be the
year 5138; 1e11 milliseconds is March 1973). A date-time without an offset is taken as UTC. Missing-value
markers (MISSING) are missing; a value that is none of these is a bad value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

MILLISECONDS_FROM = 1e11
# Written for a missing value by spreadsheets, databases and pandas; compared case-insensitively after
# surrounding whitespace is removed.
MISSING = ("", "na", "n/a", "nan", "null", "none", "nil")
# Tried in turn on text normalised by _normalise (a 'T' between date and time, '+00:00' for 'Z', '-' in
# dates); chrono's %z takes both +02:00 and +0200, and %.f an optional fraction.
ISO_FORMATS = ("%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M%z", "%Y-%m-%dT%H:%M:%S%.f%z")
EXPECTED = "an ISO 8601 date or time (2024-05-02, 2024-05-02T10:00:00+02:00) or epoch seconds/milliseconds"


@dataclass
class ParsedTimes:
    """Seconds since 1970 (None where missing or bad) and what each value was read as."""

    seconds: object  # polars Series of Float64, the same length as the column
    bad_rows: list = field(default_factory=list)  # 0-based indices of values that are no timestamp
    kinds: dict = field(default_factory=dict)  # "ISO dates/times", "epoch seconds", ... -> count

    def describe(self) -> str:
        return ", ".join(f"{count} {kind}" for kind, count in self.kinds.items() if count)


def missing_markers(text):
    """A polars string expression or Series with MISSING markers (and surrounding whitespace) removed."""
    import polars as pl

    stripped = text.str.strip_chars()
    return pl.when(stripped.str.to_lowercase().is_in(list(MISSING))).then(None).otherwise(stripped)


def time_expressions(text):
    """(seconds, kind) polars expressions over a string expression `text` already cleared of missing
    markers: seconds since 1970 (None where missing or unread) and what each value was read as ("iso",
    "seconds", "milliseconds", or None). Expressions, so that a lazy, streamed import uses the same rules."""
    import polars as pl

    numbers = text.cast(pl.Float64, strict=False)
    numbers = pl.when(numbers.is_finite()).then(numbers).otherwise(None)
    iso = pl.coalesce([_normalise(text).str.to_datetime(fmt, strict=False, time_unit="us", time_zone="UTC")
                       for fmt in ISO_FORMATS]).dt.epoch("us").cast(pl.Float64) / 1e6
    milliseconds = numbers.abs() >= MILLISECONDS_FROM
    seconds = (pl.when(numbers.is_not_null()).then(pl.when(milliseconds).then(numbers / 1000).otherwise(numbers))
               .otherwise(iso))
    kind = (pl.when(numbers.is_not_null()).then(pl.when(milliseconds).then(pl.lit("milliseconds"))
                                                  .otherwise(pl.lit("seconds")))
            .when(iso.is_not_null()).then(pl.lit("iso")).otherwise(None))
    return seconds, kind


KIND_NAMES = {"iso": "ISO dates/times", "seconds": "epoch seconds", "milliseconds": "epoch milliseconds",
              "dates": "dates/times"}  # the last: a column stored as dates or date-times


def numeric_seconds(values):
    """Seconds of an expression of numbers (epoch seconds, or milliseconds from MILLISECONDS_FROM up)."""
    import polars as pl

    numbers = values.cast(pl.Float64).fill_nan(None)  # NaN is a missing time, not the latest one
    return pl.when(numbers.abs() >= MILLISECONDS_FROM).then(numbers / 1000).otherwise(numbers)


def column_time_expressions(column, dtype):
    """(seconds, kind, bad) expressions for a time column of polars type `dtype`, for the eager and the
    streamed import alike: dates and numbers are never bad (a missing one is missing); text is read by
    time_expressions after its missing markers are cleared."""
    import polars as pl

    if dtype in (pl.Date, pl.Datetime):
        seconds = column.cast(pl.Datetime("us")).dt.epoch("us").cast(pl.Float64) / 1e6
        return seconds, pl.when(seconds.is_not_null()).then(pl.lit("dates")), pl.lit(False)
    if dtype.is_numeric():
        seconds = numeric_seconds(column)
        # (NaN sorts above every number in polars: numeric_seconds made it missing first)
        kind = (pl.when(seconds.is_null()).then(None)
                .when(column.cast(pl.Float64).abs() >= MILLISECONDS_FROM).then(pl.lit("milliseconds"))
                .otherwise(pl.lit("seconds")))
        return seconds, kind, pl.lit(False)
    text = missing_markers(column.cast(pl.Utf8))
    seconds, kind = time_expressions(text)
    return seconds, kind, seconds.is_null() & text.is_not_null()


def kind_counts(kinds) -> dict:
    """{"ISO dates/times": 6, ...} from a Series of kinds (only the kinds that occur)."""
    found = dict(zip(*kinds.drop_nulls().value_counts().to_dict(as_series=False).values()))
    return {name: int(found[k]) for k, name in KIND_NAMES.items() if found.get(k)}


def parse_time_column(times) -> ParsedTimes:
    """A polars Series of numbers, dates, date-times or text, to ParsedTimes."""
    import polars as pl

    seconds_expr, kind_expr, bad_expr = column_time_expressions(pl.col("time"), times.dtype)
    frame = pl.DataFrame({"time": times}).select(seconds_expr.alias("seconds"), kind_expr.alias("kind"),
                                                  bad_expr.alias("bad"))
    seconds, kind = frame["seconds"], frame["kind"]
    left = frame["bad"].arg_true()
    if len(left):  # forms chrono's formats miss (week dates, ordinal days): Python's own ISO parser
        text = pl.DataFrame({"t": times.gather(left).cast(pl.Utf8)})
        normal = text.select(_normalise(missing_markers(pl.col("t"))))[:, 0]
        values = [_python_iso(value) for value in normal.to_list()]
        seconds = seconds.scatter(left, pl.Series(values, dtype=pl.Float64))
        kind = kind.scatter(left, pl.Series(["iso" if v is not None else None for v in values], dtype=pl.Utf8))
        left = left.filter(pl.Series(values).is_null())
    return ParsedTimes(seconds.alias("time"), left.to_list(), kind_counts(kind))


def _normalise(text):
    return (text.str.replace(r"^(\d{4})/(\d{1,2})/(\d{1,2})", "$1-$2-$3")
            .str.replace(r"^(\d{4}-\d{2}-\d{2})[ T](\d)", "${1}T$2")
            .str.replace(r"[Zz]$", "+00:00"))


def _python_iso(value: str) -> float | None:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def parse_time_value(text: str, what: str) -> float:
    """One timestamp given on the command line (such as --test-start), in seconds since 1970."""
    import polars as pl

    parsed = parse_time_column(pl.Series([text], dtype=pl.Utf8))
    value = parsed.seconds[0]
    if value is None:
        raise ValueError(f"{what}: cannot read {text!r} as a time; expected {EXPECTED}")
    return float(value)

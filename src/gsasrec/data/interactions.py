"""From an interaction log (one row per user-item event) to a dataset folder.

Steps, in order: drop rows with a missing user or item; filter rare items and users (optionally
repeated to a k-core); skip users with a single event (they cannot be split); order each user's
events by time, ties kept in file order; number users and items 1..N in order of first appearance;
leave-one-out split with sampled validation users; write the folder with its id maps.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from gsasrec.data.folder import (
    ITEM_IDS,
    ITEM_NAMES,
    LINE_BREAKS_AND_TABS,
    USER_IDS,
    Sequences,
    dataset_folder,
    format_id_table,
    format_names_table,
    offsets_of,
    write_dataset,
)
from gsasrec.data.split import leave_one_out, sample_validation_users
from gsasrec.errors import GSASRecError, first_line

FORMATS = ("csv", "tsv", "parquet", "jsonl")
_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet",
               ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}


@dataclass
class ImportOptions:
    user_col: str = "user_id"
    item_col: str = "item_id"
    time_col: str | None = None
    min_item_interactions: int = 0
    min_user_interactions: int = 0
    k_core: bool = False
    val_users: int = 512
    seed: int = 42


@dataclass
class ImportReport:
    rows_read: int = 0
    missing_ids_dropped: int = 0
    filtered_out: int = 0
    single_event_users_skipped: int = 0
    users: int = 0
    items: int = 0
    interactions: int = 0
    notes: list = field(default_factory=list)

    def lines(self) -> list[str]:
        return [f"{self.rows_read} rows read", f"{self.missing_ids_dropped} rows with a missing id dropped",
                f"{self.filtered_out} rows removed by the interaction-count filters",
                f"{self.single_event_users_skipped} users with a single event skipped",
                f"{self.users} users, {self.items} items, {self.interactions} interactions"]


def detect_format(path: Path, given: str | None) -> str:
    if given:
        return given
    fmt = _EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise GSASRecError(f"{path}: cannot tell the format from the extension {path.suffix!r}; "
                           f"pass --format {'|'.join(FORMATS)}")
    return fmt


def read_log(path: Path, fmt: str, options: ImportOptions):
    """The user, item (and time) columns of a log file as a polars DataFrame named user, item, time."""
    import polars as pl

    path = Path(path)
    if not path.is_file():
        raise GSASRecError(f"interactions file {path} not found")
    if path.stat().st_size == 0:
        raise GSASRecError(f"{path}: the file is empty")
    wanted = [options.user_col, options.item_col] + ([options.time_col] if options.time_col else [])
    try:
        if fmt in ("csv", "tsv"):
            frame = pl.read_csv(path, separator="," if fmt == "csv" else "\t", columns=wanted,
                                schema_overrides={options.user_col: pl.Utf8, options.item_col: pl.Utf8},
                                infer_schema_length=10000)
        elif fmt == "parquet":
            frame = pl.read_parquet(path, columns=wanted)
        else:
            frame = pl.read_ndjson(path).select(wanted)
    except (pl.exceptions.ColumnNotFoundError, pl.exceptions.SchemaFieldNotFoundError) as error:
        raise GSASRecError(f"{path}: missing column ({first_line(error)}); "
                           f"name columns with --user-col, --item-col, --time-col") from None
    except (pl.exceptions.PolarsError, OSError) as error:
        raise GSASRecError(f"{path}: cannot read as {fmt}: {first_line(error)}") from None
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise GSASRecError(f"{path}: missing column {missing[0]!r}; it has {', '.join(frame.columns)}")
    columns = [pl.col(options.user_col).cast(pl.Utf8).alias("user"),
               pl.col(options.item_col).cast(pl.Utf8).alias("item")]
    if options.time_col:
        columns.append(pl.col(options.time_col).alias("time"))
    frame = frame.select(columns)
    if options.time_col:
        frame = frame.with_columns(parse_times(frame["time"], path, options.time_col))
    return frame


TIME_FORMATS = ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ",
                "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.fZ", "%Y/%m/%d",
                "%Y/%m/%d %H:%M:%S")


def parse_times(times, path: Path, column: str):
    """Numbers as they are; text as numbers or dates/datetimes in one of TIME_FORMATS (the one that
    parses most rows); anything left unparsed is an error naming its row."""
    import polars as pl

    if times.dtype.is_numeric():
        return times.cast(pl.Float64).fill_nan(None).alias("time")  # NaN is a missing time, not the latest
    if times.dtype in (pl.Date, pl.Datetime):
        return times.cast(pl.Datetime("us")).dt.replace_time_zone(None).alias("time")
    text = times.cast(pl.Utf8).str.strip_chars()
    # 'NaN' / 'nan' parse as a float NaN, which would sort as the user's last event: count it as missing.
    text = pl.when(text.str.to_lowercase() == "nan").then(None).otherwise(text)
    text = pl.select(text.alias("time")).to_series()
    parsed = text.cast(pl.Float64, strict=False)
    if (parsed.is_null() & text.is_not_null()).any():
        attempts = [text.str.to_datetime(fmt, strict=False, time_unit="us") for fmt in TIME_FORMATS]
        parsed = max(attempts, key=lambda attempt: attempt.len() - attempt.null_count())
    bad = (parsed.is_null() & text.is_not_null()).arg_true()
    if len(bad):
        row = int(bad[0])
        raise GSASRecError(f"{path}: column {column!r}, data row {row + 1}: cannot parse timestamp "
                           f"{text[row]!r} (expected a number or a date such as 2024-01-31 12:00:00)")
    return parsed.alias("time")


def build_sequences(frame, options: ImportOptions, report: ImportReport):
    """(Sequences of internal item ids per user, user external ids, item external ids)."""
    import polars as pl

    report.rows_read = len(frame)
    frame = frame.with_row_index("row")
    before = len(frame)
    frame = frame.drop_nulls(["user", "item"])
    report.missing_ids_dropped = before - len(frame)
    refuse_unwritable_ids(frame)
    if "time" in frame.columns:
        dropped = frame["time"].null_count()
        if dropped:
            frame = frame.drop_nulls(["time"])
            report.notes.append(f"{dropped} rows with a missing timestamp dropped")
    before = len(frame)
    frame = filter_counts(frame, options)
    report.filtered_out = before - len(frame)
    user_counts = frame.group_by("user").len()
    single = user_counts.filter(pl.col("len") < 2)
    report.single_event_users_skipped = len(single)
    if len(single):
        frame = frame.join(single.select("user"), on="user", how="anti", maintain_order="left")
    if len(frame) == 0:
        raise GSASRecError("no interactions left after dropping missing ids, filtering and skipping "
                           "single-event users; lower --min-user-interactions / --min-item-interactions")
    users = first_appearance_ids(frame, "user")
    items = first_appearance_ids(frame, "item")
    frame = frame.join(users, on="user", maintain_order="left").join(items, on="item", maintain_order="left")
    order = ["user_id"] + (["time"] if "time" in frame.columns else []) + ["row"]
    frame = frame.sort(order)  # the row number as the last key: ties in time keep file order
    counts = frame.group_by("user_id").len().sort("user_id")["len"].to_numpy()
    offsets = offsets_of(counts)
    sequences = Sequences(items=frame["item_id"].to_numpy().astype(np.int64), offsets=offsets)
    report.users, report.items, report.interactions = len(users), len(items), len(frame)
    return sequences, users["user"].to_list(), items["item"].to_list()


def refuse_unwritable_ids(frame) -> None:
    import polars as pl

    for column in ("user", "item"):
        bad = frame.filter(pl.col(column).str.contains(LINE_BREAKS_AND_TABS))
        if len(bad):
            row, value = int(bad["row"][0]), bad[column][0]
            raise GSASRecError(f"data row {row + 1}: {column} id {value!r} contains a tab or line break, "
                               f"which the id tables cannot hold; clean the ids first")


def filter_counts(frame, options: ImportOptions):
    """Items then users below their minimum count removed; with k_core, repeated until stable."""
    import polars as pl

    while True:
        before = len(frame)
        if options.min_item_interactions > 1:
            frame = frame.filter(pl.len().over("item") >= options.min_item_interactions)
        if options.min_user_interactions > 1:
            frame = frame.filter(pl.len().over("user") >= options.min_user_interactions)
        if not options.k_core or len(frame) == before:
            return frame


def first_appearance_ids(frame, column: str):
    """A table column -> column_id numbering distinct values 1..N in order of first appearance."""
    import polars as pl

    distinct = frame.select(column).unique(maintain_order=True)
    return distinct.with_columns(pl.int_range(1, len(distinct) + 1, dtype=pl.Int64).alias(f"{column}_id"))


def import_log(frame, name: str, datasets_dir: Path, options: ImportOptions, force: bool = False,
               item_names: dict | None = None, source: str = "") -> tuple[Path, ImportReport]:
    """Build and write dataset folder `name` from a user/item(/time) frame in file order."""
    report = ImportReport()
    sequences, user_ids, item_ids = build_sequences(frame, options, report)
    is_validation = sample_validation_users(sequences.lengths, options.val_users, options.seed)
    train, val, test = leave_one_out(sequences, is_validation)
    stats = {"num_users": report.users, "num_items": report.items, "num_interactions": report.interactions,
             "import": {"source": source, **asdict(options), **_report_counts(report)}}
    extra = {USER_IDS: format_id_table(user_ids), ITEM_IDS: format_id_table(item_ids)}
    if item_names:
        extra[ITEM_NAMES] = format_names_table(
            {i: item_names[e] for i, e in enumerate(item_ids, start=1) if e in item_names})
    path = write_dataset(dataset_folder(name, datasets_dir), stats, train, val, test, force=force,
                         extra_files=extra)
    return path, report


def _report_counts(report: ImportReport) -> dict:
    counts = asdict(report)
    counts.pop("notes")
    return counts


def read_item_names(path: Path) -> dict:
    """external id -> title from a CSV/TSV/Parquet/JSONL table: first column id, second title."""
    import polars as pl

    fmt = detect_format(Path(path), None)
    try:
        if fmt in ("csv", "tsv"):
            table = pl.read_csv(path, separator="," if fmt == "csv" else "\t", infer_schema=False)
        elif fmt == "parquet":
            table = pl.read_parquet(path)
        else:
            table = pl.read_ndjson(path)
    except (pl.exceptions.PolarsError, OSError) as error:
        raise GSASRecError(f"{path}: cannot read item names: {first_line(error)}") from None
    if table.width < 2:
        raise GSASRecError(f"{path}: item names need two columns (external item id, title)")
    ids, titles = table.columns[:2]
    return dict(zip(table[ids].cast(pl.Utf8).to_list(), table[titles].cast(pl.Utf8).to_list()))



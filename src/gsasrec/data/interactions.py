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
    SPLIT_USERS,
    USER_IDS,
    Sequences,
    dataset_folder,
    format_id_table,
    format_names_table,
    offsets_of,
    write_dataset,
)
from gsasrec.data.split import leave_one_out, sample_validation_users, time_split
from gsasrec.data.times import EXPECTED, missing_markers, parse_time_column
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
    on_bad_rows: str = "fail"  # "drop": rows with a bad timestamp or an unwritable id are dropped and counted
    split: str = "leave-one-out"  # or "time": split at test_start (and val_start), seconds since 1970
    test_start: float | None = None
    val_start: float | None = None


BAD_ROWS = ("fail", "drop")
SPLITS = ("leave-one-out", "time")


@dataclass
class ImportReport:
    rows_read: int = 0
    missing_ids_dropped: int = 0
    bad_rows_dropped: int = 0
    filtered_out: int = 0
    single_event_users_skipped: int = 0
    users: int = 0
    items: int = 0
    interactions: int = 0
    notes: list = field(default_factory=list)

    def lines(self) -> list[str]:
        """The report, its summary last."""
        counts = [f"{self.rows_read} rows read", f"{self.missing_ids_dropped} rows with a missing id dropped"]
        if self.bad_rows_dropped:
            counts.append(f"{self.bad_rows_dropped} bad rows dropped (--on-bad-rows drop)")
        counts += [f"{self.filtered_out} rows removed by the interaction-count filters",
                   f"{self.single_event_users_skipped} users with a single event skipped"]
        return counts + self.notes + [f"{self.users} users, {self.items} items, {self.interactions} interactions"]


def detect_format(path: Path, given: str | None) -> str:
    if given:
        return given
    fmt = _EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise GSASRecError(f"{path}: cannot tell the format from the extension {path.suffix!r}; "
                           f"pass --format {'|'.join(FORMATS)}")
    return fmt


def check_log_file(path: Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise GSASRecError(f"interactions file {path} not found")
    if path.stat().st_size == 0:
        raise GSASRecError(f"{path}: the file is empty")
    return path


def read_log(path: Path, fmt: str, options: ImportOptions, report: ImportReport | None = None):
    """The user, item (and time) columns of a log file as a polars DataFrame named user, item, time (seconds
    since 1970). Ids are trimmed of surrounding whitespace, missing-value markers (N/A, null, ...) become
    missing, and rows with a timestamp that is none (data.times) fail the import or, with
    options.on_bad_rows == "drop", are dropped; `report` counts all of it."""
    import polars as pl

    report = report if report is not None else ImportReport()
    path = check_log_file(path)
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
    frame = frame.select(columns).with_row_index("row")  # file order, and the data row of each message
    report.rows_read = len(frame)
    trimmed = frame.select([(pl.col(c) != pl.col(c).str.strip_chars()).sum().alias(c) for c in ("user", "item")])
    for column in ("user", "item"):
        if trimmed[column][0]:
            report.notes.append(f"{trimmed[column][0]} {column} ids had surrounding whitespace: trimmed")
    frame = frame.with_columns(missing_markers(pl.col("user")).alias("user"),
                               missing_markers(pl.col("item")).alias("item"))
    if options.time_col:
        frame = with_times(frame, path, options, report)
    return frame


def with_times(frame, path: Path, options: ImportOptions, report: ImportReport):
    """frame with its time column in seconds since 1970; bad values fail or are dropped."""
    times = parse_time_column(frame["time"])
    report.notes.append(f"timestamps read as: {times.describe() or 'none'}")
    if times.bad_rows:
        examples = ", ".join(f"data row {row + 1}: {frame['time'][row]!r}" for row in times.bad_rows[:3])
        if options.on_bad_rows == "fail":
            row = times.bad_rows[0]
            raise GSASRecError(f"{path}: column {options.time_col!r}, data row {row + 1}: {frame['time'][row]!r} "
                               f"is not a timestamp (expected {EXPECTED}); drop such rows with "
                               f"--on-bad-rows drop")
        report.bad_rows_dropped += len(times.bad_rows)
        report.notes.append(f"{len(times.bad_rows)} rows with a bad timestamp dropped ({examples}"
                            f"{', ...' if len(times.bad_rows) > 3 else ''})")
    frame = frame.with_columns(times.seconds)
    if times.bad_rows:
        keep = np.ones(len(frame), dtype=bool)
        keep[times.bad_rows] = False
        frame = frame.filter(keep)
    return frame


def build_sequences(frame, options: ImportOptions, report: ImportReport, check_ids: bool = True):
    """(Sequences of internal item ids per user, user external ids, item external ids, and each event's
    time in the sequences' order, or None without a time column). check_ids=False: the ids are codes of a
    caller that checked the text ids itself (data.streaming)."""
    import polars as pl

    if "row" not in frame.columns:
        report.rows_read = len(frame)
        frame = frame.with_row_index("row")
    before = len(frame)
    if frame["user"].null_count() or frame["item"].null_count():  # (a copy: only when needed)
        frame = frame.drop_nulls(["user", "item"])
    report.missing_ids_dropped = before - len(frame)
    if check_ids:
        frame = unwritable_ids(frame, options, report)
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
    timed = ["time"] if "time" in frame.columns else []
    # Only numbers from here on (4-byte ids): a hundred-million-row log sorts in a few GB (data.streaming).
    # Each id column is numbered on its own, so that no step copies the whole frame.
    frame = pl.DataFrame([numbered(frame[column], ids) for column, ids in (("user", users), ("item", items))]
                         + [frame[column] for column in (*timed, "row")])
    frame = frame.sort(["user_id", *timed, "row"])  # the row number as the last key: ties in time keep file order
    counts = frame.group_by("user_id").len().sort("user_id")["len"].to_numpy()
    offsets = offsets_of(counts)
    sequences = Sequences(items=frame["item_id"].to_numpy().astype(np.int64), offsets=offsets)
    report.users, report.items, report.interactions = len(users), len(items), len(frame)
    times = frame["time"].to_numpy() if timed else None
    return sequences, users["user"].to_list(), items["item"].to_list(), times


def unwritable_ids(frame, options: ImportOptions, report: ImportReport):
    """Ids with a tab or line break, which the id tables cannot hold: the import fails, or (on_bad_rows
    "drop") their rows are dropped and counted."""
    import polars as pl

    for column in ("user", "item"):
        is_bad = pl.col(column).str.contains(LINE_BREAKS_AND_TABS)
        bad = frame.filter(is_bad)
        if len(bad):
            frame = refuse_or_drop_ids(frame, is_bad, column, int(bad["row"][0]), bad[column][0], len(bad),
                                       options, report)
    return frame


def refuse_or_drop_ids(frame, is_bad, column: str, row: int, value: str, count: int, options: ImportOptions,
                       report: ImportReport):
    """The `count` rows of `frame` where `is_bad` (an id with a tab or line break; the first at data row
    `row`, `value`): a one-line error, or (on_bad_rows "drop") dropped and counted with an example."""
    if options.on_bad_rows == "fail":
        raise GSASRecError(f"data row {row + 1}: {column} id {value!r} contains a tab or line break, "
                           f"which the id tables cannot hold; clean the ids first, or drop such rows "
                           f"with --on-bad-rows drop")
    report.bad_rows_dropped += count
    report.notes.append(f"{count} rows whose {column} id holds a tab or line break dropped "
                        f"(data row {row + 1}: {value!r}{', ...' if count > 1 else ''})")
    return frame.filter(~is_bad)


def filter_counts(frame, options: ImportOptions):
    """Items then users below their minimum count removed; with k_core, repeated until stable.

    The rounds count over the (user, item) columns of the rows still kept, read through a filter on the
    kept ids, and the whole frame is filtered once at the end: each round of a hundred-million-row log
    would otherwise copy every column (2 GB)."""
    import polars as pl

    ids = frame.select("user", "item")  # (shares the frame's columns: no copy)
    kept = {"user": None, "item": None}  # None: all

    def kept_rows():
        masks = [pl.col(c).is_in(kept[c].implode()) for c in ("user", "item") if kept[c] is not None]
        return pl.all_horizontal(masks) if masks else pl.lit(True)

    def at_least(column: str, minimum: int) -> bool:
        """Narrow kept[column] to the ids with at least `minimum` kept rows; whether any went."""
        counts = ids.lazy().filter(kept_rows()).group_by(column).len().collect()
        enough = counts.filter(pl.col("len") >= minimum)[column]
        narrowed = len(enough) < (len(counts) if kept[column] is None else len(kept[column]))
        kept[column] = enough
        return narrowed

    minimums = [("item", options.min_item_interactions), ("user", options.min_user_interactions)]
    minimums = [(column, minimum) for column, minimum in minimums if minimum > 1]
    while True:
        changed = [at_least(column, minimum) for column, minimum in minimums]
        if not options.k_core or not any(changed):
            break
    if all(kept[c] is None for c in kept):
        return frame
    return frame.filter(kept_rows())


def numbered(column, ids):
    """A column of ids as their numbers in `ids` (a first_appearance_ids table), UInt32, in the same order."""
    import polars as pl

    name = f"{column.name}_id"
    return column.to_frame().join(ids, on=column.name, how="left", maintain_order="left")[name].cast(pl.UInt32)


def first_appearance_ids(frame, column: str):
    """A table column -> column_id numbering distinct values 1..N in order of first appearance: of the
    smallest row number (the frame itself may be in any order, as a streamed join leaves it)."""
    import polars as pl

    distinct = frame.group_by(column).agg(pl.col("row").min().alias("first")).sort("first").drop("first")
    return distinct.with_columns(pl.int_range(1, len(distinct) + 1, dtype=pl.Int64).alias(f"{column}_id"))


def import_log(frame, name: str, datasets_dir: Path, options: ImportOptions, force: bool = False,
               item_names: dict | None = None, source: str = "",
               report: ImportReport | None = None) -> tuple[Path, ImportReport]:
    """Build and write dataset folder `name` from a user/item(/time) frame in file order."""
    report = report if report is not None else ImportReport()
    return write_import(*build_sequences(frame, options, report), name, datasets_dir, options, force,
                        item_names, source, report)


def write_import(sequences: Sequences, user_ids: list, item_ids: list, times: np.ndarray | None, name: str,
                 datasets_dir: Path, options: ImportOptions, force: bool, item_names: dict | None, source: str,
                 report: ImportReport) -> tuple[Path, ImportReport]:
    """Split the users' sequences (leave-one-out, or at a time) and write the dataset folder with its id
    tables."""
    if options.split == "time":
        if times is None:
            raise GSASRecError("--split time needs the time column: name it with --time-col")
        train, val, test, split = time_split(sequences, times, options.test_start, options.val_start,
                                             options.val_users, options.seed)
        counts, split_users = split["counts"], split["users"]
        report.notes.append(f"time split: {counts['test_users']} test users, {counts['validation_users']} "
                            f"validation users, {counts['training_events']} training events of "
                            f"{counts['training_users']} users")
        if not (counts["test_users"] and counts["validation_users"] and counts["training_users"]):
            raise GSASRecError(f"the time split leaves {counts['test_users']} test users, "
                               f"{counts['validation_users']} validation users and {counts['training_users']} "
                               f"training users; move --test-start (or --val-start) so that each has some")
    else:
        is_validation = sample_validation_users(sequences.lengths, options.val_users, options.seed)
        train, val, test = leave_one_out(sequences, is_validation)
        split_users = {"test": np.arange(1, len(sequences) + 1), "val": np.flatnonzero(is_validation) + 1}
    stats = {"num_users": report.users, "num_items": report.items, "num_interactions": report.interactions,
             "import": {"source": source, **asdict(options), **_report_counts(report)}}
    extra = {USER_IDS: format_id_table(user_ids), ITEM_IDS: format_id_table(item_ids),
             **{f"{name}/{SPLIT_USERS}": "".join(f"{u}\n" for u in users) for name, users in split_users.items()}}
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



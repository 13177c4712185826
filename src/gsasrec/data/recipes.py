"""Recipes that build the paper's datasets from their public raw files.

- ml1m: the SASRec version of MovieLens-1M, split exactly as the reference split it (byte-identical).
- steam: Steam reviews (Kang & McAuley), users and items with fewer than 5 reviews removed.
- gowalla: Gowalla check-ins (SNAP), users with fewer than 5 check-ins removed.
"""

from __future__ import annotations

import gzip
import re
import shutil
import sys
from pathlib import Path

import numpy as np

from gsasrec.data.download import fetch
from gsasrec.data.folder import (
    ITEM_NAMES,
    Dataset,
    Sequences,
    format_names_table,
    ml1m_titles,
    offsets_of,
    read_dataset,
    resolve_datasets_dir,
    write_dataset,
)
from gsasrec.data.interactions import ImportOptions, ImportReport, import_log
from gsasrec.data.split import leave_one_out, reference_validation_users
from gsasrec.errors import GSASRecError, first_line

ML1M_URL = "https://raw.githubusercontent.com/asash/ml1m-sas-mapping/main/ml-1m_sas.txt"
ML1M_SHA256 = "b725f3acb3986fe3130bffd1e77a74d182a1f51799567a236dbd60270f95b0a2"
STEAM_URL = "http://cseweb.ucsd.edu/~wckang/steam_reviews.json.gz"
GOWALLA_URL = "https://snap.stanford.edu/data/loc-gowalla_totalCheckins.txt.gz"
ML1M_VALIDATION_USERS = 512
ML1M_SEED = 42


def open_dataset(name: str, datasets_dir: str | Path | None = None) -> Dataset:
    """The dataset folder <datasets_dir>/<name>; ML-1M is first built by its recipe when it is not there."""
    root = resolve_datasets_dir(datasets_dir)
    if name == "ml1m" and not (root / name).exists():
        print(f"{root / name} not found: building it with 'gsasrec data ml1m'", file=sys.stderr)
        created = not root.exists()
        try:
            build_ml1m(root)
        except BaseException:
            if created:  # leave nothing behind in a folder this call made (a failed download, Ctrl-C)
                shutil.rmtree(root, ignore_errors=True)
            raise
    return read_dataset(name, root)


def build_ml1m(datasets_dir: Path, source: str = ML1M_URL, extra_dir: Path | None = None,
               force: bool = False) -> Path:
    """The reference's ml1m/ folder from the raw `user item` file, plus item_names.tsv when extra_dir
    holds movies.dat and sas_to_original_items.txt."""
    datasets_dir = Path(datasets_dir)
    raw = fetch(source, datasets_dir / ".downloads", ML1M_SHA256,
                hint="gsasrec data ml1m --source /path/to/ml-1m.txt")
    pairs = read_pairs(raw)
    if len(pairs) == 0 or (np.diff(pairs[:, 0]) < 0).any():
        raise GSASRecError(f"{raw}: expected `user item` lines grouped by user in ascending user order")
    num_users, num_items = int(pairs[:, 0].max()), int(pairs[:, 1].max())
    counts = np.bincount(pairs[:, 0], minlength=num_users + 1)[1:]
    sequences = Sequences(items=pairs[:, 1].copy(), offsets=offsets_of(counts))
    is_validation = reference_validation_users(num_users, ML1M_VALIDATION_USERS, ML1M_SEED)
    train, val, test = leave_one_out(sequences, is_validation)
    stats = {"num_users": num_users, "num_items": num_items, "num_interactions": int(len(pairs))}
    extra = {"ml-1m.txt": raw.read_bytes()}
    if extra_dir is not None:
        extra.update(ml1m_extras(Path(extra_dir)))
    return write_dataset(datasets_dir / "ml1m", stats, train, val, test, force=force, extra_files=extra)


def read_pairs(path: Path) -> np.ndarray:
    """(rows, 2) int64 from a whitespace-separated `user item` file."""
    try:
        values = np.array(path.read_text().split(), dtype=np.int64)
    except ValueError:
        raise GSASRecError(f"{path}: expected integer `user item` pairs") from None
    if len(values) % 2:
        raise GSASRecError(f"{path}: expected two integers per line")
    return values.reshape(-1, 2)


def ml1m_extras(extra_dir: Path) -> dict:
    """extra/ files copied as they are, and item_names.tsv (SAS item id -> movie title)."""
    files = {}
    for name in ("movies.dat", "users.dat", "sas_to_original_items.txt", "sas_to_original_users.txt"):
        path = extra_dir / name
        if path.exists():
            files[f"extra/{name}"] = path.read_bytes()  # copied byte for byte (movies.dat is ISO-8859-1)
    if "extra/movies.dat" not in files or "extra/sas_to_original_items.txt" not in files:
        raise GSASRecError(f"{extra_dir}: needs movies.dat and sas_to_original_items.txt for item names")
    files[ITEM_NAMES] = format_names_table(ml1m_titles(extra_dir))
    return files


def open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


_STEAM_FIELD = {name: re.compile(rf"['\"]{name}['\"]:\s*u?(?P<q>['\"])(?P<v>(?:\\.|(?!(?P=q)).)*)(?P=q)")
                for name in ("username", "product_id", "date")}


def read_steam(path: Path):
    """user, item, time rows from steam_reviews.json(.gz): one Python-literal dict per line."""
    import polars as pl

    users, items, dates = [], [], []
    skipped = 0
    with open_text(path) as lines:
        for line in lines:
            found = [_STEAM_FIELD[name].search(line) for name in ("username", "product_id", "date")]
            if not all(found):
                skipped += 1
                continue
            users.append(found[0]["v"])
            items.append(found[1]["v"])
            dates.append(found[2]["v"])
    if not users:
        raise GSASRecError(f"{path}: no Steam review lines with username, product_id and date")
    frame = pl.DataFrame({"user": users, "item": items, "time": dates})
    times = frame["time"].str.to_date(strict=False)
    return frame.with_columns(times.alias("time")), skipped


def read_gowalla(path: Path):
    """user, item, time rows from loc-gowalla_totalCheckins.txt(.gz): user, ISO time, lat, lon, place."""
    import polars as pl

    try:
        frame = pl.read_csv(path, separator="\t", has_header=False, infer_schema=False,
                            new_columns=["user", "time", "latitude", "longitude", "item"])
    except pl.exceptions.PolarsError as error:
        raise GSASRecError(f"{path}: not a Gowalla check-ins file: {first_line(error)}") from None
    times = frame["time"].str.to_datetime("%Y-%m-%dT%H:%M:%SZ", strict=False, time_unit="us")
    bad = (times.is_null() & frame["time"].is_not_null()).arg_true()
    if len(bad):
        raise GSASRecError(f"{path}: line {int(bad[0]) + 1}: cannot parse check-in time {frame['time'][int(bad[0])]!r}")
    return frame.select("user", "item").with_columns(times.alias("time")), 0


def build_from_raw(kind: str, source: str, datasets_dir: Path, name: str, force: bool,
                   val_users: int, seed: int) -> tuple[Path, ImportReport]:
    """steam or gowalla from its raw file (a path, or a URL when there is network)."""
    datasets_dir = Path(datasets_dir)
    raw = fetch(source, datasets_dir / ".downloads", None, hint=f"gsasrec data {kind} --source FILE")
    if kind == "steam":
        frame, skipped = read_steam(raw)
        options = ImportOptions(time_col="time", min_item_interactions=5, min_user_interactions=5,
                                val_users=val_users, seed=seed)
    else:
        frame, skipped = read_gowalla(raw)
        options = ImportOptions(time_col="time", min_user_interactions=5, val_users=val_users, seed=seed)
    path, report = import_log(frame, name, datasets_dir, options, force=force, source=str(source))
    if skipped:
        report.notes.append(f"{skipped} lines without the needed fields skipped")
    return path, report


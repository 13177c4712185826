"""`gsasrec data import` over random small logs (hypothesis): hostile ids, duplicates, NaN and missing
times, numbers mixed with dates, ids with surrounding whitespace. Each log either becomes a dataset folder
that reads back consistently, or is refused with a one-line error that leaves nothing behind."""

import contextlib
import csv
import io
import math
import re
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gsasrec.cli import main
from gsasrec.data.folder import ITEM_IDS, LINE_BREAKS_AND_TABS, USER_IDS, read_dataset, read_id_table

# Ids: short text with separators, quotes, spaces and non-ASCII letters, or plain integers (a column
# mixing both); now and then one with a tab or line break. Drawn from a small pool, so ids repeat.
SAFE_TEXT = st.text(alphabet=st.sampled_from(list("ab7 ,;\"'é€😀-_.")), min_size=1, max_size=4)
HOSTILE_TEXT = st.tuples(SAFE_TEXT, st.sampled_from(list("\t\n\r\u2028\x85"))).map("".join)
ID = st.one_of(SAFE_TEXT, st.integers(-3, 30), SAFE_TEXT, st.integers(0, 9), HOSTILE_TEXT)
MISSING = st.sampled_from([None, math.nan, "nan", "NaN"])
NUMBER_TIME = st.one_of(st.integers(0, 50), st.floats(0, 50), st.integers(0, 5), MISSING)
DATE_TIME = st.one_of(st.dates().map(lambda d: d.isoformat()), st.just("2024-01-05"), MISSING)
# A log's time column: numbers, dates, or anything (unreadable text, numbers among dates)
ANY_TIME = st.one_of(NUMBER_TIME, DATE_TIME, st.sampled_from(["x", "2024-02-30", "12:00"]))


@st.composite
def logs(draw):
    users = draw(st.lists(ID, min_size=1, max_size=5, unique_by=str))
    items = draw(st.lists(ID, min_size=1, max_size=6, unique_by=str))
    time = draw(st.sampled_from([NUMBER_TIME, DATE_TIME, ANY_TIME]))
    rows = draw(st.lists(st.tuples(st.sampled_from(users), st.sampled_from(items), time), min_size=1, max_size=25))
    return rows


def write_log(path: Path, rows) -> None:
    with open(path, "w", newline="", encoding="utf-8") as out:
        # CRLF line ends: the csv module then quotes every field holding a \r or \n
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(["user", "item", "time"])
        for user, item, time in rows:
            writer.writerow([user, item, "" if time is None else time])


def parse_time(value):
    """Seconds since 1970 a row sorts by (None: dropped), 'bad' for text no format reads. Numbers are
    epoch seconds, dates midnight UTC, so a column may mix them."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if value.lower() == "nan":
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return "bad"


def clean_id(value) -> str | None:
    """An id as the importer keeps it: surrounding whitespace trimmed, empty (a missing id) as None."""
    text = str(value).strip()
    return text or None


def expected_sequences(rows) -> dict[str, list[str]] | None:
    """user -> item ids in time order (ties in file order), users with one event left out; None when the
    importer must refuse the log (a line break inside a trimmed id, an unreadable time)."""
    ids = [(clean_id(user), clean_id(item)) for user, item, _ in rows]
    if any(v is not None and re.search(LINE_BREAKS_AND_TABS, v) for pair in ids for v in pair):
        return None
    times = [parse_time(time) for _, _, time in rows]
    if "bad" in times:
        return None
    events: dict[str, list] = {}
    for row_number, ((user, item), time) in enumerate(zip(ids, times)):
        if time is not None and user is not None and item is not None:
            events.setdefault(user, []).append((time, row_number, item))
    return {user: [item for *_, item in sorted(found)] for user, found in events.items() if len(found) >= 2}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(logs())
def test_import_reads_back_consistently_or_refuses_in_one_line(rows):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_log(root / "log.csv", rows)
        datasets = root / "datasets"
        code, err = run_import(root / "log.csv", datasets)
        expected = expected_sequences(rows)
        event("refused" if code else "imported")
        if code != 0:
            lines = err.strip().splitlines()
            assert code == 2 and len(lines) == 1 and lines[0].startswith("gsasrec: error:"), err
            assert "Traceback" not in err
            assert not datasets.exists() or list(datasets.iterdir()) == []  # nothing half-written
            # a refusal is right only for a log that cannot be imported, or that leaves no user to split
            assert expected is None or expected == {}, (err, expected)
            return
        assert expected is not None, "imported a log that should be refused"
        assert_reads_back(datasets / "log", expected)


def run_import(log: Path, datasets: Path) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["data", "import", "--interactions", str(log), "--name", "log", "--datasets-dir",
                     str(datasets), "--user-col", "user", "--item-col", "item", "--time-col", "time",
                     "--val-users", "2"])
    return code, err.getvalue()


def assert_reads_back(folder: Path, expected: dict[str, list[str]]) -> None:
    dataset = read_dataset(folder.name, folder.parent)
    users, items = read_id_table(folder / USER_IDS), read_id_table(folder / ITEM_IDS)
    assert len(users) == dataset.stats["num_users"] == len(dataset.test.inputs) == len(expected)
    assert len(items) == dataset.num_items == len(set(items))
    # each user's whole sequence, test input + test target, in external ids, is its log in time order
    found = {}
    for row, user in enumerate(users):
        internal = dataset.test.inputs[row].tolist() + [int(dataset.test.targets[row])]
        found[user] = [items[i - 1] for i in internal]
    assert found == expected
    assert dataset.stats["num_interactions"] == sum(map(len, expected.values()))
    # train + validation + test hold every interaction once: the train part is each sequence minus 2
    # items (3 for validation users)
    assert int(dataset.train.lengths.sum()) + 2 * len(users) + len(dataset.val.targets) == \
        dataset.stats["num_interactions"]

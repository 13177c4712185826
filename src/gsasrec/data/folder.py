"""The pre-split dataset folder (docs/reference.md, "Data format"): read once into arrays, validated while reading.

    <datasets_dir>/<name>/dataset_stats.json          {"num_users", "num_items", "num_interactions", ...}
    <datasets_dir>/<name>/train/input.txt             one user per line, item ids oldest first
    <datasets_dir>/<name>/{val,test}/input.txt        one input sequence per line
    <datasets_dir>/<name>/{val,test}/output.txt       the held-out next item, same line number
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from functools import cached_property
from itertools import chain
from pathlib import Path

import numpy as np

from gsasrec.errors import GSASRecError, first_line
from gsasrec.files import exclusive, remove_entry

DATASETS_ENV = "GSASREC_DATASETS"
SPLITS = ("val", "test")


def offsets_of(lengths: np.ndarray) -> np.ndarray:
    """(count + 1,) int64 start of each sequence in the flat items, and the total at the end."""
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


@dataclass
class Sequences:
    """Variable-length item sequences stored flat: sequence u is items[offsets[u]:offsets[u + 1]]."""

    items: np.ndarray  # (total,) int64
    offsets: np.ndarray  # (count + 1,) int64

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.items[self.offsets[index]:self.offsets[index + 1]]

    def take(self, indices: np.ndarray) -> Sequences:
        """The sequences at `indices`, in that order."""
        return _slices(self.items, self.offsets[:-1][indices], self.lengths[indices])

    def prefixes(self, keep: np.ndarray) -> Sequences:
        """The first keep[u] items of each sequence u."""
        return _slices(self.items, self.offsets[:-1], np.maximum(keep, 0))

    @classmethod
    def from_lists(cls, sequences: list) -> Sequences:
        lengths = np.array([len(s) for s in sequences], dtype=np.int64)
        offsets = offsets_of(lengths)
        items = np.fromiter(chain.from_iterable(sequences), dtype=np.int64, count=int(offsets[-1]))
        return cls(items, offsets)


def _slices(items: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> Sequences:
    """Sequences made of items[starts[u]:starts[u] + lengths[u]], vectorised (no loop over users)."""
    offsets = offsets_of(lengths)
    shift = np.repeat(starts - offsets[:-1], lengths)  # (total,) source index minus target index
    return Sequences(items=items[np.arange(offsets[-1]) + shift], offsets=offsets)


@dataclass
class Split:
    """Inputs and the one held-out next item of each of them."""

    inputs: Sequences
    targets: np.ndarray  # (users,) int64


class Dataset:
    """A dataset folder: its stats at once, each split read (and validated) when first used, so that
    evaluating the test split never parses the training file."""

    def __init__(self, name: str, path: Path, stats: dict):
        self.name, self.path, self.stats = name, path, stats

    @property
    def num_items(self) -> int:
        return int(self.stats["num_items"])

    @cached_property
    def train(self) -> Sequences:
        return read_sequences(self.path / "train" / "input.txt", self.num_items)

    @cached_property
    def val(self) -> Split:
        return read_split(self.path / "val", self.num_items)

    @cached_property
    def test(self) -> Split:
        return read_split(self.path / "test", self.num_items)

    def split(self, name: str) -> Split:
        if name not in SPLITS:
            raise GSASRecError(f"split must be one of {', '.join(SPLITS)}, got {name!r}")
        return getattr(self, name)


def resolve_datasets_dir(datasets_dir: str | Path | None = None) -> Path:
    """--datasets-dir, else $GSASREC_DATASETS, else ./datasets."""
    if datasets_dir is not None:
        return Path(datasets_dir)
    return Path(os.environ.get(DATASETS_ENV, "datasets"))


def dataset_folder(name: str, datasets_dir: str | Path | None = None) -> Path:
    """<datasets dir>/<name>. The name must be one plain folder name: an empty one, '.', '..' or a path
    would point outside the datasets folder (and `--force` would replace whatever is there). Names starting
    with '.' are refused too: hidden siblings are the writers' temporary folders and locks."""
    plain = name not in ("", ".", "..") and Path(name).name == name and "/" not in name and "\\" not in name
    if not plain or name != name.strip():
        raise GSASRecError(f"dataset name {name!r} must be one plain folder name (such as 'shop'), not a path")
    if name.startswith("."):
        raise GSASRecError(f"dataset name {name!r} must not start with '.' (hidden names are kept for the "
                           f"temporary folders of writers)")
    return resolve_datasets_dir(datasets_dir) / name


def read_dataset(name: str, datasets_dir: str | Path | None = None) -> Dataset:
    path = dataset_folder(name, datasets_dir)
    if not path.is_dir():
        raise GSASRecError(
            f"dataset folder {path} not found (pass --datasets-dir DIR or set ${DATASETS_ENV})"
        )
    return Dataset(name, path, read_stats(path / "dataset_stats.json"))


def read_stats(path: Path) -> dict:
    try:
        stats = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GSASRecError(f"{path}: missing (a dataset folder needs dataset_stats.json)") from None
    except json.JSONDecodeError as error:
        raise GSASRecError(f"{path}:{error.lineno}: invalid JSON: {error.msg}") from None
    if not isinstance(stats, dict):
        raise GSASRecError(f"{path}: expected a JSON object with num_users, num_items, num_interactions")
    for key in ("num_users", "num_items", "num_interactions"):
        value = stats.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise GSASRecError(f"{path}: field {key!r} must be a non-negative integer, got {value!r}")
    if stats["num_items"] < 1:
        raise GSASRecError(f"{path}: field 'num_items' must be >= 1, got {stats['num_items']}")
    return stats


def read_split(path: Path, num_items: int) -> Split:
    inputs = read_sequences(path / "input.txt", num_items)
    outputs = read_sequences(path / "output.txt", num_items)
    if len(outputs) != len(inputs):
        raise GSASRecError(
            f"{path / 'output.txt'}: {len(outputs)} lines, but {path / 'input.txt'} has {len(inputs)}; "
            f"expected one held-out item per input line"
        )
    wrong = np.flatnonzero(outputs.lengths != 1)
    if len(wrong):
        line = int(wrong[0]) + 1
        raise GSASRecError(
            f"{path / 'output.txt'}:{line}: expected exactly one item id, got {int(outputs.lengths[wrong[0]])}"
        )
    return Split(inputs=inputs, targets=outputs.items)


def read_sequences(path: Path, num_items: int) -> Sequences:
    """Parse one id sequence per line, checking every id is an integer in 1..num_items."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise GSASRecError(f"{path}: missing") from None
    plain = parse_plain_digits(data)
    if plain is not None:
        return checked_ids(*plain, num_items, path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise GSASRecError(f"{path}: not a text file (expected space-separated item ids)") from None
    return parse_sequences(text.splitlines(), num_items, path)


def parse_plain_digits(data: bytes) -> tuple[np.ndarray, np.ndarray] | None:
    """(items, offsets) of a file made only of unsigned numbers of at most 18 digits, spaces, tabs and
    line ends (\n or \r\n), parsed in a few array passes; None for any other file, which
    parse_sequences reads (and reports the first thing wrong in). ML-1M's test inputs (a million ids)
    take 50-80 ms here against 150-210 ms split line by line in Python, a twentieth of `gsasrec
    evaluate`."""
    raw = np.frombuffer(data, dtype=np.uint8)
    digit = (raw >= ord("0")) & (raw <= ord("9"))
    line_ends = np.flatnonzero(raw == ord("\n"))
    carriages = np.flatnonzero(raw == ord("\r"))
    blank = (raw == ord(" ")) | (raw == ord("\t"))
    if int((digit | blank).sum()) + len(line_ends) + len(carriages) != len(raw):
        return None
    if len(carriages) and (carriages[-1] + 1 == len(raw) or (raw[carriages + 1] != ord("\n")).any()):
        return None  # a lone \r ends a line for str.splitlines
    before = np.concatenate(([False], digit[:-1]))
    after = np.concatenate((digit[1:], [False]))
    starts, ends = np.flatnonzero(digit & ~before), np.flatnonzero(digit & ~after)
    if len(starts) and (ends - starts).max() >= 18:
        return None  # may not fit in int64
    if len(raw) and raw[-1] != ord("\n"):
        line_ends = np.append(line_ends, len(raw))  # the last line has no line end
    offsets = np.concatenate(([0], np.searchsorted(starts, line_ends))).astype(np.int64)  # ids before each line end
    items = np.fromstring(data, dtype=np.int64, sep=" ") if len(starts) else np.zeros(0, dtype=np.int64)
    if len(items) != len(starts):
        return None
    return items, offsets


def parse_sequences(lines: list[str], num_items: int, path: Path, first_line: int = 1) -> Sequences:
    """Sequences from text lines of space-separated ids in 1..num_items; an error names path and line
    (lines[0] being line `first_line` of the file)."""
    rows = [line.split() for line in lines]
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    offsets = offsets_of(lengths)
    try:
        items = np.array(list(chain.from_iterable(rows)), dtype=np.int64)
    except (ValueError, OverflowError):
        line, token = _first_non_integer(rows)
        raise GSASRecError(f"{path}:{line + first_line - 1}: {token!r} is not an integer item id") from None
    return checked_ids(items.reshape(-1), offsets, num_items, path, first_line)


def checked_ids(items: np.ndarray, offsets: np.ndarray, num_items: int, path: Path,
                first_line: int = 1) -> Sequences:
    """Sequences(items, offsets) once every id is known to be in 1..num_items, else an error naming the
    line of the first that is not."""
    out_of_range = np.flatnonzero((items < 1) | (items > num_items))
    if len(out_of_range):
        position = int(out_of_range[0])
        line = int(np.searchsorted(offsets, position, side="right")) + first_line - 1
        raise GSASRecError(
            f"{path}:{line}: item id {int(items[position])} is outside 1..{num_items} "
            f"(num_items from dataset_stats.json)"
        )
    return Sequences(items=items, offsets=offsets)


def _first_non_integer(rows: list) -> tuple[int, str]:
    for line, row in enumerate(rows, start=1):
        for token in row:
            try:
                value = int(token)
            except ValueError:
                return line, token
            if not -(2**63) <= value < 2**63:
                return line, token
    return 0, ""


# Hidden siblings of a dataset folder being written: .NAME.writing-XXXX (the new folder) and .NAME.old-XXXX
# (the one it replaces). Dataset names cannot start with '.', so no dataset is ever named like one.
LEFTOVER_KINDS = ("writing", "old")


def _temporary_folder(path: Path, kind: str) -> Path:
    try:
        temporary = Path(tempfile.mkdtemp(prefix=f".{path.name}.{kind}-", dir=path.parent))
    except OSError as error:
        raise GSASRecError(f"cannot write dataset folder {path}: {error.strerror or first_line(error)}") from None
    umask = os.umask(0)
    os.umask(umask)
    temporary.chmod(0o777 & ~umask)  # mkdtemp makes it 0700; a dataset folder is as shareable as any other
    return temporary


def clear_leftovers(path: Path) -> None:
    """Remove the temporary siblings of `path` that a killed writer left. Called with the folder's lock
    held, so no live writer owns any of them."""
    pattern = re.escape(f".{path.name}.") + f"({'|'.join(LEFTOVER_KINDS)})-[a-z0-9_]+"
    for entry in path.parent.iterdir():
        if re.fullmatch(pattern, entry.name):
            remove_entry(entry)


def format_sequences(sequences: Sequences) -> str:
    """The file text of one id sequence per line."""
    return "".join(sequence_text_chunks(sequences))


def sequence_text_chunks(sequences: Sequences, users_per_chunk: int = 20_000):
    """format_sequences' text in pieces of users_per_chunk lines, so that a writer of a log of a hundred
    million events never holds all of it."""
    for start in range(0, len(sequences), users_per_chunk):
        stop = min(start + users_per_chunk, len(sequences))
        items = sequences.items[sequences.offsets[start]:sequences.offsets[stop]].tolist()
        ends = (sequences.offsets[start + 1:stop + 1] - sequences.offsets[start]).tolist()
        lines, begin = [], 0
        for end in ends:
            lines.append(" ".join(map(str, items[begin:end])) + "\n")
            begin = end
        yield "".join(lines)


def write_dataset(path: str | Path, stats: dict, train: Sequences, val: Split, test: Split,
                  force: bool = False, extra_files: dict | None = None) -> Path:
    """Write a complete dataset folder atomically: into a temporary sibling, renamed into place at the end.

    An existing folder is replaced only with force=True. extra_files maps relative paths to text or bytes.
    """
    path = Path(path)
    with exclusive(path, "dataset folder"):
        if path.exists() and not force:
            raise GSASRecError(f"dataset folder {path} already exists (use --force to replace it)")
        if path.exists() and not (path / "dataset_stats.json").is_file():
            raise GSASRecError(f"{path} exists and is not a dataset folder (no dataset_stats.json): not replacing it")
        clear_leftovers(path)
        temporary = _temporary_folder(path, "writing")
        try:
            # Text files as pieces written one after another (the sequences' text is never whole in memory).
            files = {"dataset_stats.json": [json.dumps(stats, indent=4)],
                     "train/input.txt": sequence_text_chunks(train)}
            for name, split in (("val", val), ("test", test)):
                files[f"{name}/input.txt"] = sequence_text_chunks(split.inputs)
                files[f"{name}/output.txt"] = ["".join(f"{t}\n" for t in split.targets.tolist())]
            files.update({relative: [text] for relative, text in (extra_files or {}).items()})
            try:
                for relative, pieces in files.items():
                    target = temporary / relative
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with open(target, "wb") as out:
                        for piece in pieces:
                            out.write(piece if isinstance(piece, bytes) else piece.encode("utf-8"))
            except OSError as error:  # a full disk, a quota: the half-written folder goes (finally below)
                reason = error.strerror or first_line(error)
                raise GSASRecError(f"cannot write dataset folder {path}: {reason}") from None
            if path.exists():
                retired = _temporary_folder(path, "old")
                os.replace(path, retired / path.name)
                os.replace(temporary, path)
                shutil.rmtree(retired)
            else:
                os.replace(temporary, path)
        finally:
            if temporary.exists():
                shutil.rmtree(temporary)
    return path


# --- id and name tables: beside the dataset files, for datasets built from logs with their own ids ---------

USER_IDS = "user_ids.tsv"  # internal_id <TAB> external_id, one row per user, internal ids 1..num_users
ITEM_IDS = "item_ids.tsv"  # the same for items
ITEM_NAMES = "item_names.tsv"  # item_id <TAB> title, for the items that have one
SPLIT_USERS = "users.txt"  # in val/ and test/: the internal user id of each line (without it, test line u is user u)
ID_TABLE_HEADER = "internal_id\texternal_id\n"
NAMES_TABLE_HEADER = "item_id\ttitle\n"


# Characters that end a line for str.splitlines() or separate the tables' columns: the id tables cannot
# hold an id with one (the importer refuses it); in a title each becomes a space.
LINE_BREAKS_AND_TABS = "[\t\n\x0b\x0c\r\x1c\x1d\x1e\x85\u2028\u2029]"


def format_id_table(external_ids: list) -> str:
    """user_ids.tsv / item_ids.tsv text: row i holds internal id i and its external id."""
    return ID_TABLE_HEADER + "".join(f"{i}\t{e}\n" for i, e in enumerate(external_ids, start=1))


FINGERPRINT = ("num_items", "num_users", "num_interactions")  # dataset_stats.json counts a model records


def fingerprint_difference(recorded: dict, stats: dict) -> str | None:
    """'num_users=40, but the folder has num_users=60' for the first FINGERPRINT count that differs
    between what a checkpoint recorded and a dataset folder's stats; None when none does."""
    for name in FINGERPRINT:
        before, now = recorded.get(name), stats.get(name)
        if before is not None and now is not None and before != now:
            return f"{name}={before}, but the folder has {name}={now}"
    return None


def read_id_table(path: Path) -> list[str]:
    """External ids in internal-id order from user_ids.tsv / item_ids.tsv. A damaged table (unreadable,
    not UTF-8, a row that is not 'N<TAB>id' with N counting up from 1, an id twice) is a one-line error
    naming the file and line: a wrong table would answer with other items' ids."""
    lines = read_table_lines(path)
    ids, seen = [], {}
    for number, line in enumerate(lines[1:], start=2):
        internal, separator, external = line.partition("\t")
        if not separator or internal != str(number - 1):
            raise GSASRecError(f"{path}:{number}: expected '{number - 1}<TAB>external id', got {line[:60]!r}")
        if external in seen:
            raise GSASRecError(f"{path}:{number}: id {external[:60]!r} repeats line {seen[external]}; each "
                               f"external id must name one user or item")
        seen[external] = number
        ids.append(external)
    return ids


def read_table_lines(path: Path) -> list[str]:
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise GSASRecError(f"{path}: not UTF-8 text (byte {error.start}); the tables are written as UTF-8") from None
    except OSError as error:
        raise GSASRecError(f"{path}: cannot be read ({error.strerror or first_line(error)})") from None


def split_line_of(folder: Path, split: str, external_user: str) -> int | None:
    """The 1-based line of `split` that holds the user whose own id (user_ids.tsv) is external_user; None
    when the folder has no user_ids.tsv. A user the table lacks, or who is not in the split, is an error."""
    folder = Path(folder)
    if not (folder / USER_IDS).is_file():
        return None
    ids = read_id_table(folder / USER_IDS)
    try:
        internal = ids.index(external_user.strip()) + 1
    except ValueError:
        raise GSASRecError(f"user {external_user!r} is not in {folder / USER_IDS}") from None
    lines_file = folder / split / SPLIT_USERS
    if not lines_file.is_file():
        if split != "test":
            raise GSASRecError(f"{lines_file} is missing: this folder does not say which user each {split} line is")
        return internal  # leave-one-out: test line u is user u
    lines = lines_file.read_text().split()
    if str(internal) not in lines:
        raise GSASRecError(f"user {external_user!r} is not in the {split} split (see {lines_file})")
    return lines.index(str(internal)) + 1


def format_names_table(names: dict[int, str]) -> str:
    """item_names.tsv text from internal id -> title (tabs and line breaks in a title become spaces)."""
    rows = (f"{internal}\t{re.sub(LINE_BREAKS_AND_TABS, ' ', str(title))}\n"
            for internal, title in sorted(names.items()))
    return NAMES_TABLE_HEADER + "".join(rows)


def read_names_table(path: Path, num_items: int) -> dict[int, str]:
    """internal id -> title from item_names.tsv; ids outside 1..num_items are ignored."""
    names = {}
    for number, line in enumerate(read_table_lines(path)[1:], start=2):
        internal, separator, title = line.partition("\t")
        if not separator or not internal.isdigit():
            raise GSASRecError(f"{path}:{number}: expected 'item_id<TAB>title', got {line[:60]!r}")
        if 1 <= int(internal) <= num_items:
            names[int(internal)] = title
    return names


def item_names(folder: Path | None, num_items: int) -> dict[int, str]:
    """internal id -> name: item_names.tsv, else, in an ML-1M folder laid out as the reference's (its
    extra/ holds movies.dat and the SASRec id map), the movie titles."""
    if folder is None:
        return {}
    if (folder / ITEM_NAMES).exists():
        return read_names_table(folder / ITEM_NAMES, num_items)
    extra = folder / "extra"
    if (extra / "movies.dat").is_file() and (extra / "sas_to_original_items.txt").is_file():
        return {i: name for i, name in ml1m_titles(extra).items() if 1 <= i <= num_items}
    return {}


def ml1m_titles(extra_dir: Path) -> dict[int, str]:
    """SAS item id -> movie title, from MovieLens' movies.dat and the SASRec id map in extra_dir."""
    titles = {}
    for line in (extra_dir / "movies.dat").read_bytes().decode("latin-1").splitlines():  # ISO-8859-1
        movie_id, title, _ = line.split("::", 2)
        titles[movie_id] = title
    names = {}
    for line in (extra_dir / "sas_to_original_items.txt").read_text().splitlines():
        sas_id, movie_id = line.split()
        if movie_id in titles:
            names[int(sas_id)] = titles[movie_id]
    return names

"""The top k of every user of a dataset split, written in blocks to Parquet, CSV or JSON lines.

The split's lines are cut into blocks of `block_users`; each block is scored (evaluation's path:
users sorted by length, batches of at most eval_batch_size users) and written as one part file, atomically, in a work
folder beside the output that also records the job's settings. Memory stays that of one block, whatever
the number of users. Run again after an interruption, the same job keeps the parts it has and writes the
rest; a job of other settings is refused. With N ranks (torchrun, --nproc) rank r writes blocks r,
r + N, ...; when every block is there rank 0 forms the output: the parts folder itself for Parquet (a
folder that Polars and Spark read as one table), the parts joined in block order for CSV and JSON lines.
Sharded or not, the rows are the same, in the same order.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path

import numpy as np
import polars as pl

from gsasrec.data.folder import parse_sequences
from gsasrec.distributed import World, any_rank, barrier, gather_at_main
from gsasrec.errors import GSASRecError, first_line
from gsasrec.evaluation import predict_top
from gsasrec.files import atomic_path, check_writable, write_text_atomic
from gsasrec.progress import JobProgress
from gsasrec.recommender import Recommender, probabilities
from gsasrec.runtime import stop_requests

FORMATS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "jsonl"}
# test, val: the split's inputs (the history before its held-out item), as `recommend --user` takes them;
# train: the training sequences; full: the test input and its held-out item, all the dataset knows of a user.
SPLITS = ("test", "val", "train", "full")
DEFAULT_BLOCK_USERS = 10_000
JOB_FILE = "job.json"


@dataclass
class Job:
    """What one `recommend --all` writes; a resumed job must have the same (JOB_FILE records it)."""

    checkpoint: str  # resolved path
    checkpoint_bytes: int
    checkpoint_modified_ns: int  # a retrained model at the same path is another job
    split: str
    k: int
    exclude_seen: bool
    users_file: str | None
    users_digest: str | None  # of the users the file names: an edited file is another job
    block_users: int
    format: str
    lines: int  # lines of the split: users before --users picks some

    @property
    def blocks(self) -> int:
        return -(-self.lines // self.block_users)


@dataclass
class Outcome:
    rows: int  # rows written in this process (all ranks together; 0 on ranks other than 0)
    users: int
    written_blocks: int  # blocks written in this process
    kept_blocks: int  # blocks an earlier, interrupted run had written
    interrupted: bool
    output: Path


def output_format(path: Path) -> str:
    if path.suffix not in FORMATS:
        raise GSASRecError(f"--output {path}: the name must end in {', '.join(FORMATS)} (the format to write)")
    return FORMATS[path.suffix]


def work_folder(output: Path) -> Path:
    """Beside the output, hidden: parts and the job file while the job is under way."""
    return output.with_name(f".{output.name}.job")


def recommend_every_user(recommender: Recommender, split: str, output: str | Path, k: int = 10,
                         exclude_seen: bool = True, users_file: str | Path | None = None,
                         block_users: int = DEFAULT_BLOCK_USERS, force: bool = False, world: World | None = None,
                         progress: bool | None = None) -> Outcome:
    """Write the top k of every user of `split` (or of those listed in users_file) to `output`.

    Columns: user (the user's own id, from user_ids.tsv, else the line number), rank, item, score,
    probability (sigmoid(score)) and name (when the dataset has item names). An existing output is kept
    unless force; an unfinished job of the same settings is continued, one of other settings refused.
    """
    world = world or World()
    output = Path(output)
    folder = recommender.dataset_folder
    if folder is None:
        raise GSASRecError(f"recommend --all needs the model's dataset folder ({recommender.looked_for} not "
                           f"found; pass --datasets-dir)")
    if split not in SPLITS:
        raise GSASRecError(f"--split must be one of {', '.join(SPLITS)} with --all, got {split!r}")
    if not 1 <= k <= recommender.model.num_items:
        raise GSASRecError(f"-k must be between 1 and {recommender.model.num_items}, got {k}")
    recommender.check_dataset_unchanged()
    source = SplitSource(recommender, split)
    user_ids = recommender.user_ids
    chosen = chosen_users(users_file, user_ids)
    job = describe_job(recommender, source, output, k, exclude_seen, users_file, chosen, block_users)
    parts = prepare(job, output, force, world)
    mine = [block for block in range(job.blocks) if block % world.size == world.rank]
    todo = [block for block in mine if not part_path(parts, job, block).exists()]
    columns = OutputColumns(recommender, user_ids)
    kept = len(mine) - len(todo)
    rows = users = 0
    total = sum(min(job.block_users, job.lines - block * job.block_users) for block in todo)
    with stop_requests() as requests, JobProgress(f"recommending for {split} users", total=total, unit="users",
                                                  shown=world.is_main, terminal=progress) as shown:
        for block, (first_line, lines) in source.blocks(job.block_users, set(todo)):
            if requests.stop:
                break
            table = score_block(recommender, source, columns, job, first_line, lines, chosen)
            write_part(table, part_path(parts, job, block), job.format)
            rows, users = rows + table.height, users + table["user"].n_unique()
            todo.remove(block)
            shown.update(len(lines))
    interrupted = any_rank(world, bool(todo))
    if not interrupted and world.is_main:
        finish(job, parts, output, columns.header)
    counts = gather_at_main(world, (rows, users, len(mine) - kept - len(todo), kept))
    totals = [sum(column) for column in zip(*counts)] if counts else [0, 0, 0, 0]
    return Outcome(*totals, interrupted, output)


class SplitSource:
    """A split's histories as text lines, read block by block, and the user of each line."""

    def __init__(self, recommender: Recommender, split: str):
        folder = recommender.dataset_folder
        self.split, self.num_items = split, recommender.model.num_items
        name = "test" if split == "full" else split
        self.inputs = folder / name / "input.txt"
        self.appended = folder / "test" / "output.txt" if split == "full" else None  # the held-out item
        self.line_users = recommender.split_users(name)  # None: line u is user u
        for path in (self.inputs, self.appended):
            if path is not None and not path.is_file():
                raise GSASRecError(f"{path}: missing (the {split} split of dataset folder {folder})")

    def count_lines(self) -> int:
        with open(self.inputs, "rb") as file:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: file.read(1 << 20), b""))

    def blocks(self, block_users: int, wanted: set[int]) -> Iterator[tuple[int, tuple[int, list[str]]]]:
        """(block number, (its first line number, its lines)) for the blocks in `wanted`, in order; lines
        of `full` end with the held-out item."""
        lines = self._lines()
        block = 0
        while wanted:
            chunk = list(islice(lines, block_users))
            if not chunk:
                return
            if block in wanted:
                wanted.discard(block)
                yield block, (block * block_users + 1, chunk)
            block += 1

    def _lines(self) -> Iterator[str]:
        with open(self.inputs, encoding="utf-8") as inputs:
            if self.appended is None:
                yield from (line.rstrip("\n") for line in inputs)
                return
            with open(self.appended, encoding="utf-8") as appended:
                for history, held_out in zip(inputs, appended):
                    yield f"{history.rstrip()} {held_out.strip()}"

    def users(self, first_line: int, count: int) -> np.ndarray:
        """(count,) internal user ids of lines first_line.. (1-based)."""
        if self.line_users is None:
            return np.arange(first_line, first_line + count, dtype=np.int64)
        return self.line_users[first_line - 1:first_line - 1 + count]


def describe_job(recommender: Recommender, source: SplitSource, output: Path, k: int, exclude_seen: bool,
                 users_file, chosen: np.ndarray | None, block_users: int) -> Job:
    if recommender.checkpoint_path is None:
        raise GSASRecError("recommend --all needs a Recommender loaded from a checkpoint file (from_checkpoint)")
    checkpoint = Path(recommender.checkpoint_path).resolve()
    stat = checkpoint.stat()
    return Job(str(checkpoint), stat.st_size, stat.st_mtime_ns, source.split, k, exclude_seen,
               str(Path(users_file).resolve()) if users_file else None,
               hashlib.sha256(chosen.tobytes()).hexdigest()[:16] if chosen is not None else None,
               block_users, output_format(output),
               source.count_lines())


def chosen_users(users_file, user_ids: list | None) -> np.ndarray | None:
    """Sorted internal ids of the users listed in users_file (their own ids, one per line); None: all."""
    if users_file is None:
        return None
    path = Path(users_file)
    try:
        listed = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as error:
        raise GSASRecError(f"--users {path}: cannot be read ({getattr(error, 'strerror', None) or first_line(error)})"
                           ) from None
    index = {str(user): internal for internal, user in enumerate(user_ids, start=1)} if user_ids else None
    chosen = []
    for number, user in enumerate(listed, start=1):
        if not user:
            continue
        internal = index.get(user) if index is not None else (int(user) if user.isdigit() else None)
        if internal is None:
            known = "the dataset's user_ids.tsv" if index is not None else "user numbers 1, 2, ..."
            raise GSASRecError(f"{path}:{number}: user {user!r} is not a user of the dataset (expected {known})")
        chosen.append(internal)
    if not chosen:
        raise GSASRecError(f"--users {path}: no user ids in it (one per line)")
    return np.unique(np.array(chosen, dtype=np.int64))


class OutputColumns:
    """The output's id and name columns, gathered by internal id."""

    def __init__(self, recommender: Recommender, user_ids: list | None):
        catalog = recommender.catalog
        self.items = pl.Series("item", catalog.external)
        self.names = pl.Series("name", catalog.names, dtype=pl.String) if any(
            name is not None for name in catalog.names) else None
        self.users = pl.Series("user", user_ids) if user_ids is not None else None
        self.header = ["user", "rank", "item", "score", "probability"] + (["name"] if self.names is not None else [])

    def user(self, internal: np.ndarray) -> pl.Series:
        if self.users is None:
            return pl.Series("user", internal)
        return self.users.gather(internal - 1)


def score_block(recommender: Recommender, source: SplitSource, columns: OutputColumns, job: Job,
                first_line: int, lines: list[str], chosen: np.ndarray | None) -> pl.DataFrame:
    histories = parse_sequences(lines, source.num_items, source.inputs, first_line)
    users = source.users(first_line, len(lines))
    if chosen is not None:
        keep = np.flatnonzero(np.isin(users, chosen))
        histories, users = histories.take(keep), users[keep]
    model, config = recommender.model, recommender.config
    ids, scores = predict_top(model, histories, job.k, job.exclude_seen, config.eval_batch_size,
                              config.score_chunk_elements) if len(users) else empty(job.k)
    recommended = np.isfinite(scores)  # (users, k) False where everything left was excluded
    rows = recommended.sum(axis=1)  # (users,)
    ids, scores = ids[recommended], scores[recommended]
    table = {"user": columns.user(np.repeat(users, rows)),
             "rank": pl.Series("rank", np.nonzero(recommended)[1] + 1, dtype=pl.Int32),
             "item": columns.items.gather(ids - 1),
             "score": pl.Series("score", scores, dtype=pl.Float32),
             "probability": pl.Series("probability", probabilities(scores), dtype=pl.Float32)}
    if columns.names is not None:
        table["name"] = columns.names.gather(ids - 1)
    return pl.DataFrame(table)


def empty(k: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((0, k), dtype=np.int64), np.zeros((0, k), dtype=np.float32)


def part_path(parts: Path, job: Job, block: int) -> Path:
    return parts / f"part-{block:06d}.{job.format}"


def write_part(table: pl.DataFrame, path: Path, format: str) -> None:
    with atomic_path(path) as temporary:
        if format == "parquet":
            table.write_parquet(temporary)
        elif format == "csv":
            table.write_csv(temporary, include_header=False)
        else:
            table.write_ndjson(temporary)


def prepare(job: Job, output: Path, force: bool, world: World) -> Path:
    """The parts folder of `job`: a new one, or that of the same job interrupted; rank 0 writes it."""
    work = work_folder(output)
    parts = work / "parts"
    check_writable(work / JOB_FILE)
    if output.exists() and not force:
        raise GSASRecError(f"{output} already exists; --force to replace it")
    if output.is_dir() and job.format != "parquet":
        raise GSASRecError(f"cannot write {output}: it is a folder; give a file name")
    recorded = read_job(work)
    if recorded is not None and recorded != asdict(job):
        if not force:
            different = next(name for name, value in asdict(job).items() if recorded.get(name) != value)
            raise GSASRecError(f"{work} holds an unfinished job with other settings ({different} differs); run "
                               f"that command again to finish it, or --force to start this one over")
    if world.is_main:
        if recorded != asdict(job):
            shutil.rmtree(work, ignore_errors=True)
        parts.mkdir(parents=True, exist_ok=True)
        write_text_atomic(work / JOB_FILE, json.dumps(asdict(job), indent=1) + "\n")
    barrier(world)  # the others wait for the folder
    return parts


def read_job(work: Path) -> dict | None:
    try:
        recorded = json.loads((work / JOB_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # damaged: other settings, by definition
    return recorded if isinstance(recorded, dict) else {}


def finish(job: Job, parts: Path, output: Path, header: list[str]) -> None:
    """Every block is there: the output replaces any old one, whole (a folder rename, or the parts joined
    into a temporary file renamed into place), and the work folder goes."""
    for leftover in parts.glob(".*"):  # a killed writer's temporary file
        leftover.unlink()
    names = sorted(path.name for path in parts.iterdir())
    if names != [part_path(parts, job, block).name for block in range(job.blocks)]:
        raise GSASRecError(f"{parts}: expected {job.blocks} part files, found {len(names)}; run the command again")
    work = parts.parent
    if job.format == "parquet":
        if output.is_dir():  # --force: the old folder goes with the work folder
            os.replace(output, work / "replaced")
        elif output.exists():
            output.unlink()
        os.replace(parts, output)
    else:
        with atomic_path(output) as temporary, open(temporary, "wb") as joined:
            if job.format == "csv":
                joined.write((",".join(header) + "\n").encode("utf-8"))
            for name in names:
                with open(parts / name, "rb") as part:
                    shutil.copyfileobj(part, joined)
    shutil.rmtree(work)


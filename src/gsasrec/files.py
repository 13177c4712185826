"""Writing files and folders so that a crash never leaves one half-written and two writers never race:
write a temporary sibling, then rename; hold the target's lock while deciding whether to replace it."""

from __future__ import annotations

import errno
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gsasrec.errors import GSASRecError, first_line

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; writers are not guarded against each other there
    fcntl = None


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on error it is removed.

    Every output file of the project is written through here (checkpoints, figures, exports, run files,
    downloads), so that every write error is one GSASRecError naming the file: a folder in the way, a
    parent that is a file, no permission, a full disk (torch's own RuntimeError for it included)."""
    path = Path(path)
    check_writable(path)
    prefix, suffix = f".{path.name}.tmp-", path.suffix
    remove_stale(path.parent, re.escape(prefix) + r"(\d+)" + re.escape(suffix))
    temporary = path.with_name(f"{prefix}{os.getpid()}{suffix}")
    try:
        yield temporary
        os.replace(temporary, path)
    except OSError as error:
        if error.errno not in WRITE_ERRNOS:  # the caller's own failure (a download's network error)
            raise
        raise GSASRecError(f"cannot write {path}: {error.strerror or first_line(error)}") from None
    except RuntimeError as error:
        if not any(sign in str(error) for sign in TORCH_WRITE_FAILURES):
            raise
        raise GSASRecError(f"cannot write {path}: the write failed (disk full?): {first_line(error)}") from None
    finally:
        if temporary.exists():
            temporary.unlink()


# OSErrors that are the write's own: no space, over a size limit or quota, no permission, a read-only
# file system, something in the way.
WRITE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EISDIR,
                errno.ENOTDIR, errno.ENOENT, errno.EEXIST}
# How torch.save reports a failed write (a full disk, a vanished folder): as a RuntimeError, not an OSError.
TORCH_WRITE_FAILURES = ("PytorchStreamWriter", "file write failed", "inline_container.cc")


def check_writable(path: str | Path) -> Path:
    """Make `path`'s folder and check that the file can be written there; a GSASRecError naming the path
    if not. Called before long work whose result goes there (a calibration pass, an export), so that the
    error comes first, not after the computation."""
    path = Path(path)
    if path.is_dir():
        raise GSASRecError(f"cannot write {path}: it is a folder; give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise GSASRecError(f"cannot write {path}: {first_file(path.parent)} is a file, not a folder") from None
    except OSError as error:
        raise GSASRecError(f"cannot write {path}: {error.strerror or first_line(error)}") from None
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise GSASRecError(f"cannot write {path}: no permission to write in {path.parent}")
    return path


def first_file(folder: Path) -> Path:
    """The first ancestor of `folder` (itself included) that exists and is not a folder."""
    for candidate in [folder, *folder.parents]:
        if candidate.exists():
            return candidate if not candidate.is_dir() else folder
    return folder


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(text)


def remove_stale(folder: Path, pattern: str) -> None:
    """Remove what killed processes left behind: entries of `folder` whose whole name matches `pattern`
    (a regular expression whose first group is the writer's pid) and whose process is gone (a live one may
    still be writing). The whole name must match, so that a user's file that merely starts the same way
    (a dataset named 'shop.2024' beside 'shop') is never taken for a leftover."""
    for leftover in Path(folder).iterdir():
        match = re.fullmatch(pattern, leftover.name)
        if match and not process_alive(int(match.group(1))):
            remove_entry(leftover)


def remove_entry(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    except OverflowError:  # a number too large to be a pid
        return False
    return True


def lock_name(path: Path) -> Path:
    """The lock file of a file or folder: a hidden sibling (a name no dataset or run can have)."""
    return path.with_name(f".{path.name}.lock")


@contextmanager
def exclusive(path: str | Path, what: str) -> Iterator[None]:
    """Hold the lock of `path` for the block, or raise a one-line GSASRecError at once when another
    process holds it. Whoever holds it may check whether `path` exists and replace it: the check and the
    rename cannot interleave with another writer's. The lock is released when the process dies, so a
    killed writer never leaves a folder locked."""
    path = Path(path)
    if fcntl is None:
        yield
        return
    lock = lock_name(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            handle = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as error:
            raise GSASRecError(f"cannot write {what} {path}: {error.strerror}") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            raise GSASRecError(f"{what} {path} is being written by another process; try again when it "
                               f"has finished") from None
        # The holder before us may have removed the lock file after we opened it: then the lock we hold
        # is on a file nobody else can find, and we must lock the current one instead.
        try:
            same = os.path.samestat(os.fstat(handle), os.stat(lock))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(handle)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)  # while still holding it, so no one can lock this file after us
        os.close(handle)

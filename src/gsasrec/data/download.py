"""Getting a raw file: a local path is used as it is; a URL is downloaded with a progress bar.
Either way the SHA-256 is checked when one is known."""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from gsasrec.errors import GSASRecError
from gsasrec.files import atomic_path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://", "ftp://"))


def fetch(source: str, cache_dir: Path, sha256: str | None, hint: str) -> Path:
    """A local copy of `source` (a path or URL), verified against sha256 when given.

    hint: how to run the command with a local file, for the message when the download fails.
    """
    if is_url(source):
        path = cache_dir / Path(urllib.request.urlparse(source).path).name
        if not (path.exists() and (sha256 is None or sha256_of(path) == sha256)):
            download(source, path, hint)
    else:
        path = Path(source)
        if not path.is_file():
            raise GSASRecError(f"source file {path} not found")
    if sha256 is not None:
        actual = sha256_of(path)
        if actual != sha256:
            raise GSASRecError(f"{path}: SHA-256 is {actual}, expected {sha256} (not the published file)")
    return path


def download(url: str, path: Path, hint: str) -> None:
    try:
        with atomic_path(path) as temporary, open(temporary, "wb") as out, \
                urllib.request.urlopen(url, timeout=30) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {path.name}") as bar:
                for block in iter(lambda: response.read(1 << 16), b""):
                    out.write(block)
                    bar.update(len(block))
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        reason = getattr(error, "reason", None) or error
        raise GSASRecError(f"cannot download {url} ({reason}); without network access, "
                           f"download it elsewhere and pass the file: {hint}") from None

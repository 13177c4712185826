"""Import speed and peak memory of `gsasrec data import` on a synthetic CSV.

    python benchmarks/import_speed.py --rows 10000000
    python benchmarks/import_speed.py --rows 10000000 --streaming
    python benchmarks/import_speed.py --rows 100000000 --format parquet --streaming --dir /var/tmp
    python benchmarks/import_speed.py --quick          # 200,000 rows

Writes a log of --rows events (string user and item ids, integer timestamps, Zipf-like item popularity,
users in shuffled order; CSV or Parquet, generated 10 million rows at a time), then times the real
command in a subprocess and reports its wall time, rows/s and peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHUNK = 10_000_000


def log_chunk(rows: int, users: int, items: int, rng):
    import polars as pl

    user = rng.integers(0, users, rows)
    item = np.minimum(rng.zipf(1.3, rows), items) - 1
    frame = pl.DataFrame({"user": user, "item": item, "timestamp": rng.integers(1e9, 1.7e9, rows)})
    return frame.with_columns(pl.format("u{}", "user").alias("user"), pl.format("i{}", "item").alias("item"))


def write_log(path: Path, rows: int, users: int, items: int, seed: int = 0) -> None:
    """Chunk by chunk, so that the generator never holds more than CHUNK rows."""
    rng = np.random.default_rng(seed)
    sizes = [min(CHUNK, rows - start) for start in range(0, rows, CHUNK)]
    if path.suffix == ".parquet":  # chunk files, then one file through polars' streaming sink
        import polars as pl

        parts = path.with_suffix(".parts")
        parts.mkdir()
        for index, size in enumerate(sizes):
            log_chunk(size, users, items, rng).write_parquet(parts / f"{index:04d}.parquet")
        pl.scan_parquet(parts / "*.parquet").sink_parquet(path)
        for part in parts.iterdir():
            part.unlink()
        parts.rmdir()
        return
    with open(path, "wb") as out:
        for index, size in enumerate(sizes):
            log_chunk(size, users, items, rng).write_csv(out, include_header=index == 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--k-core", type=int, default=5)
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv")
    parser.add_argument("--streaming", action="store_true", help="import with --streaming")
    parser.add_argument("--dir", help="where to write the log and the dataset (default: a temporary folder)")
    args = parser.parse_args()
    rows = 200_000 if args.quick else args.rows
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        log = Path(folder) / f"events.{args.format}"
        started = time.perf_counter()
        write_log(log, rows, users=max(rows // 50, 10), items=max(rows // 100, 10))
        generated = time.perf_counter() - started
        command = [sys.executable, "-m", "gsasrec", "data", "import", "--interactions", str(log),
                   "--name", "bench", "--datasets-dir", str(Path(folder) / "datasets"),
                   "--user-col", "user", "--item-col", "item", "--time-col", "timestamp",
                   "--min-item-interactions", str(args.k_core), "--min-user-interactions", str(args.k_core),
                   "--k-core"] + (["--streaming"] if args.streaming else [])
        started = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if result.returncode != 0:
            sys.exit(result.stderr)
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(json.dumps({"rows": rows, "format": args.format, "streaming": args.streaming,
                          "file_mb": round(log.stat().st_size / 2**20), "generate_s": round(generated, 1),
                          "import_s": round(seconds, 1), "rows_per_s": round(rows / seconds),
                          "peak_rss_mb": round(peak_mb),
                          "report": result.stdout.strip().splitlines()}))


if __name__ == "__main__":
    main()

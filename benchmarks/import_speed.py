"""Import speed and peak memory of `gsasrec data import` on a synthetic CSV.

    python benchmarks/import_speed.py --rows 10000000
    python benchmarks/import_speed.py --quick          # 200,000 rows

Writes a CSV of --rows events (string user and item ids, integer timestamps, Zipf-like item
popularity, users in shuffled order), then times the real command in a subprocess and reports its wall
time and peak resident memory.
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


def write_log(path: Path, rows: int, users: int, items: int, seed: int = 0) -> None:
    import polars as pl

    rng = np.random.default_rng(seed)
    user = rng.integers(0, users, rows)
    item = np.minimum(rng.zipf(1.3, rows), items) - 1
    frame = pl.DataFrame({"user": user, "item": item, "timestamp": rng.integers(1e9, 1.7e9, rows)})
    frame = frame.with_columns(pl.format("u{}", "user").alias("user"), pl.format("i{}", "item").alias("item"))
    frame.write_csv(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--k-core", type=int, default=5)
    args = parser.parse_args()
    rows = 200_000 if args.quick else args.rows
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "events.csv"
        started = time.perf_counter()
        write_log(log, rows, users=max(rows // 50, 10), items=max(rows // 100, 10))
        generated = time.perf_counter() - started
        command = [sys.executable, "-m", "gsasrec", "data", "import", "--interactions", str(log),
                   "--name", "bench", "--datasets-dir", str(Path(folder) / "datasets"),
                   "--user-col", "user", "--item-col", "item", "--time-col", "timestamp",
                   "--min-item-interactions", str(args.k_core), "--min-user-interactions", str(args.k_core),
                   "--k-core"]
        started = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if result.returncode != 0:
            sys.exit(result.stderr)
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(json.dumps({"rows": rows, "csv_mb": round(log.stat().st_size / 2**20), "generate_s": round(generated, 1),
                          "import_s": round(seconds, 1), "peak_rss_mb": round(peak_mb),
                          "report": result.stdout.strip().splitlines()}))


if __name__ == "__main__":
    main()

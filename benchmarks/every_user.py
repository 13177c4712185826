"""Users/s and peak memory of `gsasrec recommend --all`, on ML-1M and on a generated dataset of many users.

    python benchmarks/every_user.py --ml1m ../shared/datasets                  # 6,040 users, pretrained model
    python benchmarks/every_user.py --users 1000000 --dir /var/tmp            # a generated dataset
    python benchmarks/every_user.py --users 1000000 --dir /var/tmp --nproc 2  # sharded over 2 processes

The generated dataset has --users users with 5 to 60 interactions each (uniform), --items items with a
Zipf-like popularity; its model has the seed's shape (embedding 128, 2 blocks, sequence length 200) and
random weights (the speed does not depend on them). The real command runs in a subprocess; the figures
are its wall time from process start to exit, users/s over that, and the peak resident memory of the
process (or of its largest process, with --nproc).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def generate(folder: Path, users: int, items: int, seed: int = 0) -> None:
    """A dataset folder and a checkpoint of the seed's shape for it (skipped when already there)."""
    from gsasrec.checkpoint import save_checkpoint
    from gsasrec.config import make_config
    from gsasrec.data.folder import Sequences, Split, write_dataset
    from gsasrec.model import GSASRec

    if (folder / "model.pt").exists():
        return
    rng = np.random.default_rng(seed)
    lengths = rng.integers(5, 61, users)
    popularity = np.minimum(rng.zipf(1.2, int(lengths.sum())), items)
    whole = Sequences(popularity.astype(np.int64), np.concatenate([[0], np.cumsum(lengths)]))
    keep = lengths - 2
    train = whole.prefixes(keep)
    val = Split(train, whole.items[whole.offsets[:-1] + keep])
    test = Split(whole.prefixes(keep + 1), whole.items[whole.offsets[:-1] + keep + 1])
    stats = {"num_users": users, "num_items": items, "num_interactions": int(lengths.sum())}
    write_dataset(folder / "generated", stats, train, val, test, force=True)
    config = make_config(dataset_name="generated", sequence_length=200, embedding_dim=128, num_blocks=2)
    model = GSASRec.from_config(config, items)
    save_checkpoint(folder / "model.pt", model, config, stats)


def measure(checkpoint: Path, datasets: Path, output: Path, nproc: int, block_users: int) -> dict:
    command = [sys.executable, "-m", "gsasrec", "recommend", "--checkpoint", str(checkpoint), "--datasets-dir",
               str(datasets), "--all", "--split", "full", "--output", str(output), "--force", "--no-progress",
               "--block-users", str(block_users), "--device", "cpu"]
    if nproc > 1:
        command += ["--nproc", str(nproc)]
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, text=True, cwd=ROOT)
        # This child's own figures (its processes' largest, with --nproc), not every child this script had.
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        out.seek(0), err.seek(0)
        text, errors = out.read(), err.read()
    if status != 0:
        sys.exit(errors[-2000:])
    summary = next(line for line in text.splitlines() if "users/s" in line)
    users = int(summary.split(" users,")[0].split()[-1])
    return {"users": users, "seconds": round(seconds, 2), "users_per_second": round(users / seconds),
            "peak_rss_mib": round(usage.ru_maxrss / 1024), "nproc": nproc, "block_users": block_users,
            "summary": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ml1m", metavar="DATASETS_DIR", help="time the pretrained gSASRec on ML-1M")
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--dir", default="/var/tmp/gsasrec-every-user", help="where the generated data goes")
    parser.add_argument("--nproc", type=int, default=1)
    parser.add_argument("--block-users", type=int, default=10_000)
    args = parser.parse_args()
    work = Path(args.dir)
    work.mkdir(parents=True, exist_ok=True)
    if args.ml1m:
        checkpoint, datasets = ROOT / "pretrained" / "ml1m_gsasrec_t0.75.pt", Path(args.ml1m)
        name = "ml1m"
    else:
        folder = work / f"users-{args.users}"
        folder.mkdir(exist_ok=True)
        started = time.perf_counter()
        generate(folder, args.users, args.items)
        print(f"dataset ready in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        checkpoint, datasets, name = folder / "model.pt", folder, f"{args.users}-users"
    figures = measure(checkpoint, datasets, work / f"{name}.parquet", args.nproc, args.block_users)
    figures.update(dataset=name, machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()

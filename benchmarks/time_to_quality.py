"""Steps and minutes until a run's validation nDCG@10 first reaches each threshold, from its metrics.jsonl.

    python benchmarks/time_to_quality.py benchmarks/logs/ml1m_*_seed0.jsonl [--metric nDCG@10]

Minutes are the run's wall time at that validation (training and validation together).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

THRESHOLDS = (0.10, 0.15)


def first_reaching(records: list[dict], metric: str, threshold: float) -> dict | None:
    return next((r for r in records if r["metrics"].get(metric, -1.0) >= threshold), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logs", nargs="+", type=Path)
    parser.add_argument("--metric", default="nDCG@10")
    args = parser.parse_args()
    header = "| run | steps run | best val " + args.metric + " | " + " | ".join(
        f"to {t:.2f}: steps (min)" for t in THRESHOLDS) + " |"
    print(header)
    print("|" + " --- |" * (3 + len(THRESHOLDS)))
    for log in args.logs:
        records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        best = max(r["metrics"][args.metric] for r in records)
        cells = []
        for threshold in THRESHOLDS:
            hit = first_reaching(records, args.metric, threshold)
            cells.append("not reached" if hit is None else f"{hit['step']} ({hit['seconds'] / 60:.1f})")
        print(f"| {log.stem} | {records[-1]['step']} | {best:.4f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

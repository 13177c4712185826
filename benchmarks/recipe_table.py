"""The table of benchmarks/time_to_quality.sh: per recipe, the median over seeds first, then each run.

    python benchmarks/recipe_table.py benchmarks/runs/recipe_results.jsonl

Each input line: {"recipe", "seed", "steps", "minutes" (training wall time, validation included),
"metrics": {"nDCG@10", "R@1", "R@10", "ECE", "E/O", ...}}. A recipe run again replaces its earlier line.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

COLUMNS = ("nDCG@10", "R@1", "R@10", "ECE", "E/O")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    args = parser.parse_args()
    runs: dict[tuple, dict] = {}
    for line in args.results.read_text().splitlines():
        if line.strip():
            run = json.loads(line)
            runs[(run["recipe"], run["seed"])] = run  # the latest run of a recipe and seed
    print("| recipe | seed | steps | minutes | " + " | ".join(f"test {c}" for c in COLUMNS) + " |")
    print("|" + " --- |" * (4 + len(COLUMNS)))
    for recipe in dict.fromkeys(r for r, _ in runs):
        mine = [run for (r, _), run in runs.items() if r == recipe]
        rows = [("median", mine)] + [(str(run["seed"]), [run]) for run in mine]
        for label, group in rows:
            cells = [statistics.median(run[key] for run in group) for key in ("steps", "minutes")]
            values = [statistics.median(run["metrics"].get(c, float("nan")) for run in group) for c in COLUMNS]
            bold = "**" if label == "median" else ""
            print(f"| {bold}{recipe}{bold} | {label} | {cells[0]:.0f} | {cells[1]:.1f} | "
                  + " | ".join(f"{v:.4f}" if abs(v) >= 0.01 else f"{v:.6f}" for v in values) + " |")


if __name__ == "__main__":
    main()

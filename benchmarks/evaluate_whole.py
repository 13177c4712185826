"""`gsasrec evaluate` from process start to exit, and where the time goes.

    python benchmarks/evaluate_whole.py --checkpoint pretrained/ml1m_gsasrec_t0.75.pt \
        --datasets-dir ../shared/datasets [--precision fp32|bf16|auto] [--runs 5]

Runs the real command --runs times in fresh processes (median wall seconds), then once more in this
process phase by phase: importing torch, importing the package's evaluation, loading the checkpoint,
reading the test split, ranking every test user, computing the metrics.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time


def whole_process(args: argparse.Namespace) -> list[float]:
    command = [sys.executable, "-m", "gsasrec", "evaluate", "--checkpoint", args.checkpoint, "--precision",
               args.precision]
    if args.datasets_dir:
        command += ["--datasets-dir", args.datasets_dir]
    seconds = []
    for _ in range(args.runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        seconds.append(time.perf_counter() - started)
    return seconds


def phases(args: argparse.Namespace) -> dict[str, float]:
    marks = {}
    started = time.perf_counter()
    import torch  # noqa: F401

    marks["import torch"] = time.perf_counter()
    from gsasrec.checkpoint import dataset_location, load_model
    from gsasrec.data.folder import read_dataset
    from gsasrec.evaluation import predict_top
    from gsasrec.metrics import compute_metrics
    from gsasrec.runtime import resolve_precision, retain_freed_memory

    retain_freed_memory()  # as the command does
    marks["import gsasrec"] = time.perf_counter()
    model, config, payload = load_model(args.checkpoint, device="cpu")
    marks["load checkpoint"] = time.perf_counter()
    folder = dataset_location(payload, config.dataset_name, args.datasets_dir)
    held_out = read_dataset(folder.name, folder.parent).split("test")
    marks["read test split"] = time.perf_counter()
    bf16 = resolve_precision(args.precision, torch.device("cpu")) == "bf16"
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        ranked, _ = predict_top(model, held_out.inputs, config.recommendation_limit, config.filter_rated,
                                config.eval_batch_size, config.score_chunk_elements)
    marks["rank"] = time.perf_counter()
    compute_metrics(config.metrics, ranked, held_out.targets)
    marks["metrics"] = time.perf_counter()
    previous, spent = started, {}
    for name, mark in marks.items():
        spent[name], previous = round(mark - previous, 3), mark
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--datasets-dir")
    parser.add_argument("--precision", choices=("fp32", "bf16", "auto"), default="fp32")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    seconds = whole_process(args)
    print(json.dumps({"checkpoint": args.checkpoint, "precision": args.precision, "runs": args.runs,
                      "median_s": round(statistics.median(seconds), 3), "seconds": [round(s, 3) for s in seconds],
                      "phases_s": phases(args)}))


if __name__ == "__main__":
    main()

"""Training-step and evaluation speed for a config on a device.

    python benchmarks/speed.py --config configs/ml1m_gsasrec.py --datasets-dir ../shared/datasets
    python benchmarks/speed.py --config configs/ml1m_sasrec.py --device cuda --steps 200
    python benchmarks/speed.py --config configs/ml1m_gsasrec.py --quick

Prints the median (and mean) seconds per training step after warm-up, steps/s, peak memory (resident set on the
CPU, allocated on CUDA) and the time to evaluate every test user.
"""

from __future__ import annotations

import gsasrec  # noqa: F401  (before torch: its thread settings, gsasrec/__init__.py, as the command line has them)

# isort: split
import argparse
import json
import resource
import statistics
import sys
import time

import torch

from gsasrec.batches import TrainingBatches
from gsasrec.config import load_config
from gsasrec.data.folder import read_dataset
from gsasrec.derive import parse_overrides, with_overrides
from gsasrec.evaluation import evaluate_config
from gsasrec.model import GSASRec
from gsasrec.runtime import resolve_device, retain_freed_memory
from gsasrec.training import TrainingStep


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--set", action="append", metavar="FIELD=VALUE", dest="overrides",
                        help="replace one config field, e.g. --set shared_negatives=True")
    parser.add_argument("--datasets-dir")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=20, help="timed steps after warm-up (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (compile needs 2+)")
    parser.add_argument("--quick", action="store_true", help="5 timed steps, 1 warm-up")
    parser.add_argument("--no-eval", action="store_true")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--no-pack", action="store_true", help="one user per batch row (the unpacked layout)")
    parser.add_argument("--keep-malloc", action="store_true", help="skip retain_freed_memory (to measure it)")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.warmup = 5, 1
    config = with_overrides(load_config(args.config), parse_overrides(args.overrides))
    device = resolve_device(args.device)
    if device.type == "cpu" and not args.keep_malloc:
        retain_freed_memory()
    dataset = read_dataset(config.dataset_name, args.datasets_dir)
    torch.manual_seed(0)
    generator = torch.Generator(device=device).manual_seed(0)
    model = GSASRec.from_config(config, dataset.num_items).to(device)
    optimizer = torch.optim.Adam(model.parameters(), fused=device.type == "cuda")
    batches = TrainingBatches(dataset.train, config.sequence_length, model.padding_id,
                              config.train_batch_size, device, config.random_windows, pack=not args.no_pack)
    step = TrainingStep(model, optimizer, config, dataset.num_items, generator, args.precision, args.compile)
    model.train()
    times = []
    while len(times) < args.warmup + args.steps:
        order = batches.shuffle(generator)
        for index in range(len(batches)):
            batch = batches.batch(order, index, generator=generator)
            synchronize(device)
            started = time.perf_counter()
            step(batch)
            synchronize(device)
            times.append(time.perf_counter() - started)
            if len(times) == args.warmup + args.steps:
                break
    median = statistics.median(times[args.warmup:])
    result = {"config": args.config, "device": str(device), "torch": torch.__version__,
              "precision": args.precision, "compile": args.compile, "pack": not args.no_pack,
              "threads": torch.get_num_threads(), "steps": args.steps,
              "median_step_s": round(median, 4), "mean_step_s": round(statistics.mean(times[args.warmup:]), 4),
              "steps_per_s": round(1 / median, 2),
              "peak_memory_mb": round(peak_memory_mb(device))}
    if not args.no_eval:
        for _ in range(2):  # the first run warms up
            synchronize(device)
            started = time.perf_counter()
            evaluate_config(model, dataset.test, config)
            synchronize(device)
        result["eval_test_users"] = len(dataset.test.inputs)
        result["eval_s"] = round(time.perf_counter() - started, 3)
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()

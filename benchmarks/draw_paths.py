"""Where a CPU training step's random draws go: the C kernel's draws (gsasrec.mersenne) against torch's, in one run.

    python benchmarks/draw_paths.py --config configs/ml1m_gsasrec.py --datasets-dir ../shared/datasets \
        --precision bf16 [--warmup 100] [--steps 200]

Runs benchmarks/speed.py's training loop with the kernel's draws on even steps and torch's own on odd ones. Both
give the same numbers, so the run is the same either way and the two kinds of step differ only in who draws: a
comparison free of the machine's drift between runs. Prints, per kind, the median per step of the whole step, its
forward (with the gBCE kernel) and backward, the negatives, the dropout masks and the gBCE kernel, in ms. Set
GOMP_SPINCOUNT in the environment to measure torch's idle threads (gsasrec sets 20000 unless it is set).
"""

from __future__ import annotations

import gsasrec  # noqa: F401  (before torch: its thread settings, gsasrec/__init__.py, as the command line has them)

# isort: split
import argparse
import collections
import statistics
import time

import torch

from gsasrec import attention, dropout, mersenne, objectives, scoring
from gsasrec.batches import TrainingBatches
from gsasrec.config import load_config
from gsasrec.data.folder import read_dataset
from gsasrec.model import GSASRec
from gsasrec.runtime import retain_freed_memory
from gsasrec.training import TrainingStep

PARTS = ("step", "forward", "backward", "negatives", "masks", "gbce kernel")


class Timings:
    """Seconds per (part, kind of step), with the kind of the step now running."""

    def __init__(self):
        self.seconds: dict[tuple[str, bool], list[float]] = collections.defaultdict(list)
        self.steps = 0
        self.kernel_draws = True

    def add(self, part: str, seconds: float) -> None:
        self.seconds[(part, self.kernel_draws)].append(seconds)

    def per_step_ms(self, part: str, kernel_draws: bool, skip: int) -> float:
        """The median over the steps after `skip` of this part's total in a step (a part may run several times)."""
        seconds = self.seconds[(part, kernel_draws)]
        steps = self.steps // 2
        per = len(seconds) // steps if steps else 0
        totals = [sum(seconds[i * per:(i + 1) * per]) for i in range(skip // 2, steps)]
        return 1e3 * statistics.median(totals) if totals else float("nan")


def timed(timings: Timings, part: str, function):
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        result = function(*args, **kwargs)
        timings.add(part, time.perf_counter() - started)
        return result
    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--datasets-dir")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="bf16")
    parser.add_argument("--warmup", type=int, default=100, help="steps not counted (the heap grows for ~100)")
    parser.add_argument("--steps", type=int, default=200, help="counted steps, half of each kind")
    args = parser.parse_args()
    retain_freed_memory()
    config = load_config(args.config)
    dataset = read_dataset(config.dataset_name, args.datasets_dir)
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = GSASRec.from_config(config, dataset.num_items)
    optimizer = torch.optim.Adam(model.parameters())
    batches = TrainingBatches(dataset.train, config.sequence_length, model.padding_id, config.train_batch_size,
                              torch.device("cpu"), config.random_windows)
    step = TrainingStep(model, optimizer, config, dataset.num_items, generator, args.precision)
    model.train()

    timings = Timings()
    kernel_library = mersenne._checked_library
    objectives.sample_candidates = timed(timings, "negatives", objectives.sample_candidates)
    scoring.native_gbce = timed(timings, "gbce kernel", scoring.native_gbce)
    dropout.kept_scale = attention.kept_scale = timed(timings, "masks", dropout.kept_scale)
    while timings.steps < args.warmup + args.steps:
        order = batches.shuffle(generator)
        for index in range(len(batches)):
            timings.kernel_draws = timings.steps % 2 == 0
            mersenne._checked_library = kernel_library if timings.kernel_draws else (lambda generator: None)
            batch = batches.batch(order, index, generator=generator)
            started = time.perf_counter()
            loss = step.loss(batch)
            forward = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            backward = time.perf_counter()
            optimizer.step()
            for part, seconds in (("step", time.perf_counter() - started), ("forward", forward - started),
                                  ("backward", backward - forward)):
                timings.add(part, seconds)
            timings.steps += 1
            if timings.steps == args.warmup + args.steps:
                break
    print(f"{args.config}, {args.precision}, {torch.get_num_threads()} threads, {args.steps} steps after "
          f"{args.warmup}; ms per step, medians")
    print("| part | the kernel's draws | torch's draws |")
    print("| --- | --- | --- |")
    for part in PARTS:
        print(f"| {part} | {timings.per_step_ms(part, True, args.warmup):.2f} | "
              f"{timings.per_step_ms(part, False, args.warmup):.2f} |")


if __name__ == "__main__":
    main()

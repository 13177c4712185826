"""Where one training step's time goes, op by op, against the floor set by its arithmetic.

    python benchmarks/step_profile.py --config configs/ml1m_gsasrec.py --datasets-dir ../shared/datasets \
        --precision bf16 [--no-pack] [--steps 5] [--top 20] [--by-line 30]

Profiles --steps steps (after 3 warm-up steps and the profiled batches once) with torch.profiler and
prints a markdown table of self CPU time per op group, per step. The floor: the step's floating-point
operations (counted by torch.utils.flop_counter on one step) divided by this machine's measured
matrix-product throughput in the step's precision (a 2048 x 2048 x 2048 product).
"""

from __future__ import annotations

import gsasrec  # noqa: F401  (before torch: its thread settings, gsasrec/__init__.py, as the command line has them)

# isort: split
import argparse
import os
import sys
import time

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from gsasrec.batches import TrainingBatches
from gsasrec.config import load_config
from gsasrec.data.folder import read_dataset
from gsasrec.derive import parse_overrides, with_overrides
from gsasrec.model import GSASRec
from gsasrec.runtime import retain_freed_memory
from gsasrec.step import TrainingStep

GROUPS = {
    "matrix products": ("aten::mm", "aten::bmm", "aten::addmm", "aten::baddbmm", "aten::linear", "aten::matmul"),
    "dtype casts and copies": ("aten::copy_", "aten::_to_copy", "aten::to", "aten::clone", "aten::cat"),
    "random numbers (dropout masks, negatives)": ("aten::uniform_", "aten::random_", "aten::randint",
                                                  "aten::bernoulli_"),
    "zero fills": ("aten::fill_", "aten::zero_", "aten::zeros", "aten::new_zeros"),
    "gather, scatter, indexing": ("aten::gather", "aten::scatter_add_", "aten::index", "aten::index_add_",
                                  "aten::index_put_", "aten::_index_put_impl_", "aten::embedding_dense_backward",
                                  "aten::masked_fill_", "aten::index_select"),
    "softmax, layer norm, softplus": ("aten::_softmax", "aten::_softmax_backward_data", "aten::native_layer_norm",
                                      "aten::native_layer_norm_backward", "aten::softplus",
                                      "aten::softplus_backward"),
    "elementwise (mul, add, compare, relu)": ("aten::mul", "aten::add", "aten::add_", "aten::mul_", "aten::ge",
                                              "aten::eq", "aten::ne", "aten::le", "aten::relu",
                                              "aten::threshold_backward", "aten::where", "aten::bitwise_and",
                                              "aten::bitwise_or", "aten::sum", "aten::div", "aten::sub"),
    "Adam": ("Optimizer.step#Adam.step", "aten::_foreach_", "aten::lerp_", "aten::addcmul_", "aten::addcdiv_",
             "aten::sqrt", "aten::_foreach_add_", "aten::_foreach_mul_"),
}


class OpsBySourceLine(TorchDispatchMode):
    """Wall time of each aten op, summed per (op, innermost line of the gsasrec package that called it): the
    backward's ops land on the line that called backward(), a custom autograd Function's on its own lines.
    Without the profiler's overhead (only a clock read and a stack walk per op)."""

    def __init__(self):
        super().__init__()
        self.totals: dict[tuple[str, str], list] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        started = time.perf_counter()
        out = func(*args, **(kwargs or {}))
        seconds = time.perf_counter() - started
        frame, line = sys._getframe(1), "?"
        while frame is not None:
            if f"{os.sep}gsasrec{os.sep}" in frame.f_code.co_filename:
                line = f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"
                break
            frame = frame.f_back
        total = self.totals.setdefault((str(func.overloadpacket.__name__), line), [0, 0.0])
        total[0] += 1
        total[1] += seconds
        return out


def group_of(name: str) -> str:
    for group, names in GROUPS.items():
        if name in names or any(name.startswith(n) for n in names if n.endswith("_")):
            return group
    return "other"


def matmul_throughput(dtype: torch.dtype, size: int = 2048) -> float:
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    for _ in range(3):
        a @ b
    started, repeats = time.perf_counter(), 10
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--set", action="append", metavar="FIELD=VALUE", dest="overrides",
                        help="replace one config field, e.g. --set shared_negatives=True")
    parser.add_argument("--datasets-dir")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="bf16")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--no-pack", action="store_true")
    parser.add_argument("--top", type=int, default=0, help="also list the N ops with the most self CPU time")
    parser.add_argument("--by-line", type=int, default=0, metavar="N",
                        help="also time each op without the profiler and list the N (op, gsasrec source line) "
                             "pairs with the most time")
    args = parser.parse_args()
    retain_freed_memory()
    config = with_overrides(load_config(args.config), parse_overrides(args.overrides))
    dataset = read_dataset(config.dataset_name, args.datasets_dir)
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = GSASRec.from_config(config, dataset.num_items).train()
    step = TrainingStep(model, torch.optim.Adam(model.parameters()), config, dataset.num_items, generator,
                        args.precision)
    batches = TrainingBatches(dataset.train, config.sequence_length, model.padding_id, config.train_batch_size,
                              torch.device("cpu"), config.random_windows, pack=not args.no_pack)
    order = batches.shuffle(generator)
    batch_list = [batches.batch(order, i % len(batches), generator=generator) for i in range(args.steps + 4)]
    # Warm-up: three steps, then the profiled batches once, so that the buffers kept between steps
    # (scoring.workspace) have grown to their largest, as in a long run; growing, they fault in new pages.
    for batch in batch_list[:3] + batch_list[4:]:
        step(batch)
    with FlopCounterMode(display=False) as counter:
        step(batch_list[3])
    flops = counter.get_total_flops()
    started = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=args.top > 0) as profiler:
        for batch in batch_list[4:]:
            step(batch)
    wall = (time.perf_counter() - started) / args.steps
    per_group: dict[str, float] = {}
    for event in profiler.key_averages():
        per_group[group_of(event.key)] = per_group.get(group_of(event.key), 0.0) + event.self_cpu_time_total
    total = sum(per_group.values())
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    throughput = matmul_throughput(dtype)
    print(f"config {args.config}, {args.precision}, pack={not args.no_pack}, {torch.get_num_threads()} threads, "
          f"{args.steps} steps profiled: {wall:.3f} s/step under the profiler")
    print(f"arithmetic per step {flops / 1e9:.1f} GFLOP; matmul throughput {throughput / 1e9:.0f} GFLOP/s "
          f"-> floor {flops / throughput:.3f} s/step\n")
    print("| op group | ms per step | share |")
    print("| --- | --- | --- |")
    for group, micros in sorted(per_group.items(), key=lambda kv: -kv[1]):
        print(f"| {group} | {micros / 1000 / args.steps:.1f} | {micros / total:.0%} |")

    if args.top:
        print("\n| op (input shapes) | calls per step | ms per step |\n| --- | --- | --- |")
        events = sorted(profiler.key_averages(group_by_input_shape=True), key=lambda e: -e.self_cpu_time_total)
        for event in events[:args.top]:
            print(f"| {event.key} {event.input_shapes} | {event.count / args.steps:g} | "
                  f"{event.self_cpu_time_total / 1000 / args.steps:.1f} |")

    if args.by_line:
        with OpsBySourceLine() as timer:
            for batch in batch_list[4:]:
                step(batch)
        print("\n| op | gsasrec source line | calls per step | ms per step |\n| --- | --- | --- | --- |")
        for (op, line), (calls, seconds) in sorted(timer.totals.items(), key=lambda kv: -kv[1][1])[:args.by_line]:
            print(f"| {op} | {line} | {calls / args.steps:g} | {seconds * 1000 / args.steps:.2f} |")


if __name__ == "__main__":
    main()

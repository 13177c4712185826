"""Backward of a gather, table[ids]: PyTorch's default (index_put_ with accumulate) against
scoring.gather_rows (index_add_): is the gradient the same in every repeat, and how long does it take.

    python benchmarks/gather_backward.py

Shapes of one ML-1M gSASRec step: the per-item bias gathered at (20,000 positions, 257 candidates), and a
sparse-path embedding gather (4,000 positions, 65 candidates, dim 64) of a 20,000-item catalogue.
"""

from __future__ import annotations

import statistics
import time

import torch

from gsasrec.scoring import gather_rows

REPEATS = 10


def measure(gather, table: torch.Tensor, ids: torch.Tensor, weights: torch.Tensor) -> tuple[bool, float]:
    """(every repeat gave the same gradient, median milliseconds of forward + backward)."""
    gradients, times = [], []
    for _ in range(REPEATS):
        leaf = table.clone().requires_grad_()
        started = time.perf_counter()
        (gather(leaf, ids) * weights).sum().backward()
        times.append(time.perf_counter() - started)
        gradients.append(leaf.grad)
    same = all(torch.equal(gradients[0], g) for g in gradients[1:])
    return same, statistics.median(times) * 1000


def main() -> None:
    generator = torch.Generator().manual_seed(0)
    cases = {
        "bias (3,418,) at (20000, 257)": (torch.randn(3418, generator=generator),
                                         torch.randint(1, 3417, (20000, 257), generator=generator)),
        "table (20002, 64) at (4000, 65)": (torch.randn(20002, 64, generator=generator),
                                            torch.randint(1, 20001, (4000, 65), generator=generator)),
    }
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {REPEATS}")
    print(f"{'case':<34} {'backward':<26} {'same every run':<15} {'ms':>7}")
    for name, (table, ids) in cases.items():
        weights = torch.rand(*ids.shape, *table.shape[1:], generator=generator)
        for label, gather in (("indexing (index_put_)", lambda t, i: t[i]), ("gather_rows (index_add_)", gather_rows)):
            same, ms = measure(gather, table, ids, weights)
            print(f"{name:<34} {label:<26} {str(same):<15} {ms:7.1f}")


if __name__ == "__main__":
    main()

"""Dense (one matmul over the catalogue, then gather) against sparse logits (on a CPU bagged products, elsewhere
gathered embeddings and bmm).

    python benchmarks/logit_paths.py [--positions 13800] [--dim 128] [--device cpu]

Times forward + backward of gBCE over the logits of [positive, negatives] for several catalogue sizes
and negative counts (median of 5 after 2 warm-ups) and prints the ratio; scoring.DENSE_LOGITS_RATIO is
set from where the dense path stops winning. 13,800 positions is the non-padding part of an ML-1M batch.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from gsasrec.loss import gbce_loss
from gsasrec.runtime import resolve_device, retain_freed_memory
from gsasrec.scoring import candidate_logits, use_dense_logits


def time_path(dense: bool, positions: int, dim: int, rows: int, negatives: int, device) -> float:
    table = torch.randn(rows, dim, device=device, requires_grad=True)
    hidden = torch.randn(positions, dim, device=device, requires_grad=True)
    positives = torch.randint(1, rows - 1, (positions,), device=device)
    times = []
    for _ in range(7):
        negative_ids = torch.randint(1, rows - 1, (positions, negatives), device=device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        loss = gbce_loss(candidate_logits(hidden, table, positives, negative_ids, dense), 0.5)
        loss.backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return statistics.median(times[2:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--positions", type=int, default=13_800)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = resolve_device(args.device)
    retain_freed_memory()
    print("items    negatives  dense_s  sparse_s  dense/sparse  auto")
    for negatives in (1, 16, 64, 256):
        for items in (100, 300, 1_000, 3_416, 10_000, 30_000):
            if items + 2 > 200 * (negatives + 1):
                continue
            dense = time_path(True, args.positions, args.dim, items + 2, negatives, device)
            sparse = time_path(False, args.positions, args.dim, items + 2, negatives, device)
            auto = "dense" if use_dense_logits(items, negatives, args.positions, device) else "sparse"
            print(f"{items:>7} {negatives:>9} {dense:>8.3f} {sparse:>9.3f} {dense / sparse:>12.2f}  {auto}")


if __name__ == "__main__":
    main()

"""Dense (one matmul over the catalogue, then gather) against sparse logits (on a CPU bagged products, elsewhere
gathered embeddings and bmm), and on a CPU the fused gBCE of the bagged logits (scoring.bagged_gbce_loss) in torch
and in the C kernel (gsasrec.native).

    python benchmarks/logit_paths.py [--positions 13800] [--dim 128] [--device cpu] [--part-pairs N]
        [--negatives 1 16 64 256] [--items 100 300 1000 3416 10000 30000]

Times forward + backward of gBCE over the logits of [positive, negatives] for several catalogue sizes
and negative counts (median of --repeats runs less 2 warm-ups) and prints the ratio; scoring.DENSE_LOGITS_RATIO is
set from where the dense path stops winning. 13,800 positions is the non-padding part of an ML-1M batch.
--part-pairs replaces scoring.GBCE_PART_PAIRS, the fused loss's pairs per part (a large number: one part).
On a CPU: fused_s is the fused loss in torch (GSASREC_NATIVE=0), native_s the C kernel's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from functools import partial

import torch

from gsasrec import native, scoring
from gsasrec.loss import gbce_loss
from gsasrec.runtime import resolve_device, retain_freed_memory
from gsasrec.scoring import bagged_gbce_loss, candidate_logits, use_dense_logits


def time_path(path: str, positions: int, dim: int, rows: int, negatives: int, device, repeats: int = 7) -> float:
    """Median seconds of one forward and backward by path "dense", "sparse", "fused" (torch) or "native"."""
    os.environ[native.ENVIRONMENT_SWITCH] = "1" if path == "native" else "0"
    table = torch.randn(rows, dim, device=device, requires_grad=True)
    hidden = torch.randn(positions, dim, device=device, requires_grad=True)
    positives = torch.randint(1, rows - 1, (positions,), device=device)
    times = []
    for _ in range(repeats):
        negative_ids = torch.randint(1, rows - 1, (positions, negatives), device=device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        if path in ("fused", "native"):
            candidates = torch.cat([positives.unsqueeze(1), negative_ids], dim=1)  # (positions, 1 + negatives)
            loss = bagged_gbce_loss(hidden, table, candidates, None, 0.5)
        else:
            loss = gbce_loss(candidate_logits(hidden, table, positives, negative_ids, path == "dense"), 0.5)
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
    parser.add_argument("--part-pairs", type=int)
    parser.add_argument("--repeats", type=int, default=7, help="timed runs of each path, the first two not counted")
    parser.add_argument("--negatives", type=int, nargs="+", default=[1, 16, 64, 256])
    parser.add_argument("--items", type=int, nargs="+", default=[100, 300, 1_000, 3_416, 10_000, 30_000])
    args = parser.parse_args()
    device = resolve_device(args.device)
    if args.part_pairs:
        scoring.GBCE_PART_PAIRS = args.part_pairs
    retain_freed_memory()
    fused = device.type == "cpu"
    kernel = fused and native.library() is not None
    print("items    negatives  dense_s  sparse_s  dense/sparse  auto" + ("  fused_s  sparse/fused" if fused else "")
          + ("  native_s  fused/native" if kernel else ""))
    for negatives in args.negatives:
        for items in args.items:
            if items + 2 > 200 * (negatives + 1):
                continue
            seconds_of = partial(time_path, positions=args.positions, dim=args.dim, rows=items + 2,
                                 negatives=negatives, device=device, repeats=args.repeats)
            dense, sparse = seconds_of("dense"), seconds_of("sparse")
            auto = "dense" if use_dense_logits(items, negatives, args.positions, device) else "sparse"
            line = f"{items:>7} {negatives:>9} {dense:>8.3f} {sparse:>9.3f} {dense / sparse:>12.2f}  {auto:<6}"
            if fused:
                fused_seconds = seconds_of("fused")
                line += f" {fused_seconds:>8.3f} {sparse / fused_seconds:>13.2f}"
            if kernel:
                native_seconds = seconds_of("native")
                line += f" {native_seconds:>9.3f} {fused_seconds / native_seconds:>13.2f}"
            print(line)


if __name__ == "__main__":
    main()

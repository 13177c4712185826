"""Scores: logits of [positive, negatives] for training; masked top-k lists for prediction."""

from __future__ import annotations

import torch

from gsasrec.items import padding_id

# The dense path computes all num_items + 2 logits per position with one matmul and gathers; the sparse
# path gathers (positions, 1 + negatives, dim) embeddings. On the CPU dense wins while the catalogue is
# below about 150 times 1 + negatives (benchmarks/RESULTS.md, "Logit paths"), as long as its
# (positions, num_items + 2) float32 buffer stays reasonable.
DENSE_LOGITS_RATIO = 128
DENSE_LOGITS_MAX_BYTES = 1 << 30


ROW_BUCKET = 512


def all_logits(hidden: torch.Tensor, table: torch.Tensor,
               bias: torch.Tensor | None = None) -> torch.Tensor:
    """(positions, num_items + 2) = hidden @ table.T (+ bias, one per id).

    The product is computed on a row count rounded up to a multiple of ROW_BUCKET (zero rows, sliced off
    again). The number of non-padding positions differs in every batch, and oneDNN's bfloat16 kernels keep
    a primitive per matrix shape: without buckets, CPU memory grew without bound under --precision bf16
    (benchmarks/RESULTS.md)."""
    rows = hidden.shape[0]
    padded = -(-rows // ROW_BUCKET) * ROW_BUCKET
    if padded != rows:
        hidden = torch.cat([hidden, hidden.new_zeros(padded - rows, hidden.shape[1])])
    logits = (hidden @ table.T)[:rows]
    return logits if bias is None else logits + bias


def use_dense_logits(num_items: int, negs_per_pos: int, positions: int = 0) -> bool:
    rows = num_items + 2
    return rows <= DENSE_LOGITS_RATIO * (negs_per_pos + 1) and positions * rows * 4 <= DENSE_LOGITS_MAX_BYTES


class _GatherRows(torch.autograd.Function):
    """table[ids], with a backward that sums the gradient of repeated ids with index_add_, which adds in
    a fixed order on a CPU. The default backward of indexing (index_put_ with accumulate) adds in an
    order that depends on the threads: two runs with the same seed drifted apart by 1e-6 within 5 steps,
    and a resumed run no longer matched an uninterrupted one. It is also faster (benchmarks/RESULTS.md)."""

    @staticmethod
    def forward(ctx, table: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(ids)
        ctx.table_shape, ctx.table_dtype = table.shape, table.dtype
        return table[ids]

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (ids,) = ctx.saved_tensors
        rows = grad.new_zeros(ctx.table_shape).index_add_(0, ids.flatten(), grad.reshape(-1, *ctx.table_shape[1:]))
        return rows.to(ctx.table_dtype), None


def gather_rows(table: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """(*ids.shape, *table.shape[1:]) = table[ids], with a gradient that is the same in every run."""
    return _GatherRows.apply(table, ids)


def candidate_logits(hidden: torch.Tensor, table: torch.Tensor, positives: torch.Tensor,
                     negatives: torch.Tensor, dense: bool, bias: torch.Tensor | None = None) -> torch.Tensor:
    """(positions, 1 + negatives) logits, column 0 the positive.

    hidden: (positions, dim); table: (num_items + 2, dim); positives: (positions,);
    negatives: (positions, negatives); bias: (num_items + 2,) or None. Both paths give the same values
    and gradients (tested).
    """
    candidates = torch.cat([positives.unsqueeze(1), negatives], dim=1)  # (positions, 1 + negatives)
    if dense:
        logits = all_logits(hidden, table).gather(1, candidates)  # (positions, 1 + negatives)
    else:
        embeddings = gather_rows(table, candidates)  # (positions, 1 + negatives, dim)
        logits = torch.bmm(embeddings, hidden.unsqueeze(-1)).squeeze(-1)
    # The bias is added after the gather: a (positions, 1 + negatives) sum, not a (positions, items) one.
    return logits if bias is None else logits + gather_rows(bias, candidates)


def all_scores(hidden: torch.Tensor, table: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """(batch, rows) float32 scores of hidden against every row of table, plus each row's bias."""
    scores = (hidden @ table.T).float()
    return scores if bias is None else scores + bias


def mask_scores(scores: torch.Tensor, num_items: int, rated: torch.Tensor | None = None) -> torch.Tensor:
    """Set -inf, in place, for ids that are not items (0 and >= padding id) and for rated items.

    scores: (batch, num_items + 2); rated: (batch, width) item ids, padded with the padding id.
    """
    scores[:, 0] = float("-inf")
    scores[:, padding_id(num_items):] = float("-inf")
    if rated is not None:
        scores.scatter_(1, rated, float("-inf"))
    return scores


def top_k(hidden: torch.Tensor, table: torch.Tensor, k: int, num_items: int,
          rated: torch.Tensor | None = None, max_elements: int | None = None,
          bias: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch, k) best item ids and scores of hidden @ table.T + bias, non-items and rated items excluded.

    hidden: (batch, dim); table: (num_items + 2, dim); bias: (num_items + 2,) or None; rated: (batch,
    width) ids padded with the padding id. With max_elements, scores are computed for blocks of items so
    that no (batch, block) matrix has more elements than that, and the blocks' top-k lists are merged: a
    large catalogue never needs a (batch, num_items) matrix.
    """
    rows = table.shape[0]
    block = rows if max_elements is None else max(k, max_elements // max(len(hidden), 1))
    if block >= rows:
        scores = mask_scores(all_scores(hidden, table, bias), num_items, rated)  # (batch, num_items + 2)
        best = torch.topk(scores, k, dim=1)
        return best.indices, best.values
    best_ids = torch.empty(len(hidden), 0, dtype=torch.long, device=hidden.device)
    best_scores = torch.empty(len(hidden), 0, device=hidden.device)
    for start in range(0, rows, block):
        end = min(start + block, rows)
        scores = all_scores(hidden, table[start:end], None if bias is None else bias[start:end])  # (batch, block)
        ids = torch.arange(start, end, device=hidden.device)
        scores[:, (ids == 0) | (ids >= padding_id(num_items))] = float("-inf")
        if rated is not None:
            inside = (rated >= start) & (rated < end)  # (batch, width)
            users = torch.arange(len(hidden), device=hidden.device).unsqueeze(1).expand_as(rated)
            scores[users[inside], rated[inside] - start] = float("-inf")
        block_best = torch.topk(scores, min(k, end - start), dim=1)
        merged_scores = torch.cat([best_scores, block_best.values], dim=1)
        merged_ids = torch.cat([best_ids, block_best.indices + start], dim=1)
        keep = torch.topk(merged_scores, min(k, merged_scores.shape[1]), dim=1)
        best_scores, best_ids = keep.values, merged_ids.gather(1, keep.indices)
    return best_ids, best_scores

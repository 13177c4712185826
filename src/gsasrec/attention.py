"""Causal attention with dropout on its weights, for CPU training: queries in blocks that skip the keys
after them.

Query i attends keys j <= i only, so the scores of the last block of queries need every key but those of
the first block only the first block's keys. Cutting the queries into blocks of QUERY_BLOCK columns and
giving each block just the keys up to its end computes 62.5% of the (width, width) scores of a 200-wide
row (four blocks), and the softmax, the dropout mask and both products shrink with them. Masked scores
are exactly zero after the softmax, so the result is the full computation's up to rounding (tested).
In bfloat16 the queries are one block: torch's bfloat16 products on a CPU copy every operand that is a slice of
a batch (a block's queries, the keys up to its end), which cost more than the skipped scores save (one layer's
forward and backward at ML-1M shapes: 11.8 ms in one block, 12.3 in two, 14.3 in four; float32 products take
slices as they are, and four blocks are fastest there).

The backward is written out: autograd's would add each block's gradient of the keys and values into a
zeroed full-size tensor, a pass over it per block.
"""

from __future__ import annotations

import torch

from gsasrec.dropout import kept_scale

QUERY_BLOCK = 50


def query_blocks(width: int, dtype: torch.dtype) -> list[tuple[int, int]]:
    """(start, end) of each block of query columns, for products in `dtype`."""
    block = width if dtype == torch.bfloat16 else QUERY_BLOCK
    return [(start, min(start + block, width)) for start in range(0, width, block)]


def causal_attention_with_dropout(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, allowed: torch.Tensor,
                                  rate: float) -> torch.Tensor:
    """softmax(q k^T / sqrt(head_dim), masked to `allowed`) with inverted dropout at `rate`, times v.

    q, k, v: (batch, heads, width, head_dim); allowed: (batch, 1, width, width) boolean, causal (nothing
    above the diagonal is allowed) with each diagonal element allowed (model.attention_mask). Returns
    (batch, heads, width, head_dim) in q's dtype."""
    return _BlockedAttention.apply(q, k, v, allowed, rate)


# Added to a score a query may not attend: its weight after the softmax is exactly 0, as with -inf. An
# addition, not masked_fill_: on a CPU masked_fill_ with a mask of mixed values is some 30 times slower than
# an addition (a branch per element), and it was the largest cost of this attention.
FORBIDDEN_SCORE = -1e9


class _BlockedAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, allowed: torch.Tensor,
                rate: float) -> torch.Tensor:
        batch, heads, width, head_dim = q.shape
        q, k, v = (x.reshape(batch * heads, width, head_dim) for x in (q, k, v))
        out = torch.empty_like(q)  # (batch * heads, width, head_dim)
        # Every block's kept weights in one (batch * heads, width, width) matrix, zero right of each block's keys:
        # the backward takes each chunk of keys' gradients from all the blocks in one product (see there).
        kept_all = q.new_empty((batch * heads, width, width))
        saved = []
        for start, end in query_blocks(width, q.dtype):
            queries = end - start
            # 0 where allowed, FORBIDDEN_SCORE elsewhere: (batch * heads, queries, keys)
            penalty = allowed[:, :, start:end, :end].to(q.dtype).sub_(1).mul_(-FORBIDDEN_SCORE)
            penalty = penalty.expand(batch, heads, queries, end).reshape(batch * heads, queries, end)
            # the block's queries against the keys up to its end, scaled, plus the penalty: one product
            scores = torch.baddbmm(penalty, q[:, start:end], k[:, :end].transpose(1, 2), alpha=head_dim ** -0.5)
            weights = torch.softmax(scores, dim=-1)
            mask = kept_scale(weights.shape, rate, weights.dtype) if rate > 0 else None
            kept = kept_all[:, start:end, :end]
            if mask is None:
                kept.copy_(weights)
            else:
                torch.mul(weights, mask, out=kept)
            kept_all[:, start:end, end:] = 0
            out[:, start:end] = torch.bmm(kept, v[:, :end])
            saved.append((weights, mask))
        ctx.save_for_backward(q, k, v, kept_all)
        ctx.blocks, ctx.shape = saved, (batch, heads, width, head_dim)
        return out.view(batch, heads, width, head_dim)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        q, k, v, kept_all = ctx.saved_tensors
        batch, heads, width, head_dim = ctx.shape
        grad = grad.reshape(batch * heads, width, head_dim)
        grad_q = torch.empty_like(q)
        grad_scores_all = torch.empty_like(kept_all)  # (batch * heads, width, width), laid out as kept_all
        for (start, end), (weights, mask) in zip(query_blocks(width, q.dtype), ctx.blocks):
            grad_kept = torch.bmm(grad[:, start:end], v[:, :end].transpose(1, 2))  # (batch * heads, queries, keys)
            grad_weights = grad_kept if mask is None else grad_kept.mul_(mask)
            grad_scores = grad_scores_all[:, start:end, :end]
            torch.mul(torch._softmax_backward_data(grad_weights, weights, -1, weights.dtype), head_dim ** -0.5,
                      out=grad_scores)
            grad_scores_all[:, start:end, end:] = 0
            grad_q[:, start:end] = torch.bmm(grad_scores, k[:, :end])
        # A chunk of keys [start, end) has gradient terms from the queries at start and after (the earlier ones do
        # not attend it) and nothing right of a block's keys: one product over those rows of the whole matrices,
        # instead of a term from each block added into float32 buffers (a zero fill, four additions and a cast a
        # layer, 5 ms of an ML-1M step). The product sums in float32 also under bf16, and rounds once.
        grad_k, grad_v = torch.empty_like(k), torch.empty_like(v)
        for start, end in query_blocks(width, q.dtype):
            grad_v[:, start:end] = torch.bmm(kept_all[:, start:, start:end].transpose(1, 2), grad[:, start:])
            grad_k[:, start:end] = torch.bmm(grad_scores_all[:, start:, start:end].transpose(1, 2), q[:, start:])
        ctx.blocks = None
        shape = batch, heads, width, head_dim
        return grad_q.view(shape), grad_k.view(shape), grad_v.view(shape), None, None

"""Causal attention with dropout on its weights, for CPU training: queries in blocks that skip the keys
after them.

Query i attends keys j <= i only, so the scores of the last block of queries need every key but those of
the first block only the first block's keys. Cutting the queries into blocks of QUERY_BLOCK columns and
giving each block just the keys up to its end computes 62.5% of the (width, width) scores of a 200-wide
row (four blocks), and the softmax, the dropout mask and both products shrink with them. Masked scores
are exactly zero after the softmax, so the result is the full computation's up to rounding (tested).

The backward is written out: autograd's would add each block's gradient of the keys and values into a
zeroed full-size tensor, a pass over it per block.
"""

from __future__ import annotations

import torch

from gsasrec.dropout import kept_scale

QUERY_BLOCK = 50


def query_blocks(width: int) -> list[tuple[int, int]]:
    """(start, end) of each block of query columns."""
    return [(start, min(start + QUERY_BLOCK, width)) for start in range(0, width, QUERY_BLOCK)]


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
        saved = []
        for start, end in query_blocks(width):
            queries = end - start
            # 0 where allowed, FORBIDDEN_SCORE elsewhere: (batch * heads, queries, keys)
            penalty = allowed[:, :, start:end, :end].to(q.dtype).sub_(1).mul_(-FORBIDDEN_SCORE)
            penalty = penalty.expand(batch, heads, queries, end).reshape(batch * heads, queries, end)
            # the block's queries against the keys up to its end, scaled, plus the penalty: one product
            scores = torch.baddbmm(penalty, q[:, start:end], k[:, :end].transpose(1, 2), alpha=head_dim ** -0.5)
            weights = torch.softmax(scores, dim=-1)
            mask = kept_scale(weights.shape, rate, weights.dtype) if rate > 0 else None
            kept = weights if mask is None else weights * mask
            out[:, start:end] = torch.bmm(kept, v[:, :end])
            saved.append((weights, mask, kept))  # kept too: remade, it would cost the backward a pass
        ctx.save_for_backward(q, k, v)
        ctx.blocks, ctx.shape = saved, (batch, heads, width, head_dim)
        return out.view(batch, heads, width, head_dim)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        q, k, v = ctx.saved_tensors
        batch, heads, width, head_dim = ctx.shape
        grad = grad.reshape(batch * heads, width, head_dim)
        grad_q = torch.empty_like(q)
        # Keys and values gather a term from every block after them: added up in float32 (also under bf16).
        grad_k = torch.zeros(q.shape, dtype=torch.promote_types(q.dtype, torch.float32), device=q.device)
        grad_v = torch.zeros_like(grad_k)
        for (start, end), (weights, mask, kept) in zip(query_blocks(width), ctx.blocks):
            block_grad = grad[:, start:end]  # (batch * heads, queries, head_dim)
            grad_v[:, :end] += torch.bmm(kept.transpose(1, 2), block_grad)
            grad_kept = torch.bmm(block_grad, v[:, :end].transpose(1, 2))  # (batch * heads, queries, keys)
            grad_weights = grad_kept if mask is None else grad_kept.mul_(mask)
            grad_scores = torch._softmax_backward_data(grad_weights, weights, -1, weights.dtype)
            grad_scores = grad_scores.mul_(head_dim ** -0.5)
            grad_q[:, start:end] = torch.bmm(grad_scores, k[:, :end])
            grad_k[:, :end] += torch.bmm(grad_scores.transpose(1, 2), q[:, start:end])
        ctx.blocks = None
        shape = batch, heads, width, head_dim
        return grad_q.view(shape), grad_k.to(k.dtype).view(shape), grad_v.to(v.dtype).view(shape), None, None

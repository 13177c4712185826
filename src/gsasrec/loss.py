"""Training losses. gBCE (docs/reference.md, "Training"), the reference's: BCE over [positive, negatives] with the
positive's probability raised to beta. Beyond the reference: softmax cross-entropy over the whole
catalogue, and sampled softmax over [positive, negatives].

The reference reaches the loss through a float64 logit transform with clamps. Here the same value comes
from the closed form -log(sigmoid(s)^beta) = beta * softplus(-s), which is exact and stable in float32,
and has no clamp-induced dead zones (outside them the two agree).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gbce_beta(num_items: int, negs_per_pos: int, t: float) -> float:
    """beta = alpha * ((1 - 1/alpha) * t + 1/alpha), alpha = negs_per_pos / (num_items - 1).

    t = 0 gives beta = 1 (plain BCE, SASRec); t = 1 gives beta = alpha (fully calibrated).
    """
    if num_items < 2:
        raise ValueError(f"gBCE needs num_items >= 2 (alpha divides by num_items - 1), got {num_items}")
    alpha = negs_per_pos / (num_items - 1)
    return alpha * ((1 - 1 / alpha) * t + 1 / alpha)


def initial_logit_offset(config, num_items: int) -> float:
    """The constant logit that minimises the training loss when the model knows nothing.

    For gBCE, beta * softplus(-c) + k * softplus(c) is least at sigmoid(c) / (1 - sigmoid(c)) = beta / k,
    so c = log(beta / k): -6.73 for the seed's ML-1M config (t 0.75, k 256), 0 for SASRec (t 0, k 1).
    The softmax losses are blind to a shared shift, so they start at 0.
    """
    if config.loss != "gbce":
        return 0.0
    return math.log(gbce_beta(num_items, config.negs_per_pos, config.gbce_t) / config.negs_per_pos)


def gbce_loss(logits: torch.Tensor, beta: float, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean gBCE over positions.

    logits: (..., 1 + negatives), column 0 the positive. mask: (...), true where the position counts;
    without it every position counts. Computed in float32, or float64 for float64 logits.
    """
    return gbce_loss_split(logits[..., 0], logits[..., 1:], beta, mask)


def gbce_loss_split(positive: torch.Tensor, negatives: torch.Tensor, beta: float,
                    mask: torch.Tensor | None = None) -> torch.Tensor:
    """gbce_loss with the positive's logits (...) and the negatives' (..., negatives) apart: no
    (..., 1 + negatives) copy is made when they come from two products."""
    count = negatives.shape[-1] + 1
    per_position = gbce_per_position(positive, negatives, beta)  # (...)
    if mask is not None:
        mask = mask.to(per_position.dtype)
        return (per_position * mask).sum() / (mask.sum() * count)
    return per_position.mean() / count


def gbce_per_position(positive: torch.Tensor, negatives: torch.Tensor, beta: float) -> torch.Tensor:
    """Each position's gBCE summed over its candidates (...), in float32 or wider: beta * softplus(-s) for
    the positive's logit (...) and softplus(s) for each negative's (..., negatives)."""
    dtype = torch.promote_types(positive.dtype, torch.float32)
    return beta * F.softplus(-positive.to(dtype)) + F.softplus(negatives.to(dtype)).sum(-1)


def gbce_logit_gradient(logits: torch.Tensor, beta: float, count: int | None = None) -> torch.Tensor:
    """The gradient of gbce_loss(logits, beta) (no mask) with respect to logits (positions, 1 + negatives),
    computed in place over `logits`, which it returns: -beta * sigmoid(-s) for the positive and sigmoid(s)
    for each negative, divided by count, the number of logits the mean is over (these logits' own by
    default; a larger one when they are a part of the batch's)."""
    positive = logits[:, 0].neg()  # (positions,)
    gradient = logits.sigmoid_()
    gradient[:, 0] = positive.sigmoid_().mul_(-beta)
    return gradient.div_(logits.numel() if count is None else count)


def full_ce_loss(all_logits: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """Mean softmax cross-entropy over the catalogue. all_logits: (positions, num_items + 2), whose
    first and last columns (id 0 and the padding id) are not items; positives: (positions,)."""
    items = all_logits[:, 1:-1].float()  # (positions, num_items): column j is item j + 1
    return F.cross_entropy(items, positives - 1)


def sampled_ce_loss(logits: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """Mean softmax cross-entropy over [positive, negatives] (column 0 the positive). A negative that
    is the positive itself is left out, so the target never competes with a copy of itself.

    logits, candidates: (positions, 1 + negatives).
    """
    logits = logits.float()
    same = candidates[:, 1:] == candidates[:, :1]  # (positions, negatives)
    logits = torch.cat([logits[:, :1], logits[:, 1:].masked_fill(same, float("-inf"))], dim=1)
    return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long, device=logits.device))

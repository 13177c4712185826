"""Dropout for CPU training: masks made from random bits by vectorised arithmetic.

On a CPU each mask element is 16 random bits (8 where they give the rate exactly) compared with a threshold:
the bits come 64 at a time from random_() (drawn by native_random.c where it is built: mersenne.py), about 8x
faster than the uniform_() floats (and 15x faster than the bernoulli_() inside F.dropout) that masks took before,
a sixth of a CPU training step. The keep probability is 1 - rate rounded to a multiple of 2^-16. Masks come
from torch's global CPU generator (seeded and saved with a run, so resumed runs draw the same masks).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gsasrec import mersenne


def dropout(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Inverted dropout: each element zeroed with probability `rate`, the others scaled by 1 / (1 - rate)."""
    if not training or rate == 0.0:
        return x
    if x.device.type != "cpu" or torch.compiler.is_compiling():  # dynamo does not trace random_'s full range
        return F.dropout(x, rate, training=True)
    return x * kept_scale(x.shape, rate, x.dtype)


def kept_scale(shape: torch.Size | tuple[int, ...], rate: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(shape) of `dtype`: 1 / (1 - rate) where an element is kept (with probability 1 - rate, to 2^-16),
    0 where it is dropped. Multiplying by it is dropout."""
    count = math.prod(shape)
    # 8 random bits an element where they give the rate exactly (0.5, 0.25, ...), else 16: the bits are most
    # of a mask's cost.
    bits = 8 if (rate * 256).is_integer() else 16
    threshold = round(rate * 2**bits) - 2 ** (bits - 1)  # kept where draws >= threshold
    scale = 1.0 / (1.0 - rate)
    mask = mersenne.random_mask(count, bits, threshold, scale, dtype)  # the same mask in one pass, where it can
    if mask is not None:
        return mask.view(shape)
    per_word = 64 // bits
    words = mersenne.random_words((count + per_word - 1) // per_word)
    draws = words.view(torch.int8 if bits == 8 else torch.int16)[:count].view(shape)  # uniform, signed
    # draws - threshold + 1 is at least 1 where kept and at most 0 where dropped; scaled and clamped to [0, scale]
    # it is the mask itself. Vectorised arithmetic: on a CPU a comparison to bool, the bool's conversion to float
    # and masked_fill_ each cost 4-30 times a float multiplication (benchmarks/RESULTS.md). float32 holds every
    # int16 exactly (bfloat16 does not), so the rounding to `dtype` comes last.
    mask = draws.to(torch.float32).sub_(threshold - 1).mul_(scale).clamp_(0, scale)
    return mask.to(dtype)


class Dropout(nn.Module):
    def __init__(self, rate: float):
        super().__init__()
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.rate, self.training)

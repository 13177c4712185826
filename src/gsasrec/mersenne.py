"""Torch's CPU random numbers, drawn by native_random.c: the same numbers at the same places of the stream.

torch steps its CPU generator (a Mersenne Twister) one number at a time under a lock: an ML-1M batch's 3.5 million
negatives took 7 ms of a bf16 step and its dropout masks (the bits, then torch's arithmetic on them) 7-10 ms more.
The kernel steps it a block of 624 words at a time on vectors, and makes a mask in the same pass (1.7 and 2.5 ms;
benchmarks/draw_paths.py). The functions below leave the generator where torch's own draw would, so a run's
numbers, its checkpoints' generator states and a resumed run are the same with the kernel or without
(tests/test_mersenne.py). Where the kernel is switched off or missing, the generator is not a CPU one, or a
first-use check finds that this torch draws differently, torch draws.
"""

from __future__ import annotations

import functools

import torch

from gsasrec import native

# torch maps a 32-bit output to a range by its remainder only for ranges below some bound (2^28 in torch 2.13:
# wider ones take 64 bits). Below this one every version the first-use check passes on agrees.
LARGEST_RANGE = 2**24


def random_(view: torch.Tensor, low: int, high: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """view.random_(low, high, generator=generator), in place: for a (rows, cols) int64 view whose rows are
    contiguous (as a matrix's columns 1: are), drawn in row order. generator None: torch's global one."""
    generator = generator if generator is not None else torch.default_generator
    lib = _checked_library(generator) if _fits(view, high - low) else None
    if lib is None:
        return view.random_(low, high, generator=generator)
    rows, cols = view.shape
    _step(generator, lib.gsasrec_random_ints, view.data_ptr(), rows, cols, view.stride(0), low, high - low)
    return view


def random_words(count: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(count,) int64 over the whole 64-bit range: torch.empty(count, dtype=torch.int64).random_(-(2**63), None,
    generator=generator). generator None: torch's global one."""
    generator = generator if generator is not None else torch.default_generator
    words = torch.empty(count, dtype=torch.int64)
    lib = _checked_library(generator)
    if lib is None:
        return words.random_(-(2**63), None, generator=generator)
    _step(generator, lib.gsasrec_random_words, words.data_ptr(), count)
    return words


def random_mask(count: int, bits: int, threshold: int, scale: float, dtype: torch.dtype,
                generator: torch.Generator | None = None) -> torch.Tensor | None:
    """(count,) of `dtype` (float32 or bfloat16): dropout.kept_scale's mask from the same draws, in one pass.
    Each element's `bits` (8 or 16) bits of random_words(ceil(count * bits / 64)), read as a signed integer in
    memory order, give `scale` (rounded to dtype) where they are at least `threshold` and 0 elsewhere. None where
    the kernel cannot draw it (kept_scale then computes it with torch)."""
    generator = generator if generator is not None else torch.default_generator
    lib = _checked_library(generator)
    if lib is None or dtype not in (torch.float32, torch.bfloat16):
        return None
    mask = torch.empty(count, dtype=dtype)
    _step(generator, lib.gsasrec_random_mask, mask.data_ptr(), count, bits, threshold, scale,
          int(dtype == torch.bfloat16))
    return mask


def _step(generator: torch.Generator, draw, *arguments) -> None:
    """Runs draw(address of the generator's state bytes, *arguments), a kernel function that steps that state in
    place, and hands the stepped state back to the generator."""
    state = generator.get_state()
    if draw(state.data_ptr(), *arguments):
        raise ValueError("native_random.c refused the draw (a range or a mask width it does not take)")
    generator.set_state(state)


def _fits(view: torch.Tensor, range_: int) -> bool:
    return (view.device.type == "cpu" and view.dtype == torch.int64
            and view.dim() == 2 and (view.stride(1) == 1 or view.shape[1] <= 1)
            and (view.stride(0) >= view.shape[1] or view.shape[0] <= 1)  # rows that do not overlap
            and 0 < range_ <= LARGEST_RANGE)


def _checked_library(generator: torch.Generator):
    """The kernel library, where it is built, draws as this torch does, and the generator is a CPU one."""
    lib = native.library() if generator.device.type == "cpu" else None
    return lib if lib is not None and _draws_as_torch(lib) else None


@functools.cache
def _draws_as_torch(lib) -> bool:
    """Whether the kernel gives this torch's numbers and leaves its generator's state as torch does: checked once,
    on draws that cross blocks of the stream."""
    for seed, shape, range_ in ((0, (3, 700), 3416), (7, (41, 61), 2**24), (11, (2, 5), 1)):
        ours, theirs = (torch.Generator().manual_seed(seed) for _ in range(2))
        mine, expected = torch.empty(shape, dtype=torch.int64), torch.empty(shape, dtype=torch.int64)
        _step(ours, lib.gsasrec_random_ints, mine.data_ptr(), *shape, shape[1], 1, range_)
        expected.random_(1, 1 + range_, generator=theirs)
        words, expected_words = torch.empty(1000, dtype=torch.int64), torch.empty(1000, dtype=torch.int64)
        _step(ours, lib.gsasrec_random_words, words.data_ptr(), len(words))
        expected_words.random_(-(2**63), None, generator=theirs)
        if not (torch.equal(mine, expected) and torch.equal(words, expected_words)
                and torch.equal(ours.get_state(), theirs.get_state())):
            return False
    return True

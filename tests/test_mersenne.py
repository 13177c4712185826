"""Torch's CPU random numbers drawn by native_random.c (gsasrec.mersenne): the very numbers torch's random_ gives,
and the generator left where torch leaves it, so that a run, its saved generator states and a resumed run are
the same with the kernel or without."""

from __future__ import annotations

import pytest
import torch

from gsasrec import mersenne, native
from gsasrec.batches import sample_candidates, sample_negatives
from gsasrec.dropout import kept_scale

needs_kernel = pytest.mark.skipif(native.library() is None, reason="no C compiler here: the kernel cannot be built")


def advanced(seed: int, draws: int) -> torch.Generator:
    """A generator `draws` 32-bit outputs into its stream (anywhere in a block of 624)."""
    generator = torch.Generator().manual_seed(seed)
    if draws:
        torch.empty(draws, dtype=torch.int64).random_(0, 100, generator=generator)
    return generator


@needs_kernel
def test_the_kernel_draws_as_this_torch_does():
    assert mersenne._checked_library(torch.default_generator) is not None


@needs_kernel
@pytest.mark.parametrize("already", [0, 1, 622, 623, 624, 1000])
@pytest.mark.parametrize("shape, low, high", [((1, 1), 1, 2), ((3, 5), 1, 3417), ((2, 623), 0, 7),
                                               ((5, 625), 10, 10 + 2**24), ((40, 257), 1, 1_000_001)])
def test_ints_are_torchs_and_leave_the_generator_as_torch(already, shape, low, high):
    ours, theirs = advanced(3, already), advanced(3, already)
    drawn = torch.full((shape[0], shape[1] + 1), -1, dtype=torch.int64)
    expected = drawn.clone()
    mersenne.random_(drawn[:, 1:], low, high, ours)  # rows of a wider matrix, as sample_candidates draws
    expected[:, 1:].random_(low, high, generator=theirs)
    assert torch.equal(drawn, expected)
    assert torch.equal(ours.get_state(), theirs.get_state())
    # and torch's own draws go on from the same place
    assert torch.equal(torch.rand(700, generator=ours), torch.rand(700, generator=theirs))


@needs_kernel
@pytest.mark.parametrize("already, count", [(0, 1), (5, 311), (623, 312), (1, 5000)])
def test_words_are_torchs_full_range_draws(already, count):
    ours, theirs = advanced(9, already), advanced(9, already)
    expected = torch.empty(count, dtype=torch.int64).random_(-(2**63), None, generator=theirs)
    assert torch.equal(mersenne.random_words(count, ours), expected)
    assert torch.equal(ours.get_state(), theirs.get_state())


@needs_kernel
def test_the_global_generator_is_the_default():
    with torch.random.fork_rng():
        torch.manual_seed(21)
        ours = mersenne.random_words(1001)
        after_ours = torch.random.get_rng_state()
        torch.manual_seed(21)
        expected = torch.empty(1001, dtype=torch.int64).random_(-(2**63), None)
        assert torch.equal(ours, expected)
        assert torch.equal(after_ours, torch.random.get_rng_state())


@pytest.mark.parametrize("switch", ["0", "1"])
def test_what_the_kernel_does_not_serve_is_torchs_draw(monkeypatch, switch):
    """The same numbers whoever draws: the switch off, a range above LARGEST_RANGE, columns not contiguous, int32."""
    monkeypatch.setenv(native.ENVIRONMENT_SWITCH, switch)
    cases = [(torch.empty(4, 300, dtype=torch.int64), 0, 2**24 + 5),
             (torch.empty(300, 4, dtype=torch.int64).t(), 1, 50),
             (torch.empty(4, 300, dtype=torch.int32), 1, 50),
             (torch.empty(4, 300, dtype=torch.int64), 1, 50)]
    for view, low, high in cases:
        ours, theirs = advanced(1, 7), advanced(1, 7)
        expected = view.clone().random_(low, high, generator=theirs)
        assert torch.equal(mersenne.random_(view, low, high, ours), expected)
        assert torch.equal(ours.get_state(), theirs.get_state())


def test_rows_that_overlap_are_left_to_torch_which_refuses_them():
    expanded = torch.empty(1, 300, dtype=torch.int64).expand(4, 300)  # every row the same memory
    with pytest.raises(RuntimeError):
        mersenne.random_(expanded, 1, 50, torch.Generator().manual_seed(0))


def test_negatives_are_torch_randints():
    drawn = sample_negatives(300, 17, 50, torch.Generator().manual_seed(4), torch.device("cpu"))
    assert torch.equal(drawn, torch.randint(1, 51, (300, 17), generator=torch.Generator().manual_seed(4)))
    candidates = sample_candidates(torch.arange(300), 17, 50, torch.Generator().manual_seed(4))
    assert torch.equal(candidates[:, 1:], drawn)


@pytest.mark.parametrize("shape", [(1,), (7, 33, 20), (3, 1000, 5)])  # within one chunk of words, over several
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("rate", [0.5, 0.2, 0.3])  # 8 bits an element; 16 bits; a scale bfloat16 rounds
def test_dropout_masks_are_the_same_with_the_kernel_or_without(monkeypatch, rate, dtype, shape):
    masks = {}
    for switch in ("0", "1"):
        monkeypatch.setenv(native.ENVIRONMENT_SWITCH, switch)
        with torch.random.fork_rng():
            torch.manual_seed(5)
            masks[switch] = (kept_scale(shape, rate, dtype), torch.random.get_rng_state())
    assert masks["1"][0].dtype == dtype and masks["1"][0].shape == shape
    assert torch.equal(masks["0"][0], masks["1"][0])
    assert torch.equal(masks["0"][1], masks["1"][1])
    assert 0 < masks["1"][0].count_nonzero() < masks["1"][0].numel() or shape == (1,)

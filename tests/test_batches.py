"""Training windows: the reference's last window, and random windows over the whole history."""

import numpy as np
import torch

from gsasrec.batches import TrainingBatches, sample_candidates, sample_negatives
from gsasrec.data.folder import Sequences

PADDING = 0
LENGTHS = [3, 5, 6, 12, 30]
WIDTH = 6  # sequence_length + 1


def histories():
    start = 1
    sequences = []
    for length in LENGTHS:
        sequences.append(list(range(start, start + length)))
        start += length
    return Sequences.from_lists(sequences)


def windows(random_windows, draws=1, seed=0):
    """(draws, users, WIDTH) rows of the whole batch: inputs plus the last label."""
    batches = TrainingBatches(histories(), WIDTH - 1, PADDING, len(LENGTHS), torch.device("cpu"), random_windows,
                              pack=False)
    generator = torch.Generator().manual_seed(seed)
    order = torch.arange(len(LENGTHS))
    rows = []
    for _ in range(draws):
        inputs, labels, _, _ = batches.batch(order, 0, generator=generator)
        assert torch.equal(inputs[:, 1:], labels[:, :-1])
        rows.append(torch.cat([inputs, labels[:, -1:]], dim=1))
    return torch.stack(rows).numpy()


def test_default_window_is_each_users_last_items():
    rows = windows(random_windows=False)[0]
    for user, history in enumerate(histories()):
        tail = history[-WIDTH:]
        assert list(rows[user][WIDTH - len(tail):]) == list(tail)
        assert (rows[user][:WIDTH - len(tail)] == PADDING).all()


def test_random_windows_are_consecutive_and_reach_every_end_uniformly():
    draws = 4000
    rows = windows(random_windows=True, draws=draws)
    last = windows(random_windows=False)[0]
    for user, history in enumerate(histories()):
        if len(history) <= WIDTH:  # nothing older to reach: the last window every time
            assert (rows[:, user] == last[user]).all()
            continue
        starts = rows[:, user, 0] - history[0]  # (draws,) where each window begins in the history
        assert (rows[:, user] == history[starts[:, None] + np.arange(WIDTH)]).all()
        counts = np.bincount(starts, minlength=len(history) - WIDTH + 1)
        assert len(counts) == len(history) - WIDTH + 1 and counts.min() > 0
        expected = draws / len(counts)
        assert np.abs(counts - expected).max() < 5 * np.sqrt(expected)


def test_random_windows_are_drawn_for_the_global_batch_whatever_the_rank():
    batches = TrainingBatches(histories(), WIDTH - 1, PADDING, len(LENGTHS), torch.device("cpu"), True, pack=False)
    order = torch.randperm(len(LENGTHS), generator=torch.Generator().manual_seed(3))
    whole = batches.batch(order, 0, generator=torch.Generator().manual_seed(9)).inputs
    shares = [batches.batch(order, 0, part, 2, generator=torch.Generator().manual_seed(9))[0] for part in (0, 1)]
    assert torch.equal(torch.cat(shares), whole)


def test_candidates_hold_each_positive_and_the_negatives_sample_negatives_draws():
    # Drawn into one matrix instead of joined afterwards, the same numbers from the same generator state:
    # training losses stay what they were to the bit.
    positives = torch.randint(1, 51, (300,))
    drawn = sample_candidates(positives, 17, 50, torch.Generator().manual_seed(4))
    expected = sample_negatives(300, 17, 50, torch.Generator().manual_seed(4), torch.device("cpu"))
    assert torch.equal(drawn[:, 0], positives) and torch.equal(drawn[:, 1:], expected)
    assert drawn.dtype == torch.int64 and drawn[:, 1:].min() >= 1 and drawn[:, 1:].max() <= 50

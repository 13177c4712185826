"""Sequences as padded tensors on the model's device; shuffled training batches; uniform negatives.

Everything on the hot path is whole-tensor work on the device: no DataLoader, no per-row Python.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from gsasrec.data.folder import Sequences


def left_padded(sequences: Sequences, width: int, padding: int) -> np.ndarray:
    """(count, width) int64: the last `width` items of each sequence, right-aligned, padded on the left."""
    starts, ends = sequences.offsets[:-1], sequences.offsets[1:]
    positions = ends[:, None] - width + np.arange(width)[None, :]  # (count, width) indices into items
    inside = positions >= starts[:, None]
    if len(sequences.items) == 0:
        return np.full(positions.shape, padding, dtype=np.int64)
    gathered = sequences.items[np.clip(positions, 0, len(sequences.items) - 1)]
    return np.where(inside, gathered, padding).astype(np.int64)


def trimmed_inputs(histories: Sequences, sequence_length: int, padding: int) -> np.ndarray:
    """(count, width) model inputs cut to the longest history: width = that length, clipped to
    1..sequence_length. GSASRec.forward gives the same result at every real position as at full width."""
    width = int(min(max(histories.lengths.max(initial=0), 1), sequence_length))
    return left_padded(histories, width, padding)


def all_items(histories: Sequences, padding: int) -> np.ndarray:
    """(count, longest) every item of each whole history, padded: what rated-item filtering excludes."""
    return left_padded(histories, int(max(histories.lengths.max(initial=0), 1)), padding)


def sample_negatives(count: int, negs_per_pos: int, num_items: int,
                     generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """(count, negs_per_pos) ids drawn uniformly from 1..num_items with replacement (as the reference:
    a negative may hit the positive or the history)."""
    return torch.randint(1, num_items + 1, (count, negs_per_pos), generator=generator, device=device)


class TrainingBatches:
    """Each user's training window of sequence_length + 1 consecutive items, batched on the device.

    The window is the last one (as the reference), or with random_windows a fresh random one per batch
    for users whose history is longer (their older items would otherwise never be trained on).
    A batch row gives inputs = all but the last column and labels = all but the first
    (next-item prediction at every position).
    """

    def __init__(self, train: Sequences, sequence_length: int, padding: int, batch_size: int,
                 device: torch.device, random_windows: bool = False):
        self.width = sequence_length + 1
        self.batch_size = batch_size
        self.random_windows = random_windows
        # The histories stay flat on the device; a padding id at index 0 stands for every position
        # before a history's start.
        self.items = torch.from_numpy(np.concatenate([[padding], train.items])).to(device)
        self.starts = torch.from_numpy(train.offsets[:-1] + 1).to(device)
        self.lengths = torch.from_numpy(train.lengths).to(device)

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)

    def shuffle(self, generator: torch.Generator) -> torch.Tensor:
        """A new order of all users (the same on every rank, given the same generator state)."""
        return torch.randperm(len(self.lengths), generator=generator, device=generator.device).to(self.lengths.device)

    def batch(self, order: torch.Tensor, index: int, part: int = 0, parts: int = 1,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, labels) of global batch `index` of `order`; with parts > 1, this rank's share.
        With random_windows, `generator` draws the windows (for the whole global batch, so that every
        rank draws alike and a resumed run draws what the interrupted one would have)."""
        users = order[index * self.batch_size:(index + 1) * self.batch_size]
        ends = self.random_ends(users, generator) if self.random_windows else self.lengths[users]
        rows = self.windows(users, ends).tensor_split(parts)[part]  # (batch / parts, sequence_length + 1)
        return rows[:, :-1], rows[:, 1:]

    def random_ends(self, users: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(batch,) window ends (exclusive), uniform among those that fill the whole width (the
        history's end for a history no longer than the width)."""
        lengths = self.lengths[users]  # (batch,)
        shortest_end = lengths.clamp(max=self.width)
        choices = lengths - shortest_end + 1  # how many window ends each user has
        draws = torch.rand(len(users), generator=generator, device=generator.device).to(lengths.device)
        return shortest_end + (draws * choices).long().clamp(max=choices - 1)

    def windows(self, users: torch.Tensor, ends: torch.Tensor) -> torch.Tensor:
        """(batch, width) the `width` items of each user's history before `ends`, padded on the left."""
        positions = ends[:, None] - self.width + torch.arange(self.width, device=ends.device)  # (batch, width)
        return self.items[torch.where(positions >= 0, self.starts[users][:, None] + positions, 0)]

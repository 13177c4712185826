"""Sequences as padded tensors on the model's device; shuffled training batches; uniform negatives.

Everything on the hot path is whole-tensor work on the device: no DataLoader, no per-row Python.
"""

from __future__ import annotations

import math
from typing import Iterator

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
    """Each user's last sequence_length + 1 training items, held as one tensor on the device.

    A batch row gives inputs = all but the last column and labels = all but the first
    (next-item prediction at every position).
    """

    def __init__(self, train: Sequences, sequence_length: int, padding: int, batch_size: int,
                 device: torch.device):
        self.rows = torch.from_numpy(left_padded(train, sequence_length + 1, padding)).to(device)
        self.batch_size = batch_size
        self.padding = padding

    def __len__(self) -> int:
        return math.ceil(len(self.rows) / self.batch_size)

    def shuffle(self, generator: torch.Generator) -> torch.Tensor:
        """A new order of all users (the same on every rank, given the same generator state)."""
        return torch.randperm(len(self.rows), generator=generator, device=generator.device).to(self.rows.device)

    def batch(self, order: torch.Tensor, index: int, part: int = 0, parts: int = 1
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, labels) of global batch `index` of `order`; with parts > 1, this rank's share."""
        users = order[index * self.batch_size:(index + 1) * self.batch_size]
        rows = self.rows[users.tensor_split(parts)[part]]  # (batch / parts, sequence_length + 1)
        return rows[:, :-1], rows[:, 1:]

    def epoch(self, max_batches: int, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Shuffled (inputs, labels) batches, at most max_batches of them."""
        order = self.shuffle(generator)
        for index in range(min(len(self), max_batches)):
            yield self.batch(order, index)

"""Sequences as padded tensors on the model's device; shuffled training batches; uniform negatives.

Everything on the hot path is whole-tensor work on the device: no DataLoader, no per-row Python.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from gsasrec import mersenne
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
    """(count, width) every item of each whole history, padded: what rated-item filtering excludes.

    Width is the longest history, except when that is longer than the catalogue (padding - 1 items):
    then each history's distinct items, at most the catalogue's size. One user with 100,000 events
    would otherwise widen the whole batch to 100,000 columns (several GB through the masking)."""
    longest = int(max(histories.lengths.max(initial=0), 1))
    if longest > padding - 1:
        histories = distinct_items(histories, padding)
        longest = int(max(histories.lengths.max(initial=0), 1))
    return left_padded(histories, longest, padding)


def distinct_items(histories: Sequences, padding: int) -> Sequences:
    """Each history's distinct items (in id order: only the set matters for exclusion)."""
    rows = np.repeat(np.arange(len(histories)), histories.lengths)  # (total,) the row of each item
    pairs = np.unique(rows * padding + histories.items)  # sorted by row, then item
    counts = np.bincount(pairs // padding, minlength=len(histories))
    return Sequences(items=pairs % padding, offsets=np.concatenate([[0], np.cumsum(counts)]))


def sample_negatives(count: int, negs_per_pos: int, num_items: int,
                     generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """(count, negs_per_pos) ids drawn uniformly from 1..num_items with replacement (as the reference:
    a negative may hit the positive or the history)."""
    negatives = torch.empty((count, negs_per_pos), dtype=torch.int64, device=device)
    return mersenne.random_(negatives, 1, num_items + 1, generator)  # what torch.randint draws


def sample_candidates(positives: torch.Tensor, negs_per_pos: int, num_items: int,
                      generator: torch.Generator) -> torch.Tensor:
    """(count, 1 + negs_per_pos): each positive, then negatives drawn into the same matrix, the numbers
    sample_negatives draws from the same generator state (tested), without a joined copy."""
    candidates = torch.empty((len(positives), 1 + negs_per_pos), dtype=torch.int64, device=positives.device)
    candidates[:, 0] = positives
    mersenne.random_(candidates[:, 1:], 1, num_items + 1, generator)  # what torch.randint draws
    return candidates


class Batch(NamedTuple):
    """One training batch. inputs and labels: (rows, sequence_length), padded with the padding id.

    Unpacked (positions and segments None): one user per row, right-aligned. Packed: several users per
    row, each a run of consecutive columns (a segment); positions (rows, sequence_length) holds each
    column's position-embedding index (what that item would have in the user's own right-aligned row) and
    segments (rows, sequence_length) which user of the row it belongs to (-1 on padding)."""

    inputs: torch.Tensor
    labels: torch.Tensor
    positions: torch.Tensor | None = None
    segments: torch.Tensor | None = None


def pack_lengths(lengths: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray, int]:
    """First-fit decreasing: (row, offset) of each segment of these lengths (each <= width) in rows of
    `width` columns, and the number of rows. Deterministic: ties keep their order."""
    order = np.argsort(-lengths, kind="stable")
    row_of, offset_of = np.empty(len(lengths), np.int64), np.empty(len(lengths), np.int64)
    free: list[int] = []  # columns still free in each row
    for index in order:
        length = int(lengths[index])
        row = next((r for r, room in enumerate(free) if room >= length), len(free))
        if row == len(free):
            free.append(width)
        row_of[index], offset_of[index] = row, width - free[row]
        free[row] -= length
    return row_of, offset_of, len(free)


class TrainingBatches:
    """Each user's training window of sequence_length + 1 consecutive items, batched on the device.

    The window is the last one (as the reference), or with random_windows a fresh random one per batch
    for users whose history is longer (their older items would otherwise never be trained on).
    A batch row gives inputs = all but the last column and labels = all but the first
    (next-item prediction at every position).

    With pack (the default), the windows are packed several to a row (Batch): a user whose window holds n
    items contributes n - 1 positions, and the rows hold no more padding than the packing leaves. The
    model then computes each user's positions as in a row of their own (tests/test_packing.py): on ML-1M
    about half of an unpacked batch is padding, on logs of short sessions nearly all of it.
    """

    def __init__(self, train: Sequences, sequence_length: int, padding: int, batch_size: int,
                 device: torch.device, random_windows: bool = False, pack: bool = True):
        self.width = sequence_length + 1
        self.batch_size = batch_size
        self.random_windows = random_windows
        self.pack = pack
        self.padding = padding
        # How many inputs each user's window has (the window's length less one): the same for every
        # window of a user, so known before the window is drawn. Kept on the host for the packing.
        # (An imported log can leave a user's training line empty: no inputs, not -1 of them.)
        self.segment_lengths = np.maximum(np.minimum(train.lengths, self.width) - 1, 0)
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
              generator: torch.Generator | None = None) -> Batch:
        """Global batch `index` of `order`; with parts > 1, this rank's share of its users.
        With random_windows, `generator` draws the windows (for the whole global batch, so that every
        rank draws alike and a resumed run draws what the interrupted one would have)."""
        users = order[index * self.batch_size:(index + 1) * self.batch_size]
        ends = self.random_ends(users, generator) if self.random_windows else self.lengths[users]
        users, ends = users.tensor_split(parts)[part], ends.tensor_split(parts)[part]
        if self.pack:
            return self.packed(users, ends)
        rows = self.windows(users, ends)  # (batch / parts, sequence_length + 1)
        return Batch(rows[:, :-1], rows[:, 1:])

    def packed(self, users: torch.Tensor, ends: torch.Tensor) -> Batch:
        """The windows of `users` packed into as few rows of sequence_length columns as first-fit finds."""
        device, length = users.device, self.width - 1
        counts = self.segment_lengths[users.cpu().numpy()]  # (users,) inputs per user
        row_of, offset_of, rows = pack_lengths(counts, length)
        # One entry per input position: its user (index in this batch) and place in the user's window.
        owner = np.repeat(np.arange(len(counts)), counts)  # (positions,)
        within = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)  # (positions,)
        cells = torch.from_numpy(row_of[owner] * length + offset_of[owner] + within).to(device)
        owner, within = torch.from_numpy(owner).to(device), torch.from_numpy(within).to(device)
        counts_on_device = torch.from_numpy(counts).to(device)
        # Flat index of each input item: the window of a user starts counts + 1 items before its end.
        first = self.starts[users] + ends - counts_on_device - 1  # (users,)
        source = first[owner] + within  # (positions,)
        inputs = torch.full((rows * length,), self.padding, dtype=self.items.dtype, device=device)
        labels, positions = inputs.clone(), torch.zeros_like(inputs)
        segments = torch.full_like(inputs, -1)
        inputs[cells], labels[cells] = self.items[source], self.items[source + 1]
        # Position of an input = its column in the user's own right-aligned row.
        positions[cells] = length - counts_on_device[owner] + within
        segments[cells] = owner
        return Batch(*(t.view(rows, length) for t in (inputs, labels, positions, segments)))

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

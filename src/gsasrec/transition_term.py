"""An item-to-item term added to the model's scores: for each candidate, w1 * log(1 + n1) + w2 * log(1 + n2),
where n1 counts how often it followed the history's last item in the training sequences, and n2 how
often it followed the history's last two items.

Why: on a log where what comes next is tied to the items before it by an arbitrary pairing (which refill
goes with which product), the pairs seen in training are most of the signal, and each is seen only a few
times. Tables of counts hold every one of them exactly from the start; the network learns them slowly
and, in a short budget, incompletely (benchmarks/RESULTS.md, "The transition term"). The weights are
chosen on the validation users after training, 0 among the choices: where the counts add nothing, the
model's scores stay as they are. The first-order counts are the transition baseline's (baselines.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gsasrec.data.folder import Sequences, offsets_of
from gsasrec.errors import GSASRecError
from gsasrec.items import embedding_rows

ORDERS = (1, 2)  # contexts of the last item, and of the last two
# The weights tried for each order on the validation users (evaluation.choose_transition_weights): a
# log-count of 0.7-3 for a context seen once to a dozen times, against logits that span about 10-20
# between the best item and the hundredth.
WEIGHTS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


@dataclass
class FollowerCounts:
    """What followed each context of `order` consecutive items in the training sequences: context
    contexts[j] (sorted; the items as digits base num_items + 2) was followed by followed[j], counts[j] times."""

    order: int
    rows: int  # num_items + 2: the base of the contexts' digits
    contexts: np.ndarray  # (entries,) int64, sorted
    followed: np.ndarray  # (entries,) int64
    counts: np.ndarray  # (entries,) float32

    @classmethod
    def of(cls, train: Sequences, num_items: int, order: int = 1) -> FollowerCounts:
        rows = embedding_rows(num_items)
        position = np.arange(len(train.items)) - np.repeat(train.offsets[:-1], train.lengths)  # (events,)
        after = np.flatnonzero(position >= order)  # (n,) each event that has `order` items before it
        context = context_keys(train.items, after, order, rows)
        keys, counts = np.unique(context * rows + train.items[after], return_counts=True)
        contexts, followed = np.divmod(keys, rows)
        return cls(order, rows, contexts, followed, counts.astype(np.float32))

    def after(self, histories: Sequences) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(users, items, counts), one entry per (history, item that followed its context). A history
        shorter than the order has none."""
        long_enough = histories.lengths >= self.order
        context = context_keys(histories.items, histories.offsets[1:][long_enough], self.order, self.rows)
        users = np.flatnonzero(long_enough)
        begin = np.searchsorted(self.contexts, context, "left")
        sizes = np.searchsorted(self.contexts, context, "right") - begin  # (users with a context,)
        entries = np.arange(sizes.sum()) + np.repeat(begin - offsets_of(sizes)[:-1], sizes)  # (entries,)
        return np.repeat(users, sizes), self.followed[entries], self.counts[entries]


def context_keys(items: np.ndarray, after: np.ndarray, order: int, rows: int) -> np.ndarray:
    """(n,) int64: the `order` items before each index of `after`, as the digits base `rows` of one key."""
    keys = np.zeros(len(after), dtype=np.int64)
    for back in range(order, 0, -1):
        keys = keys * rows + items[after - back]
    return keys


@dataclass
class TransitionTerm:
    """sum over orders of weights[o] * log(1 + counts) added to the scores of what followed a history's
    last `order` items."""

    weights: tuple[float, ...]  # one per order of ORDERS
    counts: list[FollowerCounts]

    @property
    def active(self) -> bool:
        """Whether it changes any score (a weight other than 0)."""
        return any(self.weights)

    def describe(self) -> str:
        return " + ".join(f"{w:g} x log(1 + n{c.order})" for w, c in zip(self.weights, self.counts) if w)

    @classmethod
    def count(cls, train: Sequences, num_items: int) -> TransitionTerm:
        """The training sequences' counts, with weights of 0 (chosen later). An order whose keys (order + 1
        digits base num_items + 2) would overflow int64 is left out: the second order past 2 million items."""
        orders = [order for order in ORDERS if embedding_rows(num_items) ** (order + 1) < 2 ** 63]
        return cls((0.0,) * len(orders), [FollowerCounts.of(train, num_items, order) for order in orders])

    def entries(self, histories: Sequences) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(users, items, logs): one entry per (history, item) that followed any of the history's contexts,
        and logs (orders, entries) its log(1 + count) for each order, 0 where that order's context was
        never followed by it. One entry per pair, so that each score gets a single addition: an
        index_put_ that adds up repeated indices may add them in any order, and a last-bit difference
        could swap two items."""
        found = [counts.after(histories) for counts in self.counts]
        rows = self.counts[0].rows
        keys, inverse = np.unique(np.concatenate([users * rows + items for users, items, _ in found]),
                                  return_inverse=True)
        logs = np.zeros((len(found), len(keys)))
        ends = offsets_of(np.array([len(users) for users, _, _ in found]))
        for order, (_, _, counts) in enumerate(found):
            logs[order, inverse.ravel()[ends[order]:ends[order + 1]]] = np.log1p(counts)
        users, items = np.divmod(keys, rows)
        return users, items, logs

    def additions(self, histories: Sequences, device: torch.device | str,
                  weights: tuple[float, ...] | None = None,
                  entries: tuple[np.ndarray, ...] | None = None) -> tuple[torch.Tensor, ...] | None:
        """(users, items, values) tensors to add to a (histories, rows) score matrix, with these weights
        (default the term's own) and entries (default computed here); None when every weight is 0."""
        weights = self.weights if weights is None else weights
        if not any(weights):
            return None
        users, items, logs = self.entries(histories) if entries is None else entries
        values = (np.asarray(weights, dtype=np.float64) @ logs).astype(np.float32)  # (entries,)
        return tuple(torch.from_numpy(a).to(device) for a in (users, items, values))

    def to_payload(self) -> dict:
        return {"weights": [float(w) for w in self.weights], "orders": [c.order for c in self.counts],
                "contexts": [torch.from_numpy(c.contexts) for c in self.counts],
                "followed": [torch.from_numpy(c.followed) for c in self.counts],
                "counts": [torch.from_numpy(c.counts) for c in self.counts]}

    @classmethod
    def from_payload(cls, payload, num_items: int, path: str | Path) -> TransitionTerm:
        """The term a checkpoint stores, checked: a damaged one is a one-line error, not an index error at
        the first recommendation."""
        def fail(what: str) -> GSASRecError:
            return GSASRecError(f"checkpoint {path}: transition_term {what}")

        fields = ("weights", "orders", "contexts", "followed", "counts")
        if not isinstance(payload, dict) or not set(fields) <= set(payload):
            raise fail(f"must be a mapping with {', '.join(fields)}")
        if not all(isinstance(payload[k], list) and len(payload[k]) == len(payload["orders"]) for k in fields):
            raise fail("must have one weight, order, contexts, followed and counts for each order")
        if not all(isinstance(w, (int, float)) and np.isfinite(w) for w in payload["weights"]):
            raise fail("weights must be finite numbers")
        rows = embedding_rows(num_items)
        counts = []
        for order, *arrays in zip(payload["orders"], payload["contexts"], payload["followed"], payload["counts"]):
            if not all(isinstance(a, torch.Tensor) and a.dim() == 1 and len(a) == len(arrays[0]) for a in arrays):
                raise fail("contexts, followed and counts must be 1-d tensors of one length")
            contexts, followed, n = (a.numpy() for a in arrays)
            if (not isinstance(order, int) or not 1 <= order <= 3 or np.any(np.diff(contexts) < 0)
                    or (len(followed) and (followed.min() < 0 or followed.max() >= rows
                                           or contexts.min() < 0 or contexts.max() >= rows ** order))):
                raise fail(f"does not fit a catalogue of {num_items} items")
            counts.append(FollowerCounts(order, rows, contexts.astype(np.int64), followed.astype(np.int64),
                                         n.astype(np.float32)))
        return cls(tuple(float(w) for w in payload["weights"]), counts)

"""Two trivial recommenders that every model must beat, ranked and measured by the model's own code
(scoring.mask_scores, metrics.compute_metrics):

    popularity    every user gets the items most frequent in the training sequences
    transitions   the items that most often followed the user's last item in the training sequences
                  (first-order item-to-item counts), popularity breaking ties and filling in
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gsasrec.batches import all_items
from gsasrec.data.folder import Sequences, Split
from gsasrec.items import embedding_rows, padding_id
from gsasrec.metrics import compute_metrics
from gsasrec.scoring import mask_scores
from gsasrec.transition_term import FollowerCounts

BASELINES = ("popularity", "transitions")


@dataclass
class Baseline:
    """Scores of every id (num_items + 2 columns, like the model's) for a batch of histories."""

    name: str
    num_items: int
    popularity: np.ndarray  # (num_items + 2,) float32 training count of each id, scaled into [0, 1)
    transitions: FollowerCounts | None = None

    def scores(self, histories: Sequences) -> np.ndarray:
        """(users, num_items + 2) float32: transition count + popularity in [0, 1) (so popularity only
        orders items with equal counts), or popularity alone."""
        scores = np.tile(self.popularity, (len(histories), 1))
        if self.transitions is not None:
            users, items, counts = self.transitions.after(histories)
            scores[users, items] += counts
        return scores


def fit_baseline(name: str, train: Sequences, num_items: int) -> Baseline:
    """Count what the training sequences hold: items for popularity, consecutive pairs for transitions."""
    if name not in BASELINES:
        raise ValueError(f"baseline must be one of {', '.join(BASELINES)}, got {name!r}")
    counts = np.bincount(train.items, minlength=embedding_rows(num_items)).astype(np.float64)
    popularity = (counts / (counts.max() + 1)).astype(np.float32)  # (rows,) in [0, 1)
    transitions = FollowerCounts.of(train, num_items) if name == "transitions" else None
    return Baseline(name, num_items, popularity, transitions)


def baseline_top(baseline: Baseline, inputs: Sequences, limit: int, filter_rated: bool,
                 max_score_elements: int = 1 << 26) -> np.ndarray:
    """(users, limit) best ids for each history, with the model's masking (no padding or special ids;
    rated items excluded when filter_rated)."""
    rows = embedding_rows(baseline.num_items)
    batch = max(1, max_score_elements // rows)
    best = np.zeros((len(inputs), limit), dtype=np.int64)
    for start in range(0, len(inputs), batch):
        users = np.arange(start, min(start + batch, len(inputs)))
        histories = inputs.take(users)
        scores = torch.from_numpy(baseline.scores(histories))
        rated = torch.from_numpy(all_items(histories, padding_id(baseline.num_items))) if filter_rated else None
        best[users] = torch.topk(mask_scores(scores, baseline.num_items, rated), limit, dim=1).indices.numpy()
    return best


def evaluate_baseline(name: str, train: Sequences, split: Split, num_items: int, metrics: list, limit: int,
                      filter_rated: bool) -> dict[str, float]:
    """The metrics of baseline `name`, fitted on `train`, on `split`."""
    baseline = fit_baseline(name, train, num_items)
    return compute_metrics(metrics, baseline_top(baseline, split.inputs, limit, filter_rated), split.targets)

"""Top-k lists for every user of a split, and their metrics.

Users are sorted by history length and each batch is cut to its longest input: a short history then
costs only its own length, and the columns that remain are the ones the model would see at full width
(GSASRec.forward explains why the results are the same).
"""

from __future__ import annotations

import numpy as np
import torch

from gsasrec.batches import left_padded
from gsasrec.data.folder import Sequences, Split
from gsasrec.metrics import compute_metrics
from gsasrec.model import GSASRec
from gsasrec.scoring import mask_scores


@torch.no_grad()
def predict_top(model: GSASRec, inputs: Sequences, limit: int, filter_rated: bool,
                batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """(users, limit) item ids and their scores, best first, in the order of `inputs`.

    With filter_rated every item anywhere in the user's input gets -inf, also items older than the
    last sequence_length ones that the model sees.
    """
    was_training = model.training
    model.eval()
    device = model.output_table.device
    num_items = model.num_items
    order = np.argsort(inputs.lengths, kind="stable")
    top_items = np.zeros((len(inputs), limit), dtype=np.int64)
    top_scores = np.zeros((len(inputs), limit), dtype=np.float32)
    for start in range(0, len(inputs), batch_size):
        users = order[start:start + batch_size]
        histories = inputs.take(users)
        width = int(min(max(histories.lengths.max(initial=0), 1), model.sequence_length))
        batch = torch.from_numpy(left_padded(histories, width, model.padding_id)).to(device)
        scores = model.last_scores(batch).float()  # (batch, num_items + 2)
        rated = None
        if filter_rated:
            rated_width = int(max(histories.lengths.max(initial=0), 1))
            rated = torch.from_numpy(left_padded(histories, rated_width, model.padding_id)).to(device)
        mask_scores(scores, num_items, rated)
        best = torch.topk(scores, limit, dim=1)
        top_items[users] = best.indices.cpu().numpy()
        top_scores[users] = best.values.cpu().numpy()
    model.train(was_training)
    return top_items, top_scores


def evaluate(model: GSASRec, split: Split, metrics: list, limit: int, filter_rated: bool,
             batch_size: int = 512) -> dict[str, float]:
    """Mean of each ir-measures measure over the split's users."""
    top_items, _ = predict_top(model, split.inputs, limit, filter_rated, batch_size)
    return compute_metrics(metrics, top_items, split.targets)

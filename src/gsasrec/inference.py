"""The one scoring path from histories to scores: evaluation, recommendations and calibration all use it.

Histories are cut to the longest one in the batch (GSASRec.forward explains why that changes nothing),
the model runs in eval mode without gradients, and its previous mode is restored afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from gsasrec.batches import trimmed_inputs
from gsasrec.data.folder import Sequences
from gsasrec.model import GSASRec
from gsasrec.scoring import top_k


@contextmanager
def inference(model: GSASRec) -> Iterator[GSASRec]:
    """Eval mode (no dropout) and no autograd for the block; the model's mode is restored after it."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def last_hidden(model: GSASRec, histories: Sequences) -> torch.Tensor:
    """(count, dim) the sequence embedding after each history's last item, on the model's device."""
    inputs = trimmed_inputs(histories, model.sequence_length, model.padding_id)
    return model.last_hidden(torch.from_numpy(inputs).to(model.output_table.device))


def top_items(model: GSASRec, histories: Sequences, k: int, excluded: np.ndarray | None = None,
              max_score_elements: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(count, k) best item ids and their scores for each history, best first.

    excluded: (count, width) item ids that may not be recommended to each row, padded with the padding
    id (batches.all_items gives a history's every item), or None. The model's transition term, when its
    checkpoint has one (transition_term.py), is added to the scores.
    """
    with inference(model):
        device = model.output_table.device
        rated = None if excluded is None else torch.from_numpy(excluded).to(device)
        term = model.transition_term
        additions = None if term is None else term.additions(histories, device)
        return top_k(last_hidden(model, histories), model.output_table, k, model.num_items, rated,
                     max_score_elements, model.output_bias, additions)

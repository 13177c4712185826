"""One training objective per loss: which logits a step computes for the positions that carry a loss, the
loss over them, and how many logits that holds per position (the memory guard's measure, training.py).

gBCE (the reference's; plain BCE, SASRec's, is gBCE with t=0) and sampled softmax CE score each position's
positive against negatives drawn uniformly from the catalogue; softmax CE scores the whole catalogue.
"""

from __future__ import annotations

import torch

from gsasrec.batches import sample_negatives
from gsasrec.loss import full_ce_loss, gbce_beta, gbce_loss, sampled_ce_loss
from gsasrec.scoring import all_logits, candidate_logits, use_dense_logits


class SampledObjective:
    """The positive and `negs_per_pos` uniform negatives of each position: (positions, 1 + negatives)."""

    def __init__(self, num_items: int, negs_per_pos: int):
        self.num_items, self.negs_per_pos = num_items, negs_per_pos
        self.logits_per_position = negs_per_pos + 1

    def logits(self, positions: torch.Tensor, positives: torch.Tensor, model, generator: torch.Generator):
        """(logits, candidates): logits (positions, 1 + negatives), candidates the ids they score."""
        negatives = sample_negatives(len(positions), self.negs_per_pos, self.num_items, generator,
                                     positions.device)  # (positions, negatives)
        dense = use_dense_logits(self.num_items, self.negs_per_pos, len(positions))
        logits = candidate_logits(positions, model.output_table, positives, negatives, dense, model.output_bias)
        return logits, torch.cat([positives.unsqueeze(1), negatives], dim=1)


class GBCEObjective(SampledObjective):
    def __init__(self, num_items: int, negs_per_pos: int, t: float):
        super().__init__(num_items, negs_per_pos)
        self.beta = gbce_beta(num_items, negs_per_pos, t)

    def loss(self, logits: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        return gbce_loss(logits, self.beta)


class SampledCEObjective(SampledObjective):
    def loss(self, logits: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        return sampled_ce_loss(logits, candidates)


class FullCEObjective:
    """Softmax over every row of the output table: (positions, num_items + 2) logits."""

    def __init__(self, num_items: int):
        self.logits_per_position = num_items + 2

    def logits(self, positions: torch.Tensor, positives: torch.Tensor, model, generator: torch.Generator):
        return all_logits(positions, model.output_table, model.output_bias), positives

    def loss(self, logits: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
        return full_ce_loss(logits, positives)


def objective_for(config, num_items: int):
    """The objective of config.loss ("gbce", "sampled_ce" or "ce")."""
    if config.loss == "ce":
        return FullCEObjective(num_items)
    if config.loss == "sampled_ce":
        return SampledCEObjective(num_items, config.negs_per_pos)
    return GBCEObjective(num_items, config.negs_per_pos, config.gbce_t)

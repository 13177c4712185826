"""One training objective per loss: which logits a step computes for the positions that carry a loss, the
loss over them, and how many logits that holds per position (the memory guard's measure, training.py).

gBCE (the reference's; plain BCE, SASRec's, is gBCE with t=0) and sampled softmax CE score each position's
positive against negatives drawn uniformly from the catalogue; softmax CE scores the whole catalogue.
"""

from __future__ import annotations

import torch

from gsasrec.batches import sample_candidates, sample_negatives
from gsasrec.loss import full_ce_loss, gbce_beta, gbce_loss, gbce_loss_split, sampled_ce_loss
from gsasrec.scoring import all_logits, bagged_gbce_loss, gather_rows, logits_of, row_shared_logits, use_dense_logits


class SampledObjective:
    """The positive and `negs_per_pos` uniform negatives of each position: (positions, 1 + negatives).
    With shared_negatives the negatives are drawn once per batch row (config.shared_negatives)."""

    def __init__(self, num_items: int, negs_per_pos: int, shared_negatives: bool = False):
        self.num_items, self.negs_per_pos, self.shared_negatives = num_items, negs_per_pos, shared_negatives
        self.logits_per_position = negs_per_pos + 1

    def negatives(self, count: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
        """(count, negatives): one draw for each position, or for each row with shared_negatives."""
        return sample_negatives(count, self.negs_per_pos, self.num_items, generator, device)

    def grid_logits(self, hidden: torch.Tensor, labels: torch.Tensor, model,
                    generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """With shared_negatives: float32 logits of every position of the padded grid, its label's
        (rows, width) and its row's negatives' (rows, width, negatives), one draw per row. hidden: (rows,
        width, dim); labels: (rows, width)."""
        negatives = self.negatives(len(hidden), generator, hidden.device)  # (rows, negatives)
        return row_shared_logits(hidden, labels, model.output_table, negatives, model.output_bias), negatives

    def position_logits(self, hidden: torch.Tensor, valid: torch.Tensor, labels: torch.Tensor, model,
                        generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, candidates) of the positions hidden[valid]: both (positions, 1 + negatives), column 0
        the positive, candidates the ids the logits score. hidden: (rows, width, dim); valid, labels:
        (rows, width)."""
        positives = labels[valid]  # (positions,)
        if self.shared_negatives:
            (positive, scored), negatives = self.grid_logits(hidden, labels, model, generator)
            logits = torch.cat([positive[valid].unsqueeze(1), scored[valid]], dim=1)
            shared = negatives.unsqueeze(1).expand(-1, valid.shape[1], -1)[valid]  # (positions, negatives)
            return logits, torch.cat([positives.unsqueeze(1), shared], dim=1)
        positions, candidates, dense = self.candidates(hidden, valid, positives, generator)
        return logits_of(positions, model.output_table, candidates, dense, model.output_bias), candidates

    def candidates(self, hidden: torch.Tensor, valid: torch.Tensor, positives: torch.Tensor,
                   generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """(positions, candidates, dense): the rows hidden[valid] (positions, dim), each one's positive and
        negatives (positions, 1 + negatives), and whether the dense logit path scores them."""
        # Rows picked by their numbers: the backward adds them into a zeroed grid (index_add_), where
        # hidden[valid]'s accumulating index_put_ cost 5 ms of an ML-1M step.
        picked = valid.view(-1).nonzero().squeeze(1)  # (positions,)
        positions = gather_rows(hidden.reshape(-1, hidden.shape[-1]), picked)  # (positions, dim)
        candidates = sample_candidates(positives, self.negs_per_pos, self.num_items, generator)
        dense = use_dense_logits(self.num_items, self.negs_per_pos, len(positions), positions.device)
        return positions, candidates, dense


class GBCEObjective(SampledObjective):
    def __init__(self, num_items: int, negs_per_pos: int, t: float, shared_negatives: bool = False):
        super().__init__(num_items, negs_per_pos, shared_negatives)
        self.beta = gbce_beta(num_items, negs_per_pos, t)

    def loss(self, hidden: torch.Tensor, valid: torch.Tensor, labels: torch.Tensor, model,
             generator: torch.Generator) -> torch.Tensor:
        """Mean gBCE over the positions hidden[valid] (hidden: (rows, width, dim); valid, labels: (rows, width))."""
        if self.shared_negatives:
            # Every position of the padded grid is scored and the padding masked out of the mean: cheaper than
            # picking the valid positions out of the (rows, width, negatives) logits and scattering back.
            (positive, scored), _ = self.grid_logits(hidden, labels, model, generator)
            return gbce_loss_split(positive, scored, self.beta, valid)
        positions, candidates, dense = self.candidates(hidden, valid, labels[valid], generator)
        if not dense and positions.device.type == "cpu":  # the gradient of the logits made in the forward
            return bagged_gbce_loss(positions, model.output_table, candidates, model.output_bias, self.beta)
        logits = logits_of(positions, model.output_table, candidates, dense, model.output_bias)
        return gbce_loss(logits, self.beta)


class SampledCEObjective(SampledObjective):
    def loss(self, hidden: torch.Tensor, valid: torch.Tensor, labels: torch.Tensor, model,
             generator: torch.Generator) -> torch.Tensor:
        return sampled_ce_loss(*self.position_logits(hidden, valid, labels, model, generator))


class FullCEObjective:
    """Softmax over every row of the output table: (positions, num_items + 2) logits."""

    def __init__(self, num_items: int):
        self.logits_per_position = num_items + 2

    def loss(self, hidden: torch.Tensor, valid: torch.Tensor, labels: torch.Tensor, model,
             generator: torch.Generator) -> torch.Tensor:
        return full_ce_loss(all_logits(hidden[valid], model.output_table, model.output_bias), labels[valid])


def objective_for(config, num_items: int):
    """The objective of config.loss ("gbce", "sampled_ce" or "ce")."""
    if config.loss == "ce":
        return FullCEObjective(num_items)
    if config.loss == "sampled_ce":
        return SampledCEObjective(num_items, config.negs_per_pos, config.shared_negatives)
    return GBCEObjective(num_items, config.negs_per_pos, config.gbce_t, config.shared_negatives)

"""One optimisation step (forward, loss over non-padding positions, backward, Adam), the learning-rate
schedule and the run's budget: what a training step needs besides the model and the losses."""

from __future__ import annotations

import math

import torch

from gsasrec.batches import Batch
from gsasrec.config import GSASRecExperimentConfig
from gsasrec.errors import GSASRecError
from gsasrec.model import GSASRec
from gsasrec.objectives import objective_for
from gsasrec.runtime import PRECISIONS

LR_FLOOR = 0.1


def learning_rate_at(config: GSASRecExperimentConfig, step: int) -> float:
    """Adam's learning rate for training step `step` (0-based): constant, or a cosine decay."""
    if config.lr_decay_steps is None:
        return config.learning_rate
    progress = min(step / config.lr_decay_steps, 1.0)
    return config.learning_rate * (LR_FLOOR + (1 - LR_FLOOR) * 0.5 * (1 + math.cos(math.pi * progress)))


class TrainingStep:
    """One optimisation step: forward, the objective's loss over non-padding positions, backward, Adam."""

    def __init__(self, model: GSASRec, optimizer: torch.optim.Optimizer, config: GSASRecExperimentConfig,
                 num_items: int, generator: torch.Generator, precision: str = "fp32",
                 compile: bool = False, network: torch.nn.Module | None = None):
        if precision not in PRECISIONS:
            raise GSASRecError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.model = model
        network = network if network is not None else model  # the DDP wrapper when distributed
        # Evaluation keeps the plain module: its batches change width, which would recompile.
        self.forward = torch.compile(network) if compile else network
        self.bf16 = precision == "bf16"
        self.optimizer = optimizer
        self.objective = objective_for(config, num_items)
        self.generator = generator

    def loss(self, batch: Batch) -> torch.Tensor:
        inputs, labels = batch.inputs, batch.labels
        with torch.autocast(inputs.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            hidden = self.forward(inputs, positions=batch.positions, segments=batch.segments)  # (rows, length, dim)
            # Only positions with a real input carry a loss; about half of an unpacked ML-1M batch is padding.
            valid = inputs != self.model.padding_id  # (batch, length)
            # The losses compute in float32 whatever the autocast dtype (autocast lowers only the products).
            return self.objective.loss(hidden, valid, labels, self.model, self.generator)

    def __call__(self, batch: Batch) -> torch.Tensor:
        loss = self.loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

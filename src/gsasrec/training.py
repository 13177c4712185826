"""The training loop (SPEC.md, "Training"): Adam, epochs of at most max_batches_per_epoch batches,
validation after each epoch, the best checkpoint by val_metric, early stopping.

A run directory holds config.json (the resolved config and run options), metrics.jsonl (one line per
epoch) and best.pt.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import torch
from tqdm import tqdm

from gsasrec.batches import TrainingBatches, sample_negatives
from gsasrec.checkpoint import save_checkpoint
from gsasrec.config import GSASRecExperimentConfig
from gsasrec.data.folder import Dataset
from gsasrec.errors import GSASRecError
from gsasrec.evaluation import evaluate
from gsasrec.files import write_text_atomic
from gsasrec.loss import gbce_beta, gbce_loss
from gsasrec.model import GSASRec
from gsasrec.runtime import new_seed, retain_freed_memory, seeded_generator
from gsasrec.scoring import candidate_logits, use_dense_logits

PRECISIONS = ("fp32", "bf16")
BEST_CHECKPOINT = "best.pt"
METRICS_LOG = "metrics.jsonl"
RUN_CONFIG = "config.json"


@dataclass
class RunOptions:
    """How one run goes, beyond the experiment config."""

    output_dir: Path | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    seed: int | None = None
    max_steps: int | None = None
    max_minutes: float | None = None
    progress: bool | None = None  # None: a bar only on a terminal
    precision: str = "fp32"  # "bf16": autocast matmuls to bfloat16; the loss stays float32
    compile: bool = False  # torch.compile the model for training steps


@dataclass
class RunResult:
    run_dir: Path
    best_checkpoint: Path
    best_metric: float
    best_step: int
    steps: int
    epochs: int
    seconds: float


def default_run_dir(dataset_name: str) -> Path:
    return Path("runs") / f"{dataset_name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def train(config: GSASRecExperimentConfig, dataset: Dataset, options: RunOptions) -> RunResult:
    """Train until early stopping, max_epochs, --max-steps or --max-minutes; return where the best is."""
    num_items = dataset.num_items
    if num_items < 2:
        raise GSASRecError(f"dataset {dataset.name}: training needs at least 2 items, found {num_items}")
    if len(dataset.val.inputs) == 0:
        raise GSASRecError(f"dataset {dataset.name}: val/input.txt is empty; validation needs users")
    device = options.device
    if device.type == "cpu":
        retain_freed_memory()
    seed = options.seed if options.seed is not None else new_seed()
    generator = seeded_generator(seed, device)
    run_dir = Path(options.output_dir or default_run_dir(config.dataset_name))
    run_dir.mkdir(parents=True, exist_ok=True)
    write_run_config(run_dir, config, options, seed, dataset)

    model = GSASRec.from_config(config, num_items).to(device)
    optimizer = torch.optim.Adam(model.parameters(), fused=device.type == "cuda")
    batches = TrainingBatches(dataset.train, config.sequence_length, model.padding_id,
                              config.train_batch_size, device)
    step_loss = TrainingStep(model, optimizer, config, num_items, generator, options.precision,
                             options.compile)
    budget = Budget(options.max_steps, options.max_minutes)
    best = RunResult(run_dir, run_dir / BEST_CHECKPOINT, -math.inf, 0, 0, 0, 0.0)
    epochs_without_improvement = 0
    started = time.perf_counter()
    log = (run_dir / METRICS_LOG).open("a")
    hide_bar = None if options.progress is None else not options.progress  # None: tqdm decides (tty)
    steps_per_epoch = min(len(batches), config.max_batches_per_epoch)
    try:
        for epoch in range(1, config.max_epochs + 1):
            model.train()
            losses = []
            bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch}", unit="step", leave=False,
                       disable=hide_bar, dynamic_ncols=True)
            for inputs, labels in batches.epoch(config.max_batches_per_epoch, generator):
                losses.append(step_loss(inputs, labels))
                best.steps += 1
                bar.update(1)
                if best.steps % 10 == 0:
                    bar.set_postfix(loss=f"{torch.stack(losses[-10:]).mean().item():.4f}")
                if budget.spent(best.steps):
                    break
            bar.close()
            train_seconds = time.perf_counter() - started
            validation_started = time.perf_counter()
            metrics = evaluate(model, dataset.val, config.metrics + [config.val_metric],
                               config.recommendation_limit, config.filter_rated, config.eval_batch_size)
            validation_seconds = time.perf_counter() - validation_started
            value = metrics[config.val_metric]
            improved = value > best.best_metric
            if improved:
                best.best_metric, best.best_step = value, best.steps
                epochs_without_improvement = 0
                save_checkpoint(best.best_checkpoint, model, config, dataset.stats, step=best.steps,
                                epoch=epoch, seed=seed, val_metrics=metrics,
                                dataset_path=str(dataset.path.resolve()))
            else:
                epochs_without_improvement += 1
            epoch_loss = torch.stack(losses).mean().item() if losses else float("nan")
            record = {"epoch": epoch, "step": best.steps, "loss": epoch_loss, "metrics": metrics,
                      "best": improved, "seconds": round(time.perf_counter() - started, 3),
                      "validation_seconds": round(validation_seconds, 3)}
            log.write(json.dumps(record) + "\n")
            log.flush()
            tqdm.write(f"epoch {epoch} step {best.steps} loss {epoch_loss:.4f} "
                       + " ".join(f"{k} {v:.4f}" for k, v in metrics.items())
                       + (" (best)" if improved else "") + f" [{train_seconds:.0f}s]")
            best.epochs = epoch
            if budget.spent(best.steps) or epochs_without_improvement >= config.early_stopping_patience:
                break
    finally:
        log.close()
    best.seconds = time.perf_counter() - started
    return best


class TrainingStep:
    """One optimisation step: forward, gBCE over non-padding positions, backward, Adam."""

    def __init__(self, model: GSASRec, optimizer: torch.optim.Optimizer, config: GSASRecExperimentConfig,
                 num_items: int, generator: torch.Generator, precision: str = "fp32",
                 compile: bool = False):
        if precision not in PRECISIONS:
            raise GSASRecError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.model = model
        # Evaluation keeps the plain module: its batches change width, which would recompile.
        self.forward = torch.compile(model) if compile else model
        self.bf16 = precision == "bf16"
        self.optimizer = optimizer
        self.num_items = num_items
        self.negs_per_pos = config.negs_per_pos
        self.beta = gbce_beta(num_items, config.negs_per_pos, config.gbce_t)
        self.generator = generator

    def loss(self, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        with torch.autocast(inputs.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            hidden = self.forward(inputs)  # (batch, length, dim)
            valid = inputs != self.model.padding_id  # (batch, length)
            # Only positions with a real input carry a loss; about half of an ML-1M batch is padding.
            positions = hidden[valid]  # (positions, dim)
            negatives = sample_negatives(len(positions), self.negs_per_pos, self.num_items,
                                         self.generator, inputs.device)  # (positions, negatives)
            dense = use_dense_logits(self.num_items, self.negs_per_pos, len(positions))
            logits = candidate_logits(positions, self.model.output_table, labels[valid], negatives, dense)
        return gbce_loss(logits, self.beta)  # float32 whatever the autocast dtype

    def __call__(self, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        loss = self.loss(inputs, labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()


class Budget:
    """--max-steps and --max-minutes."""

    def __init__(self, max_steps: int | None, max_minutes: float | None):
        self.max_steps = max_steps
        self.deadline = time.perf_counter() + max_minutes * 60 if max_minutes is not None else None

    def spent(self, steps: int) -> bool:
        if self.max_steps is not None and steps >= self.max_steps:
            return True
        return self.deadline is not None and time.perf_counter() >= self.deadline


def write_run_config(run_dir: Path, config: GSASRecExperimentConfig, options: RunOptions, seed: int,
                     dataset: Dataset) -> None:
    payload = {
        "config": config.to_dict(),
        "run": {"seed": seed, "device": str(options.device), "max_steps": options.max_steps,
                "max_minutes": options.max_minutes, "precision": options.precision,
                "compile": options.compile, "dataset_path": str(dataset.path)},
        "dataset_stats": dataset.stats,
        "versions": {"torch": torch.__version__},
    }
    write_text_atomic(run_dir / RUN_CONFIG, json.dumps(payload, indent=2) + "\n")

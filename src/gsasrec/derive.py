"""Settings from the data: a complete experiment config for a dataset folder and a training budget, each
field with one line that says why (`gsasrec train --dataset NAME`).

The rules start from the ML-1M ten-minute recipe (configs/ml1m_gsasrec_10min.py: measured, benchmarks/
RESULTS.md) and scale what depends on the data: the window follows the history lengths, the width the size
of the log, the negatives the catalogue, the learning-rate decay the budget. On ML-1M's statistics and a
1,400-step budget they give that recipe exactly; on generated logs of other shapes they are measured against
the popularity and transition baselines (benchmarks/derived_settings.sh).
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass

import numpy as np

from gsasrec.config import FIELD_NAMES, GSASRecExperimentConfig, make_config
from gsasrec.data.folder import Dataset
from gsasrec.errors import GSASRecError

# Training minutes when neither --max-steps nor --max-minutes is given.
DEFAULT_MINUTES = 10.0
# The share of a minutes budget that training steps get; validation and checkpoints take the rest.
STEP_SHARE = 0.85
LENGTH_PERCENTILE = 90  # the window holds this share of the histories whole
MAX_SEQUENCE_LENGTH = 200  # the reference's window: longer ones cost quadratically and gained nothing on ML-1M
# (interactions below, embedding_dim): a small log overfits a wide model and trains it slowly.
WIDTHS = ((200_000, 64), (2_000_000, 128))
WIDEST = 256
MAX_NEGATIVES = 256  # gSASRec's ML-1M setting; more cost a slower step (RESULTS.md)
# Above this share of repeated events (an item the user already had), rated items are left recommendable:
# filtering them would rule out most right answers (a music log, a shop's consumables).
REPEATS_ALLOWED = 0.1


@dataclass
class DerivedConfig:
    """The config and, for each field the data or the budget decided, the reason."""

    config: GSASRecExperimentConfig
    reasons: dict[str, str]


def history_lengths(dataset: Dataset) -> np.ndarray:
    """(users,) each user's whole history: the test input and its target."""
    return dataset.test.inputs.lengths + 1


def steps_in_minutes(max_minutes: float, step_seconds: float) -> int:
    """The training steps a minutes budget holds at step_seconds a step (validation takes the rest)."""
    return max(1, int(max_minutes * 60 * STEP_SHARE / step_seconds))


def repeat_share(sequences) -> float:
    """The share of events whose item already appeared earlier in the same user's sequence."""
    if len(sequences.items) == 0:
        return 0.0
    users = np.repeat(np.arange(len(sequences)), sequences.lengths)
    distinct = len(np.unique(users * (int(sequences.items.max()) + 1) + sequences.items))
    return 1.0 - distinct / len(sequences.items)


def derive_config(dataset: Dataset, max_steps: int | None = None, step_seconds: float | None = None,
                  max_minutes: float | None = None) -> DerivedConfig:
    """The config for `dataset` and a budget of max_steps, or of max_minutes at step_seconds a step."""
    lengths = history_lengths(dataset)
    interactions = int(dataset.stats["num_interactions"])
    num_items = dataset.num_items
    typical = float(np.percentile(lengths, LENGTH_PERCENTILE))
    sequence_length = min(MAX_SEQUENCE_LENGTH, max(8, 8 * math.ceil(typical / 8)))
    embedding_dim = next((dim for limit, dim in WIDTHS if interactions < limit), WIDEST)
    negatives = max(1, min(MAX_NEGATIVES, num_items // 4))
    longer = float(np.mean(lengths > sequence_length + 1))
    repeats = repeat_share(dataset.train)
    if max_steps is None:
        if step_seconds is None or max_minutes is None:
            raise GSASRecError("derive_config needs max_steps, or max_minutes and step_seconds")
        decay_steps = steps_in_minutes(max_minutes, step_seconds)
        decay_reason = (f"the budget: {max_minutes:g} minutes at a measured {step_seconds:.3f} s a step, "
                        f"{STEP_SHARE:.0%} of it for training steps")
    else:
        decay_steps = max_steps
        decay_reason = f"the budget of {max_steps} steps"
    fields = {
        "dataset_name": dataset.name,
        "sequence_length": sequence_length,
        "embedding_dim": embedding_dim,
        "num_heads": 1,
        "num_blocks": 2,
        "dropout_rate": 0.3,
        "negs_per_pos": negatives,
        "gbce_t": 0.75,
        "train_batch_size": 128,
        "learning_rate": 0.001,
        "filter_rated": repeats <= REPEATS_ALLOWED,
        "lr_decay_steps": decay_steps,
        "random_windows": longer > 0,
        "max_batches_per_epoch": 100,
        "early_stopping_patience": 1000,
        "transition_term": True,
    }
    reasons = {
        "sequence_length": f"{LENGTH_PERCENTILE}% of the {len(lengths)} histories hold at most {typical:.0f} "
                           f"items (multiple of 8, at most {MAX_SEQUENCE_LENGTH})",
        "embedding_dim": f"{interactions:,} interactions (64 below 200,000, 128 below 2,000,000, else 256)",
        "num_heads": "one head, as the seed's ML-1M config",
        "num_blocks": "two blocks, as the seed's ML-1M config",
        "dropout_rate": "0.3 beat 0.5 on ML-1M in a ten-minute budget (RESULTS.md)",
        "negs_per_pos": f"{num_items:,} items: a quarter of the catalogue, at most {MAX_NEGATIVES}",
        "gbce_t": "gSASRec's setting from the paper",
        "train_batch_size": "the seed's (larger ones of short histories measured slower: RESULTS.md)",
        "learning_rate": "the seed's, with the decay below",
        "filter_rated": (f"{repeats:.0%} of the training events repeat an item the user already had: "
                         + ("rated items stay recommendable" if repeats > REPEATS_ALLOWED
                            else "rated items are not recommended")),
        "lr_decay_steps": f"cosine decay over {decay_reason}",
        "random_windows": (f"{longer:.0%} of the histories are longer than the window: train on a random "
                           f"window of each" if longer > 0 else "every history fits the window"),
        "max_batches_per_epoch": "validate every 100 steps at most",
        "early_stopping_patience": "the budget ends the run: validation is noisy on a few hundred users",
        "transition_term": ("after training, add counts of what followed the last one and two items, weighted "
                            "as the validation users say (0: the network alone)"),
    }
    return DerivedConfig(make_config(**fields), reasons)


def parse_overrides(assignments: list[str] | None) -> dict:
    """{'embedding_dim': 64} from ['embedding_dim=64']: values are Python literals (64, 0.3, True, None,
    'gbce', ['nDCG@10']); a bare word is a string."""
    overrides = {}
    for assignment in assignments or []:
        name, separator, text = assignment.partition("=")
        name = name.strip()
        if not separator or not name:
            raise GSASRecError(f"--set {assignment!r}: expected FIELD=VALUE, e.g. --set embedding_dim=64")
        if name not in FIELD_NAMES:
            raise GSASRecError(f"--set {assignment!r}: unknown config field {name!r}; known fields: "
                               f"{', '.join(FIELD_NAMES)}")
        try:
            overrides[name] = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            overrides[name] = text.strip()
    return overrides


def with_overrides(config: GSASRecExperimentConfig, overrides: dict) -> GSASRecExperimentConfig:
    """config with some fields replaced, validated (an impossible value names its field)."""
    try:
        return make_config(**{**config.to_dict(), **overrides})
    except GSASRecError as error:
        fields = [name for name in overrides if f"'{name}'" in str(error)]
        raise GSASRecError(f"{error} (set with --set {fields[0]}=...)" if fields else str(error)) from None


def measure_step_seconds(config: GSASRecExperimentConfig, dataset: Dataset, device, precision: str,
                         steps: int = 6, warmup: int = 4) -> float:
    """Median seconds of a training step of `config` on `dataset` (a throwaway model, its own seed: the
    run itself is not touched), under the memory settings the training will have."""
    import time

    import torch

    from gsasrec.batches import TrainingBatches
    from gsasrec.model import GSASRec
    from gsasrec.runtime import retain_freed_memory
    from gsasrec.step import TrainingStep

    if device.type == "cpu":
        # As the trainer does. Without it every step gave its large buffers back to the OS and faulted them
        # in again: the timing came out 3 to 6 times the real step on a short-session log, and the derived
        # learning-rate decay ended in the first third of the budget.
        retain_freed_memory()

    generator = torch.Generator(device=device).manual_seed(0)
    model = GSASRec.from_config(config, dataset.num_items).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    step = TrainingStep(model, optimizer, config, dataset.num_items, generator, precision)
    batches = TrainingBatches(dataset.train, config.sequence_length, model.padding_id, config.train_batch_size,
                              device, config.random_windows)
    order = batches.shuffle(generator)
    seconds = []
    rng_state = torch.random.get_rng_state()  # dropout draws from the global generator: leave it as it was
    try:
        for index in range(warmup + steps):
            batch = batches.batch(order, index % len(batches), 0, 1, generator)
            started = time.perf_counter()
            step(batch)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds.append(time.perf_counter() - started)
    finally:
        torch.random.set_rng_state(rng_state)
    return float(np.median(seconds[warmup:]))

"""Top-k lists for every user of a split, and their metrics.

Users are sorted by history length and each batch is cut to its longest input: a short history then
costs only its own length, and the columns that remain are the ones the model would see at full width
(GSASRec.forward explains why the results are the same).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gsasrec.batches import all_items
from gsasrec.checkpoint import dataset_location, load_model
from gsasrec.config import GSASRecExperimentConfig, make_config
from gsasrec.data.folder import Sequences, Split, read_dataset
from gsasrec.errors import GSASRecError
from gsasrec.inference import inference, last_hidden, top_items
from gsasrec.metrics import compute_metrics
from gsasrec.model import GSASRec
from gsasrec.progress import JobProgress
from gsasrec.runtime import resolve_device, resolve_precision
from gsasrec.scoring import all_scores, best_of
from gsasrec.transition_term import WEIGHTS, TransitionTerm

BATCH_POSITIONS = 32_768  # a ranking batch's most positions: length_sorted_batches


def predict_top(model: GSASRec, inputs: Sequences, limit: int, filter_rated: bool,
                batch_size: int = 512, max_score_elements: int | None = None,
                progress: JobProgress | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(users, limit) item ids and their scores, best first, in the order of `inputs`.

    With filter_rated every item anywhere in the user's input gets -inf, also items older than the
    last sequence_length ones that the model sees. max_score_elements bounds the (users, items) score
    blocks (scoring.top_k). progress, when given, counts the users ranked.
    """
    best_items = np.zeros((len(inputs), limit), dtype=np.int64)
    best_scores = np.zeros((len(inputs), limit), dtype=np.float32)
    for users in length_sorted_batches(inputs.lengths, batch_size, model.sequence_length):
        histories = inputs.take(users)
        excluded = all_items(histories, model.padding_id) if filter_rated else None
        ids, scores = top_items(model, histories, limit, excluded, max_score_elements)
        best_items[users] = ids.cpu().numpy()
        best_scores[users] = scores.cpu().numpy()
        if progress is not None:
            progress.update(len(users))
    return best_items, best_scores


def length_sorted_batches(lengths: np.ndarray, batch_size: int, sequence_length: int) -> Iterator[np.ndarray]:
    """Indices of the users in batches, shortest histories first: each batch at most batch_size users
    and at most BATCH_POSITIONS positions once cut to its longest history (one user at the least).

    Short histories then share large batches and long ones come in small batches whose buffers stay
    small: a ranking of ML-1M's test users took 1.3-1.4 s in batches of 128 users against 1.5-2.0 s in
    batches of 512 (benchmarks/RESULTS.md), the same results.
    """
    order = np.argsort(lengths, kind="stable")
    widths = np.clip(lengths[order], 1, sequence_length)  # each batch's width: its last (longest) user's
    start = 0
    while start < len(order):
        counts = np.arange(1, min(batch_size, len(order) - start) + 1)
        fits = counts * widths[start:start + len(counts)] <= BATCH_POSITIONS  # a prefix of Trues
        end = start + max(int(fits.sum()), 1)
        yield order[start:end]
        start = end


def evaluate(model: GSASRec, split: Split, metrics: list, limit: int, filter_rated: bool,
             batch_size: int = 512, max_score_elements: int | None = None,
             progress: JobProgress | None = None) -> dict[str, float]:
    """Mean of each ir-measures measure over the split's users."""
    ranked, _ = predict_top(model, split.inputs, limit, filter_rated, batch_size, max_score_elements, progress)
    return compute_metrics(metrics, ranked, split.targets)


def evaluate_config(model: GSASRec, split: Split, config, metrics: list | None = None,
                    progress: JobProgress | None = None) -> dict[str, float]:
    """evaluate() with the settings of an experiment config (limit, filtering, batch, score blocks)."""
    return evaluate(model, split, metrics if metrics is not None else config.metrics,
                    config.recommendation_limit, config.filter_rated, config.eval_batch_size,
                    config.score_chunk_elements, progress)


def choose_transition_weights(model: GSASRec, split: Split, config: GSASRecExperimentConfig,
                              term: TransitionTerm) -> tuple[TransitionTerm, dict[tuple, float]]:
    """`term` with the weights (each order's from transition_term.WEIGHTS) that give the best val_metric
    on `split`, ties going to the smaller sum, and each combination's figure. The model runs once per
    batch, and each batch's scores are computed once; only the additions and the top-k are repeated. The
    measure is a mean over users, added up batch by batch: no list of every user is kept per combination."""
    inputs, limit, rows = split.inputs, config.recommendation_limit, model.output_table.shape[0]
    combinations = list(itertools.product(WEIGHTS, repeat=len(term.counts)))
    totals = dict.fromkeys(combinations, 0.0)
    batch_size = max(1, min(config.eval_batch_size, config.score_chunk_elements // rows))
    with inference(model):
        device = model.output_table.device
        for users in length_sorted_batches(inputs.lengths, batch_size, model.sequence_length):
            histories = inputs.take(users)
            scores = all_scores(last_hidden(model, histories), model.output_table, model.output_bias)  # (batch, rows)
            rated = torch.from_numpy(all_items(histories, model.padding_id)).to(device) if config.filter_rated else None
            entries = term.entries(histories)
            for weights in combinations:
                additions = term.additions(histories, device, weights, entries)
                ids, _ = best_of(scores.clone(), limit, model.num_items, rated, additions)
                metric = compute_metrics([config.val_metric], ids.cpu().numpy(), split.targets[users])
                totals[weights] += metric[config.val_metric] * len(users)
    figures = {weights: total / max(len(inputs), 1) for weights, total in totals.items()}
    best = max(combinations, key=lambda weights: (figures[weights], -sum(weights)))
    return TransitionTerm(best, term.counts), figures


@dataclass
class CheckpointEvaluation:
    """What evaluate_checkpoint measured, and what it measured it with."""

    metrics: dict[str, float]
    model: GSASRec
    config: GSASRecExperimentConfig
    split: Split
    seconds: float


def check_limit(config: GSASRecExperimentConfig, num_items: int, dataset_name: str) -> None:
    """Refuse up front a top-k list longer than the catalogue (a training run would otherwise fail at its
    first validation, after a whole epoch)."""
    if config.recommendation_limit > num_items:
        raise GSASRecError(f"recommendation_limit={config.recommendation_limit} is more than the {num_items} "
                           f"items of dataset {dataset_name}: set recommendation_limit to at most {num_items} "
                           f"(and metrics' cutoffs with it)")


def evaluate_checkpoint(path: str | Path, split: str = "test", datasets_dir: str | Path | None = None,
                        config: GSASRecExperimentConfig | None = None, device: str = "auto",
                        progress: bool = True, precision: str = "fp32", **overrides) -> CheckpointEvaluation:
    """Metrics of a checkpoint on its dataset's `split`.

    The dataset is <datasets_dir>/<dataset_name>, else the folder the checkpoint was trained on.
    config replaces the stored one (a bare reference state_dict needs it); overrides change evaluation
    fields of the config: metrics, recommendation_limit, filter_rated, eval_batch_size, transition_term
    (False: the network's scores without the checkpoint's transition term). progress: report
    the ranking's progress on stderr (progress.JobProgress). precision "bf16" runs the model's matrix
    products in bfloat16 (autocast): about twice as fast on CPUs with bf16 units, metrics within rounding
    of fp32's (many times slower on a CPU without bf16 units); "auto" is bf16 where the hardware has it;
    "fp32" (the default) gives the reference's figures to the number.
    """
    device = resolve_device(device)
    precision = resolve_precision(precision, device)
    model, config, payload = load_model(path, config, device=device)
    config = make_config(**{**config.to_dict(), **overrides})
    if not config.transition_term:
        model.transition_term = None  # --no-transition-term: the network's scores alone
    folder = dataset_location(payload, config.dataset_name, datasets_dir)
    dataset = read_dataset(folder.name, folder.parent)
    if dataset.num_items != model.num_items:
        raise GSASRecError(f"checkpoint {path} was trained on num_items={model.num_items}, "
                           f"but dataset {dataset.path} has num_items={dataset.num_items}")
    check_limit(config, dataset.num_items, dataset.name)
    held_out = dataset.split(split)
    started = time.perf_counter()
    device_type = model.output_table.device.type
    with (JobProgress(f"ranking {split} users", len(held_out.inputs), "users", shown=progress) as report,
          torch.autocast(device_type, dtype=torch.bfloat16, enabled=precision == "bf16")):
        metrics = evaluate_config(model, held_out, config, progress=report)
    return CheckpointEvaluation(metrics, model, config, held_out, time.perf_counter() - started)

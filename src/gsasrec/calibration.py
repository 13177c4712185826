"""How well sigmoid(score) works as a click probability: expected calibration error and a reliability
diagram, on held-out targets (label 1) against sampled non-targets (label 0).

gBCE with t=1 is meant to make sigmoid(score) the probability that an item is the user's next one. Each
user contributes its target and `negatives` items drawn uniformly from its other candidates; each drawn
item stands for (candidates - 1) / negatives of them, so the weighted population has the true
1 : (candidates - 1) ratio.

The candidates are the whole catalogue, or with filter_rated the items the recommender can return: those
not in the user's history. The difference matters: where items are not consumed twice (ML-1M), a rated
item is never the next one, yet a model puts some probability on items it has seen in the history
(about 0.3 of a next item per user for the t=1.0 ML-1M model), which the catalogue-wide E/O counts and
the recommender never serves.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gsasrec.batches import all_items
from gsasrec.data.folder import Sequences, Split
from gsasrec.figures import save_figure, subplots
from gsasrec.inference import inference, last_hidden
from gsasrec.model import GSASRec
from gsasrec.progress import JobProgress
from gsasrec.scoring import candidate_logits

BINS = 15


@dataclass
class Calibration:
    ece: float
    # Predicted positives over observed ones (the E/O ratio): 1.0 when the probabilities are right on
    # average; for next-item probabilities, the expected number of next items summed over the catalogue.
    expected_over_observed: float
    bin_edges: np.ndarray  # (BINS + 1,)
    mean_predicted: np.ndarray  # (BINS,) weighted mean probability in each bin (nan where empty)
    observed: np.ndarray  # (BINS,) weighted fraction of positives in each bin
    weight: np.ndarray  # (BINS,) share of the population in each bin

    def measures(self) -> dict[str, float]:
        """The two summary figures under the names the command line prints."""
        return {"ECE": self.ece, "E/O": self.expected_over_observed}

    def to_dict(self) -> dict:
        return {**self.measures(), "bins": [
            {"low": float(lo), "high": float(hi), "predicted": _plain(p), "observed": _plain(o), "share": float(w)}
            for lo, hi, p, o, w in zip(self.bin_edges[:-1], self.bin_edges[1:], self.mean_predicted,
                                       self.observed, self.weight)]}


def _plain(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def scored_pairs(model: GSASRec, split: Split, negatives: int, seed: int = 0, batch_size: int = 512,
                 filter_rated: bool = False, progress: JobProgress | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(probabilities, labels, weights) for every user's target and its sampled non-targets.

    filter_rated: draw the non-targets from the items outside the user's history only (the items a
    recommender with rated-item filtering can return) instead of the whole catalogue. progress, when
    given, counts the users scored.
    """
    device = model.output_table.device
    num_items = model.num_items
    generator = torch.Generator(device=device).manual_seed(seed)
    probabilities, candidates = [], []
    with inference(model):
        for start in range(0, len(split.inputs), batch_size):
            users = np.arange(start, min(start + batch_size, len(split.inputs)))
            histories = split.inputs.take(users)
            hidden = last_hidden(model, histories)  # (batch, dim)
            targets = torch.from_numpy(split.targets[users]).to(device)  # (batch,)
            if filter_rated:
                others, count = _unrated_others(histories, targets, negatives, num_items, generator)
            else:
                others, count = _any_others(targets, negatives, num_items, generator)
            scores = candidate_logits(hidden, model.output_table, targets, others, dense=False,
                                      bias=model.output_bias)  # (batch, 1 + negatives)
            probabilities.append(torch.sigmoid(scores.float()).cpu().numpy())
            candidates.append(count)
            if progress is not None:
                progress.update(len(users))
    # Column 0 is each user's target, standing for itself; each non-target stands for candidates / negatives.
    weights = np.repeat(np.concatenate(candidates)[:, None] / negatives, 1 + negatives, axis=1)
    weights[:, 0] = 1.0  # (users, 1 + negatives)
    labels = np.zeros_like(weights)
    labels[:, 0] = 1.0
    return np.concatenate(probabilities).ravel(), labels.ravel(), weights.ravel()


def _any_others(targets: torch.Tensor, negatives: int, num_items: int, generator: torch.Generator
                ) -> tuple[torch.Tensor, np.ndarray]:
    """(batch, negatives) items uniform over the num_items - 1 non-targets, and their count per user."""
    # Draw from 1..num_items - 1 and step over the target.
    others = torch.randint(1, num_items, (len(targets), negatives), generator=generator, device=targets.device)
    others = others + (others >= targets.unsqueeze(1)).long()
    return others, np.full(len(targets), num_items - 1, dtype=np.float64)


def _unrated_others(histories: Sequences, targets: torch.Tensor, negatives: int, num_items: int,
                    generator: torch.Generator) -> tuple[torch.Tensor, np.ndarray]:
    """(batch, negatives) items uniform over each user's non-targets outside its history, and their count
    per user."""
    allowed = (~rated_mask(histories, num_items, targets.device)).float()  # (batch, ids 0..num_items + 1)
    allowed[:, 0] = allowed[:, num_items + 1] = 0.0  # neither id is an item
    allowed.scatter_(1, targets.unsqueeze(1), 0.0)
    count = allowed.sum(1).double().cpu().numpy()  # (batch,)
    allowed[torch.from_numpy(count == 0), 0] = 1.0  # a user who has rated everything: nothing to draw, weight 0
    others = torch.multinomial(allowed, negatives, replacement=True, generator=generator)
    return others, count


def rated_mask(histories: Sequences, num_items: int, device: torch.device) -> torch.Tensor:
    """(count, num_items + 2) bool: True at every id in each whole history (what rated-item filtering
    excludes)."""
    padding = num_items + 1
    mask = torch.zeros(len(histories), num_items + 2, dtype=torch.bool, device=device)
    mask.scatter_(1, torch.from_numpy(all_items(histories, padding)).to(device), True)
    mask[:, padding] = False  # the padding that all_items fills short rows with
    return mask


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None,
                               bins: int = BINS) -> Calibration:
    """Weighted ECE over equal-width probability bins: sum over bins of share * |observed - predicted|."""
    weights = np.ones_like(probabilities, dtype=np.float64) if weights is None else weights
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(probabilities, edges[1:-1]), 0, bins - 1)
    total = np.bincount(which, weights=weights, minlength=bins)
    predicted = np.bincount(which, weights=weights * probabilities, minlength=bins)
    positives = np.bincount(which, weights=weights * labels, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_predicted, observed = predicted / total, positives / total
    share = total / total.sum()
    ece = float(np.nansum(share * np.abs(observed - mean_predicted)))
    expected_over_observed = float(predicted.sum() / positives.sum())
    return Calibration(ece, expected_over_observed, edges, mean_predicted, observed, share)


def save_reliability_diagram(calibration: Calibration, path: str | Path, title: str) -> Path:
    figure, (diagram, shares) = subplots(2, 1, figsize=(5.5, 7.2), dpi=100, sharex=True,
                                             gridspec_kw={"height_ratios": [3, 1]})
    centers = (calibration.bin_edges[:-1] + calibration.bin_edges[1:]) / 2
    width = calibration.bin_edges[1] - calibration.bin_edges[0]
    filled = ~np.isnan(calibration.observed)
    diagram.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
    diagram.bar(centers[filled], calibration.observed[filled], width=width * 0.9, color="#3b75af", alpha=0.8,
                label="observed frequency")
    diagram.plot(calibration.mean_predicted[filled], calibration.observed[filled], "o", color="#d1495b",
                 markersize=4, label="bin mean prediction")
    diagram.set_ylabel("fraction that is the next item")
    diagram.set_title(f"{title}\n{figures_line(calibration)}")
    diagram.legend(loc="upper left", fontsize=8)
    shares.bar(centers, np.maximum(calibration.weight, 1e-12), width=width * 0.9, color="#888888")
    shares.set_yscale("log")
    shares.set_ylabel("share")
    shares.set_xlabel("sigmoid(score)")
    figure.text(0.02, 0.01, RELIABILITY_CAPTION, fontsize=7, color="#444444", wrap=True, va="bottom")
    figure.tight_layout(rect=(0, 0.08, 1, 1))
    return save_figure(figure, path)


def figures_line(calibration: Calibration) -> str:
    """"ECE 4e-05, E/O 0.99": three significant digits, since a calibrated model's ECE is of order 1e-5,
    which four fixed decimals showed as 0.0000."""
    return f"ECE {calibration.ece:.3g}, E/O {calibration.expected_over_observed:.3g}"


RELIABILITY_CAPTION = (
    "The upper bins hold a tiny share of the pairs (lower panel, log scale): their bars are noisy, and sit "
    "below the diagonal as expected, since a bin of the highest predictions gathers the model's "
    "overestimates. ECE weights each bin by its share, so the crowded low bins decide it.")

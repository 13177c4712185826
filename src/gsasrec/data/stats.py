"""Summary of a dataset folder: counts, sequence-length percentiles, a length histogram PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gsasrec.data.folder import Dataset
from gsasrec.figures import save_figure, subplots

PERCENTILES = (5, 25, 50, 75, 95, 99)


def summarize(dataset: Dataset) -> dict:
    """Counts and per-user sequence-length percentiles (a user's full sequence: test input + target)."""
    lengths = dataset.test.inputs.lengths + 1
    return {
        "name": dataset.name,
        "users": int(dataset.stats["num_users"]),
        "items": int(dataset.stats["num_items"]),
        "interactions": int(dataset.stats["num_interactions"]),
        "validation_users": len(dataset.val.inputs),
        "items_with_interactions": int(len(np.unique(np.concatenate(
            [dataset.test.inputs.items, dataset.test.targets])))),
        "sequence_length": {"mean": round(float(lengths.mean()), 2), "min": int(lengths.min()),
                            **{f"p{p}": float(np.percentile(lengths, p)) for p in PERCENTILES},
                            "max": int(lengths.max())},
    }


def save_length_histogram(dataset: Dataset, path: Path) -> Path:
    lengths = dataset.test.inputs.lengths + 1
    figure, axes = subplots(figsize=(7, 4), dpi=100)
    bins = np.unique(np.geomspace(max(lengths.min(), 1), lengths.max() + 1, 40).astype(int))
    axes.hist(lengths, bins=bins, color="#3b75af")
    axes.set_xscale("log")
    axes.set_xlabel("interactions per user (log scale)")
    axes.set_ylabel("users")
    axes.set_title(f"{dataset.name}: sequence lengths of {len(lengths)} users")
    figure.tight_layout()
    return save_figure(figure, path)

"""Where a training run stands, as saved in its last.pt: the part of a resume state that is not tensors.

Read back with checks, so that a damaged or hand-made last.pt is a one-line error naming the file and
the field, never an AttributeError deep in the trainer.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

from gsasrec.errors import GSASRecError


@dataclass
class Progress:
    """Where the run is; saved in last.pt."""

    epoch: int = 1  # the epoch under way, 1-based
    batch: int = 0  # batches of it done
    steps: int = 0
    best_metric: float = -math.inf
    best_step: int = 0
    epochs_without_improvement: int = 0
    epoch_losses: list = field(default_factory=list)  # floats: the losses of the epoch under way
    seconds: float = 0.0  # training wall time before this process
    finished: bool = False  # early stopping or max_epochs ended it (a budget stop can be resumed)

    def to_dict(self) -> dict:
        """Plain Python values only: a weights-only load reads them back on any device."""
        return {**asdict(self), "epoch_losses": [float(x) for x in self.epoch_losses]}


def _kinds(value) -> tuple[type, ...]:
    if isinstance(value, bool):
        return (bool,)
    if isinstance(value, (int, float)):
        return (int, float) if isinstance(value, float) else (int,)
    return (type(value),)


# field -> the types its saved value may have, from the defaults above (one place for the field list)
PROGRESS_TYPES = {f.name: _kinds(f.default_factory() if f.default is MISSING else f.default)
                  for f in fields(Progress)}


def progress_from(saved, path: str | Path) -> Progress:
    """Progress from last.pt's 'progress' mapping; a missing, unknown or mistyped field is a GSASRecError."""
    if not isinstance(saved, dict):
        raise GSASRecError(f"{path}: 'progress' should be a mapping, got {type(saved).__name__}")
    unknown = sorted(set(saved) - set(PROGRESS_TYPES))
    if unknown:
        raise GSASRecError(f"{path}: 'progress' has unknown field {unknown[0]!r}")
    for name, types in PROGRESS_TYPES.items():
        if name not in saved:
            raise GSASRecError(f"{path}: 'progress' lacks {name!r}")
        value = saved[name]
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            wanted = " or ".join(t.__name__ for t in types)
            raise GSASRecError(f"{path}: progress field {name!r} should be {wanted}, got {value!r:.60}")
    if not _numbers(saved["epoch_losses"]):
        raise GSASRecError(f"{path}: progress field 'epoch_losses' should hold numbers")
    if saved["epoch"] < 1 or min(saved["batch"], saved["steps"], saved["best_step"]) < 0:
        raise GSASRecError(f"{path}: progress counts out of range (epoch {saved['epoch']}, batch "
                           f"{saved['batch']}, steps {saved['steps']})")
    return Progress(**saved)


@dataclass
class RunState:
    """Everything of a run that is not weights or Adam's state: where it is (Progress), its seed, the
    run options it goes on with, its random streams and the epoch's user order. Saved into last.pt as
    plain values and CPU tensors (to_payload), read back with checks (from_payload) and put on whichever
    device the resumed run uses."""

    progress: Progress
    seed: int
    run_options: dict
    rng: dict  # "torch", "order", "negatives" (and "cuda" or None): generator states as CPU byte tensors
    order: object = None  # torch.Tensor of the epoch's user order, or None between epochs
    # A distributed run's every rank, in rank order: {"rng": its streams as above, "epoch_losses": its
    # losses of the epoch under way}. Each rank draws its own negatives and dropout, so resuming it
    # bit-identically needs all of them; None for a single process (rng and progress say it all).
    ranks: list | None = None

    @property
    def world_size(self) -> int:
        return len(self.ranks) if self.ranks else 1

    def to_payload(self) -> dict:
        return {"progress": self.progress.to_dict(), "seed": self.seed, "run_options": dict(self.run_options),
                "rng": self.rng, "order": self.order.cpu() if self.order is not None else None,
                "ranks": self.ranks}

    @classmethod
    def from_payload(cls, state: dict, path: str | Path) -> RunState:
        """From last.pt's payload; a missing or mistyped field is a GSASRecError naming the file."""
        import torch

        progress = progress_from(state.get("progress"), path)
        rng = state.get("rng")
        if not _streams(rng):
            raise GSASRecError(f"{path}: 'rng' should map torch, order and negatives to generator states")
        ranks = state.get("ranks")
        if ranks is not None and not (isinstance(ranks, list) and ranks and all(_rank_state(r) for r in ranks)):
            raise GSASRecError(f"{path}: 'ranks' should list each rank's rng and epoch_losses")
        seed = state.get("seed")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise GSASRecError(f"{path}: 'seed' should be a whole number, got {seed!r:.60}")
        options, order = state.get("run_options", {}), state.get("order")
        if not isinstance(options, dict) or (order is not None and not isinstance(order, torch.Tensor)):
            raise GSASRecError(f"{path}: 'run_options' should be a mapping and 'order' a tensor")
        return cls(progress, seed, options, rng, order, ranks)


def _streams(rng) -> bool:
    import torch

    return isinstance(rng, dict) and all(isinstance(rng.get(k), torch.Tensor) for k in ("torch", "order", "negatives"))


def _rank_state(saved) -> bool:
    losses = saved.get("epoch_losses") if isinstance(saved, dict) else None
    return isinstance(saved, dict) and _streams(saved.get("rng")) and isinstance(losses, list) and _numbers(losses)


def _numbers(values: list) -> bool:
    return all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in values)

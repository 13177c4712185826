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
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in saved["epoch_losses"]):
        raise GSASRecError(f"{path}: progress field 'epoch_losses' should hold numbers")
    if saved["epoch"] < 1 or min(saved["batch"], saved["steps"], saved["best_step"]) < 0:
        raise GSASRecError(f"{path}: progress counts out of range (epoch {saved['epoch']}, batch "
                           f"{saved['batch']}, steps {saved['steps']})")
    return Progress(**saved)

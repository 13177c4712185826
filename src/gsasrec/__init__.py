"""gsasrec: gSASRec and SASRec for sequential recommendation, reference-exact and fast.

The names below load on first use, so that `gsasrec --help` and argument errors do not wait for torch.
"""

from __future__ import annotations

import importlib
import os

# After each parallel op, torch's CPU worker threads (GNU OpenMP) spin for 300,000 rounds, milliseconds, before they
# sleep. Between ops a training step runs serial work and the gBCE kernel's own threads (native_gbce.c): on a
# 2-core machine the spinning thread took a core from them, and an ML-1M bf16 step was 7% slower than with 20,000
# rounds (benchmarks/RESULTS.md). libgomp reads this once, when torch loads it: so it is set here, for a process that
# imports gsasrec before torch (the command line does), unless the user has set it.
SPIN_ROUNDS = "20000"
os.environ.setdefault("GOMP_SPINCOUNT", SPIN_ROUNDS)

__version__ = "0.1.0"

_EXPORTS = {"GSASRec": "gsasrec.model", "GSASRecError": "gsasrec.errors",
            "GSASRecExperimentConfig": "gsasrec.config", "load_config": "gsasrec.config",
            "gbce_beta": "gsasrec.loss", "gbce_loss": "gsasrec.loss"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'gsasrec' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)

"""gsasrec: gSASRec and SASRec for sequential recommendation, reference-exact and fast.

The names below load on first use, so that `gsasrec --help` and argument errors do not wait for torch.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {"GSASRec": "gsasrec.model", "GSASRecError": "gsasrec.errors",
            "GSASRecExperimentConfig": "gsasrec.config", "load_config": "gsasrec.config",
            "gbce_beta": "gsasrec.loss", "gbce_loss": "gsasrec.loss"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'gsasrec' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)

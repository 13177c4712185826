"""Export a scorer, history -> scores of every id, to ONNX or TorchScript.

Input `history`: (batch, sequence_length) int64 internal item ids, left-padded with the padding id
num_items + 1 (the most recent item in the last column). Output `scores`: (batch, num_items + 2) float32;
columns 0 and num_items + 1 are not items (mask them before ranking).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch

from gsasrec.errors import GSASRecError
from gsasrec.files import atomic_path
from gsasrec.model import GSASRec

FORMATS = ("onnx", "torchscript")


class Scorer(torch.nn.Module):
    def __init__(self, model: GSASRec):
        super().__init__()
        self.model = model

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        return self.model.last_scores(history)


def example_input(model: GSASRec, batch: int = 2) -> torch.Tensor:
    history = torch.randint(1, model.num_items + 1, (batch, model.sequence_length))
    history[0, : model.sequence_length // 2] = model.padding_id
    return history


def export_scorer(model: GSASRec, path: str | Path, fmt: str) -> Path:
    if fmt not in FORMATS:
        raise GSASRecError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    scorer = Scorer(model.cpu()).eval()  # eval: no dropout in the exported graph
    example = example_input(model)
    with atomic_path(path) as temporary, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # optional-operator notices
        if fmt == "onnx":
            try:
                import onnxscript  # noqa: F401  (the exporter needs it)
            except ImportError:
                raise GSASRecError("ONNX export needs the export extra: pip install 'gsasrec[export]'") from None
            batch = torch.export.Dim("batch")
            torch.onnx.export(scorer, (example,), str(temporary), input_names=["history"],
                              output_names=["scores"], dynamic_shapes=({0: batch},), dynamo=True,
                              external_data=False, verbose=False)  # one self-contained file
        else:
            torch.jit.save(torch.jit.trace(scorer, example), str(temporary))
    return Path(path)

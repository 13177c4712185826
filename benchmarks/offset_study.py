"""The logit offset study: validation nDCG@10 by step for the reference's dynamics and the fixes.

    python benchmarks/offset_study.py successor 600                           # synthetic, ~20 s a variant
    python benchmarks/offset_study.py ml1m 480 --datasets-dir ../shared/datasets   # ~3 min a variant

Variants: reference (N(0, 1) tables, no offset), small (N(0, 0.02) tables, no offset), item (small tables
and the per-item offset: today's default), scalar (small tables and one shared offset, both started at
log(beta / k)). The synthetic set is tests/synthetic.py's successor set (each item's fixed successor comes
next 90% of the time); the model is the issue's (length 50, d 64, 2 blocks, 2 heads, dropout 0.2, 64
negatives, t 0.75, batch 64). ML-1M uses the seed's gSASRec config with bf16.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

from gsasrec import training
from gsasrec.config import make_config
from gsasrec.data.folder import read_dataset
from gsasrec.model import GSASRec
from gsasrec.runs import read_records
from gsasrec.training import RunOptions, train

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from synthetic import write_successor_dataset  # noqa: E402

MODELS = {
    "successor": dict(dataset_name="successor", sequence_length=50, embedding_dim=64, num_blocks=2, num_heads=2,
                      dropout_rate=0.2, negs_per_pos=64, gbce_t=0.75, train_batch_size=64,
                      max_batches_per_epoch=13, early_stopping_patience=10000),
    "ml1m": dict(dataset_name="ml1m", sequence_length=200, embedding_dim=128, num_heads=1, num_blocks=2,
                 dropout_rate=0.5, negs_per_pos=256, gbce_t=0.75, early_stopping_patience=10000),
}
VARIANTS = {
    "reference": dict(init_std=None, logit_offset=False),
    "small": dict(init_std=0.02, logit_offset=False),
    "item": dict(init_std=0.02, logit_offset=True),
    "scalar": dict(init_std=0.02, logit_offset=True),
}


class ScalarOffset(GSASRec):
    """One offset shared by every item instead of one per item (the study's alternative)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        start = float(self.output_bias.detach()[0])
        del self._parameters["output_bias"]
        self.scalar_offset = nn.Parameter(torch.tensor([start]))

    @property
    def output_bias(self) -> torch.Tensor:
        return self.scalar_offset.expand(self.item_embedding.weight.shape[0])

    @output_bias.setter
    def output_bias(self, value) -> None:  # nn.Module.__init__ assigns it; the scalar replaces it
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=sorted(MODELS))
    parser.add_argument("steps", type=int)
    parser.add_argument("--datasets-dir")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="offset-study-"))
    datasets_dir = args.datasets_dir
    if args.dataset == "successor":
        write_successor_dataset(work)
        datasets_dir = work
    dataset = read_dataset(args.dataset, datasets_dir)
    precision = "bf16" if args.dataset == "ml1m" else "fp32"
    print(f"validation nDCG@10 by step ({args.dataset}, seed 0, {precision})")
    for variant in args.variants:
        training.GSASRec = ScalarOffset if variant == "scalar" else GSASRec
        config = make_config(**MODELS[args.dataset], **VARIANTS[variant])
        run_dir = work / variant
        train(config, dataset, RunOptions(output_dir=run_dir, seed=0, max_steps=args.steps, progress=False,
                                          precision=precision))
        curve = " ".join(f"{r['step']}:{r['metrics']['nDCG@10']:.3f}" for r in read_records(run_dir))
        print(f"{variant:<10} {curve}", flush=True)


if __name__ == "__main__":
    main()

"""Where a model's next-item probability goes: summed exactly over the whole catalogue, over the items in
each test user's history, and over the rest (the items a recommender with rated-item filtering returns).

    python benchmarks/rated_mass.py pretrained/ml1m_gsasrec_t1.0.pt --datasets-dir ../shared/datasets

With a calibrated model every sum over all candidates is 1 next item per user. On ML-1M nobody rates a
movie twice, so the true probability of a history item is 0, and what a model puts there is counted by
the catalogue-wide E/O but never served.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from gsasrec.calibration import rated_mask
from gsasrec.checkpoint import dataset_location, load_model
from gsasrec.data.folder import read_dataset
from gsasrec.inference import inference, last_hidden
from gsasrec.scoring import all_logits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--datasets-dir")
    args = parser.parse_args()
    print(f"{'checkpoint':<40} {'all items':>9} {'history':>8} {'unrated':>8}   (expected next items per user)")
    for path in args.checkpoints:
        model, config, payload = load_model(path)
        folder = dataset_location(payload, config.dataset_name, args.datasets_dir)
        test = read_dataset(folder.name, folder.parent).test
        total = in_history = 0.0
        with inference(model):
            for start in range(0, len(test.inputs), 512):
                users = np.arange(start, min(start + 512, len(test.inputs)))
                histories = test.inputs.take(users)
                logits = all_logits(last_hidden(model, histories), model.output_table, model.output_bias)
                probabilities = torch.sigmoid(logits.float())  # (batch, num_items + 2)
                probabilities[:, 0] = probabilities[:, model.padding_id] = 0.0
                total += probabilities.sum().item()
                in_history += probabilities[rated_mask(histories, model.num_items, probabilities.device)].sum().item()
        count = len(test.inputs)
        print(f"{path:<40} {total / count:9.3f} {in_history / count:8.3f} {(total - in_history) / count:8.3f}")


if __name__ == "__main__":
    main()

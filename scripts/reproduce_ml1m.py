"""Train one of the seed's ML-1M configs, evaluate it on test, and ship it under pretrained/.

    python scripts/reproduce_ml1m.py --config configs/ml1m_gsasrec.py --name gsasrec --device cuda \
        --precision auto --max-minutes 12
    python scripts/reproduce_ml1m.py --config configs/ml1m_sasrec.py --name sasrec --device cuda --max-minutes 12

Writes pretrained/<name>.pt (weights-only gsasrec checkpoint: weights, config, dataset stats),
pretrained/<name>.json (seed, steps, wall time, device, validation and test metrics) and
docs/<name>_curve.png (validation nDCG@10 against steps and wall time). `python scripts/seed_table.py`
then prints every shipped checkpoint's test metrics next to the seed's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from gsasrec.checkpoint import load_model, save_checkpoint
from gsasrec.config import load_config
from gsasrec.data.recipes import open_dataset
from gsasrec.evaluation import evaluate_config
from gsasrec.files import write_text_atomic
from gsasrec.runtime import resolve_device
from gsasrec.training import RunOptions, train

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--name", required=True, help="file name under pretrained/")
    parser.add_argument("--datasets-dir")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--max-minutes", type=float)
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=str(REPO / "pretrained"), help="folder for the checkpoint")
    parser.add_argument("--docs", default=str(REPO / "docs"), help="folder for the curve PNG")
    args = parser.parse_args()
    config = load_config(args.config)
    dataset = open_dataset(config.dataset_name, args.datasets_dir)
    device = resolve_device(args.device)
    run_dir = Path("runs") / f"reproduce-{args.name}-{int(time.time())}"
    result = train(config, dataset, RunOptions(output_dir=run_dir, device=device, seed=args.seed,
                                               max_minutes=args.max_minutes, max_steps=args.max_steps,
                                               precision=args.precision, progress=True))
    model, config, payload = load_model(result.best_checkpoint, device=device)
    test = evaluate_config(model, dataset.test, config)
    output, docs = Path(args.output), Path(args.docs)
    output.mkdir(parents=True, exist_ok=True)
    docs.mkdir(parents=True, exist_ok=True)
    save_checkpoint(output / f"{args.name}.pt", model, config, dataset.stats, step=payload["step"],
                    seed=args.seed, val_metrics=payload["val_metrics"], test_metrics=test)
    shutil.copyfile(run_dir / "curve.png", docs / f"{args.name}_curve.png")
    summary = {"config": args.config, "seed": args.seed, "best_step": payload["step"], "steps": result.steps,
               "training_seconds": round(result.seconds, 1), "device": str(device), "precision": args.precision,
               "val_metrics": payload["val_metrics"], "test_metrics": test}
    write_text_atomic(output / f"{args.name}.json", json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

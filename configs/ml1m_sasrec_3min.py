# SASRec (BCE with one negative, gbce_t=0) on ML-1M in about three CPU minutes: the ten-minute recipe's
# model (configs/ml1m_gsasrec_10min.py) with one negative per positive, learning rate 0.002 and its cosine
# decay over 850 steps.
#   gsasrec train --config configs/ml1m_sasrec_3min.py --datasets-dir ../shared/datasets \
#       --precision auto --max-steps 850 --seed 0
import dataclasses
import runpy
from pathlib import Path

recipe = runpy.run_path(str(Path(__file__).with_name("ml1m_gsasrec_10min.py")))["config"]
config = dataclasses.replace(recipe, negs_per_pos=1, gbce_t=0.0, learning_rate=0.002, lr_decay_steps=850)

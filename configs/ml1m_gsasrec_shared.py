# gSASRec on ML-1M in under ten CPU minutes, negatives shared by each batch row: the ten-minute recipe
# (configs/ml1m_gsasrec_10min.py: the seed's model, gBCE with t=0.75 and 256 negatives, the logit offset,
# random windows, dropout 0.3) with shared_negatives=True, whose step costs about half, and so twice the
# steps: a cosine learning-rate decay over 2,800 (7-8 minutes on a 2-core CPU with bf16 units).
#   gsasrec train --config configs/ml1m_gsasrec_shared.py --datasets-dir ../shared/datasets \
#       --precision auto --max-steps 2800 --seed 0
# Measured seeds: benchmarks/RESULTS.md, "Negatives shared by a row".
import dataclasses
import runpy
from pathlib import Path

recipe = runpy.run_path(str(Path(__file__).with_name("ml1m_gsasrec_10min.py")))["config"]
config = dataclasses.replace(recipe, shared_negatives=True, lr_decay_steps=2800)

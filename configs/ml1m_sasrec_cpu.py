# SASRec (BCE: 1 negative, t=0) on ML-1M for a laptop CPU: ml1m_gsasrec_cpu.py (the seed's model with a
# learnable logit offset, N(0, 0.02) tables and random windows) with SASRec's loss, over 3,000 steps.
#   gsasrec train --config configs/ml1m_sasrec_cpu.py --datasets-dir ../shared/datasets \
#       --precision auto --max-steps 3000 --seed 0
import dataclasses
import runpy
from pathlib import Path

recipe = runpy.run_path(str(Path(__file__).with_name("ml1m_gsasrec_cpu.py")))["config"]
config = dataclasses.replace(recipe, negs_per_pos=1, gbce_t=0.0, lr_decay_steps=3000)

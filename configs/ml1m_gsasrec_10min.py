# gSASRec on ML-1M in ten CPU minutes: the CPU recipe (configs/ml1m_gsasrec_cpu.py: the seed's model and
# loss, gBCE with t=0.75 and 256 negatives, the logit offset, random windows) with dropout 0.3 instead of
# 0.5 and its cosine learning-rate decay over 1,400 steps (about 10 minutes on a 2-core CPU with bf16).
#   gsasrec train --config configs/ml1m_gsasrec_10min.py --datasets-dir ../shared/datasets \
#       --precision auto --max-steps 1400 --seed 0
# Measured settings and seeds: benchmarks/RESULTS.md, "The seed's quality in ten CPU minutes".
import dataclasses
import runpy
from pathlib import Path

recipe = runpy.run_path(str(Path(__file__).with_name("ml1m_gsasrec_cpu.py")))["config"]
config = dataclasses.replace(recipe, dropout_rate=0.3, lr_decay_steps=1400)

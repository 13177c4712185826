# gSASRec on ML-1M past 0.1857 within a CPU hour: the 21-minute recipe (configs/ml1m_gsasrec_30min.py:
# gBCE with t=0.75, the logit offset, random windows, dropout 0.3, 1,024 negatives drawn once per batch
# row, a cosine decay over 5,000 steps) with six Transformer blocks instead of three: 5,000 steps in about
# 34 minutes on the 2-core Zen 4 machine with bf16 units (benchmarks/RESULTS.md, seventeenth session).
#   gsasrec train --config configs/ml1m_gsasrec_60min.py --datasets-dir ../shared/datasets \
#       --precision auto --max-steps 5000 --seed 0
import dataclasses
import runpy
from pathlib import Path

recipe = runpy.run_path(str(Path(__file__).with_name("ml1m_gsasrec_30min.py")))["config"]
config = dataclasses.replace(recipe, num_blocks=6)

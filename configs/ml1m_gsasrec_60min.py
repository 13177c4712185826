# gSASRec on ML-1M toward 0.1857 within a CPU hour: the 21-minute recipe (configs/ml1m_gsasrec_30min.py:
# gBCE with t=0.75, the logit offset, random windows, dropout 0.3, 1,024 negatives drawn once per batch
# row, three Transformer blocks) with its cosine decay stretched from 5,000 to 12,000 steps, about 50
# minutes on the 2-core Zen 4 machine (benchmarks/RESULTS.md, fourteenth session).
import dataclasses
import runpy
from pathlib import Path

recipe = runpy.run_path(str(Path(__file__).with_name("ml1m_gsasrec_30min.py")))["config"]
config = dataclasses.replace(recipe, lr_decay_steps=12000)

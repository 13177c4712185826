# gSASRec with gBCE t=1.0 on ML-1M for a laptop CPU: ml1m_gsasrec_cpu.py with t=1.0, which makes
# sigmoid(score) a calibrated probability that an item is the user's next one.
#   gsasrec train --config configs/ml1m_gsasrec_t1_cpu.py --datasets-dir ../shared/datasets \
#       --precision auto --max-steps 4000 --seed 0
import dataclasses
import runpy
from pathlib import Path

recipe = runpy.run_path(str(Path(__file__).with_name("ml1m_gsasrec_cpu.py")))["config"]
config = dataclasses.replace(recipe, gbce_t=1.0, lr_decay_steps=4000)

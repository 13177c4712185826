# gSASRec with t=1.0 (calibrated probabilities) on ML-1M in under ten CPU minutes: the shared-negatives
# recipe (configs/ml1m_gsasrec_shared.py) with gbce_t=1.0.
#   gsasrec train --config configs/ml1m_gsasrec_t1_shared.py --datasets-dir ../shared/datasets \
#       --precision auto --max-steps 2800 --seed 0
import dataclasses
import runpy
from pathlib import Path

recipe = runpy.run_path(str(Path(__file__).with_name("ml1m_gsasrec_shared.py")))["config"]
config = dataclasses.replace(recipe, gbce_t=1.0)

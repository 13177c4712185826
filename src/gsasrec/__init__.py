"""gsasrec: gSASRec and SASRec for sequential recommendation, reference-exact and fast."""

from gsasrec.config import GSASRecExperimentConfig, load_config
from gsasrec.errors import GSASRecError
from gsasrec.loss import gbce_beta, gbce_loss
from gsasrec.model import GSASRec

__version__ = "0.1.0"

__all__ = ["GSASRec", "GSASRecError", "GSASRecExperimentConfig", "gbce_beta", "gbce_loss", "load_config"]

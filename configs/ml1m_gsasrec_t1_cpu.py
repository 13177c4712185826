# gSASRec with gBCE t=1.0 on ML-1M for a laptop CPU: as ml1m_gsasrec_cpu.py, but t=1.0, which makes
# sigmoid(score) a calibrated probability that an item is the user's next one.
#   gsasrec train --config configs/ml1m_gsasrec_t1_cpu.py --datasets-dir ../shared/datasets \
#       --precision bf16 --max-steps 4000 --seed 0
from config import GSASRecExperimentConfig

config = GSASRecExperimentConfig(
    dataset_name='ml1m',
    sequence_length=200,
    embedding_dim=128,
    num_heads=1,
    num_blocks=2,
    dropout_rate=0.5,
    negs_per_pos=256,
    gbce_t=1.0,
    random_windows=True,
    lr_decay_steps=4000,
    early_stopping_patience=1000,
)

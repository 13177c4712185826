# SASRec (BCE: 1 negative, t=0) on ML-1M for a laptop CPU: the seed's SASRec model and loss, with a
# learnable logit offset and N(0, 0.02) tables (the defaults), a random window of each long history per
# batch, and a cosine learning-rate decay over the run's 3,000 steps.
#   gsasrec train --config configs/ml1m_sasrec_cpu.py --datasets-dir ../shared/datasets \
#       --precision bf16 --max-steps 3000 --seed 0
from config import GSASRecExperimentConfig

config = GSASRecExperimentConfig(
    dataset_name='ml1m',
    sequence_length=200,
    embedding_dim=128,
    num_heads=1,
    num_blocks=2,
    dropout_rate=0.5,
    negs_per_pos=1,
    gbce_t=0.0,
    random_windows=True,
    lr_decay_steps=3000,
    early_stopping_patience=1000,
)

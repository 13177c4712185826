# gSASRec on ML-1M for a laptop CPU: the seed's model and loss (gBCE, t=0.75, 256 negatives), with the
# defaults that make gBCE learn (a learnable logit offset and N(0, 0.02) tables), a random window of each
# long history per batch, and a cosine learning-rate decay over the run's 4,000 steps.
#   gsasrec train --config configs/ml1m_gsasrec_cpu.py --datasets-dir ../shared/datasets \
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
    gbce_t=0.75,
    random_windows=True,
    lr_decay_steps=4000,
    # 512 validation users make nDCG@10 jump by about 0.005 between epochs: a short patience would stop
    # on one lucky epoch, so the budget (--max-steps) ends the run.
    early_stopping_patience=1000,
)

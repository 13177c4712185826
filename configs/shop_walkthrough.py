# gSASRec for the synthetic shop of docs/walkthrough.md (12 categories x 20 products, histories of 4 to
# 40 purchases): a small model with today's defaults (logit offset, small tables), a random window of each
# history per batch and a cosine learning-rate decay over a 600-step budget.
#   gsasrec train --config configs/shop_walkthrough.py --datasets-dir datasets --max-steps 600 --seed 0
from config import GSASRecExperimentConfig

config = GSASRecExperimentConfig(
    dataset_name='shop',
    sequence_length=50,
    embedding_dim=64,
    num_heads=2,
    num_blocks=2,
    dropout_rate=0.2,
    negs_per_pos=64,
    gbce_t=0.75,
    train_batch_size=128,
    early_stopping_patience=1000,
    random_windows=True,
    lr_decay_steps=600,
)

"""gSASRec learns from its defaults: a learnable logit offset and small tables (loss.initial_logit_offset).

The synthetic set is the one on which the reference's own recipe stays below a random ranking: each item
has a fixed successor that comes next 90% of the time (REFERENCE-NOTES.md, "gBCE's slow start").
"""

import math

import pytest
import torch
from synthetic import write_successor_dataset

from gsasrec.config import make_config
from gsasrec.data.folder import read_dataset
from gsasrec.loss import gbce_beta, gbce_loss, initial_logit_offset
from gsasrec.model import GSASRec
from gsasrec.training import RunOptions, train

# The set-up: length 50, d 64, 2 blocks, 2 heads, dropout 0.2, batch 64; only the dataset and
# the model's size are given, everything else is a default.
MODEL = dict(dataset_name="successor", sequence_length=50, embedding_dim=64, num_blocks=2, num_heads=2,
             dropout_rate=0.2, train_batch_size=64, max_batches_per_epoch=13, early_stopping_patience=1000)
STEPS = 130


@pytest.fixture(scope="module")
def successor(tmp_path_factory):
    root = tmp_path_factory.mktemp("successor")
    write_successor_dataset(root)
    return read_dataset("successor", root)


def best_ndcg(dataset, tmp_path, **fields):
    config = make_config(**MODEL, **fields)
    result = train(config, dataset, RunOptions(output_dir=tmp_path / "run", seed=0, max_steps=STEPS,
                                                progress=False))
    return result.best_metric


@pytest.mark.parametrize("loss_fields", [
    dict(negs_per_pos=64, gbce_t=0.75),
    dict(negs_per_pos=64, gbce_t=1.0),
    dict(negs_per_pos=1, gbce_t=0.0),  # SASRec
], ids=["gbce-t0.75", "gbce-t1.0", "sasrec"])
def test_default_config_learns_the_pattern_within_a_few_hundred_steps(successor, tmp_path, loss_fields):
    assert best_ndcg(successor, tmp_path, **loss_fields) >= 0.6


def test_the_references_dynamics_stay_at_popularity_level_on_the_same_budget(successor, tmp_path):
    # The explicit values that restore the reference's training: N(0, 1) tables and no offset.
    assert best_ndcg(successor, tmp_path, negs_per_pos=64, gbce_t=0.75, init_std=None, logit_offset=False) < 0.1


@pytest.mark.parametrize("t", [0.0, 0.5, 0.75, 1.0])
def test_initial_offset_minimises_the_loss_of_a_constant_logit(t):
    config = make_config(dataset_name="x", negs_per_pos=16, gbce_t=t)
    offset = initial_logit_offset(config, num_items=100)
    beta = gbce_beta(100, 16, t)
    assert offset == pytest.approx(math.log(beta / 16))

    def loss_at(c):
        return gbce_loss(torch.full((1, 17), c, dtype=torch.float64), beta).item()

    assert loss_at(offset) < loss_at(offset - 0.01) and loss_at(offset) < loss_at(offset + 0.01)
    assert initial_logit_offset(make_config(dataset_name="x", loss="ce"), 100) == 0.0


def test_offset_is_a_per_item_parameter_started_at_the_constant_and_absent_in_the_references_model():
    config = make_config(dataset_name="x", embedding_dim=8, num_heads=1, num_blocks=1, sequence_length=5)
    model = GSASRec.from_config(config, num_items=20)
    assert model.output_bias.shape == (22,)
    assert torch.all(model.output_bias == initial_logit_offset(config, 20))
    assert model.output_bias.requires_grad
    assert model.item_embedding.weight.std().item() == pytest.approx(0.02, rel=0.2)
    reference = GSASRec.from_config(make_config(dataset_name="x", embedding_dim=8, num_heads=1, num_blocks=1,
                                                sequence_length=5, init_std=None, logit_offset=False), 20)
    assert reference.output_bias is None and "output_bias" not in reference.state_dict()
    assert reference.item_embedding.weight.std().item() == pytest.approx(1.0, rel=0.2)
    # A state_dict without the offset (the reference's) loads into a model with one as an offset of 0
    # (checkpoint.with_zero_bias, the one place that knows it).
    from gsasrec.checkpoint import with_zero_bias

    model.load_state_dict(with_zero_bias(reference.state_dict(), model))
    assert torch.all(model.output_bias == 0)
    inputs = torch.tensor([[21, 3, 4, 5, 6]])
    model.eval(), reference.eval()
    torch.testing.assert_close(model.last_scores(inputs), reference.last_scores(inputs), rtol=0, atol=0)

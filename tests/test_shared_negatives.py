"""Negatives shared by the positions of a batch row (config shared_negatives): the same logits and gradients
as scoring each position against its row's negatives one by one, every position of a row against the same
draws, and a training step that stays bit-identical from the same seed."""

import numpy as np
import pytest
import torch

from gsasrec.batches import TrainingBatches
from gsasrec.config import make_config
from gsasrec.data.folder import Sequences
from gsasrec.errors import GSASRecError
from gsasrec.loss import gbce_loss, gbce_loss_split
from gsasrec.model import GSASRec
from gsasrec.objectives import objective_for
from gsasrec.scoring import candidate_logits, row_shared_logits
from gsasrec.step import TrainingStep

NUM_ITEMS, LENGTH, DIM, NEGATIVES = 30, 12, 8, 5


def test_row_shared_logits_equal_each_position_scored_against_its_rows_negatives():
    torch.manual_seed(0)
    hidden = torch.randn(3, LENGTH, DIM, dtype=torch.float64, requires_grad=True)
    table = torch.randn(NUM_ITEMS + 2, DIM, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(NUM_ITEMS + 2, dtype=torch.float64, requires_grad=True)
    valid = torch.zeros(3, LENGTH, dtype=torch.bool)
    valid[0, -1:] = True  # a user of one position
    valid[1, 2:] = True
    valid[2, :5] = valid[2, 7:] = True  # two users packed into one row
    labels = torch.randint(1, NUM_ITEMS + 1, (3, LENGTH))
    negatives = torch.randint(1, NUM_ITEMS + 1, (3, NEGATIVES))
    weights = torch.randn(int(valid.sum()), 1 + NEGATIVES, dtype=torch.float64)

    positive, scored = row_shared_logits(hidden, labels, table, negatives, bias)
    shared = torch.cat([positive[valid].unsqueeze(1), scored[valid]], dim=1)  # (positions, 1 + negatives)
    gradients = torch.autograd.grad((shared * weights).sum(), (hidden, table, bias))
    rows = torch.arange(3).unsqueeze(1).expand(3, LENGTH)[valid]  # (positions,) the row of each position
    one_by_one = candidate_logits(hidden[valid], table, labels[valid], negatives[rows], dense=False, bias=bias)
    expected = torch.autograd.grad((one_by_one * weights).sum(), (hidden, table, bias))

    assert torch.allclose(shared.double(), one_by_one, atol=1e-12)
    for got, want in zip(gradients, expected):
        assert torch.allclose(got, want, atol=1e-12)


def test_the_masked_grid_loss_equals_the_loss_of_the_valid_positions():
    torch.manual_seed(1)
    positive = torch.randn(3, LENGTH, dtype=torch.float64)
    scored = torch.randn(3, LENGTH, NEGATIVES, dtype=torch.float64)
    valid = torch.rand(3, LENGTH) < 0.6
    logits = torch.cat([positive[valid].unsqueeze(1), scored[valid]], dim=1)
    assert torch.allclose(gbce_loss_split(positive, scored, 0.3, valid), gbce_loss(logits, 0.3), atol=1e-12)


def histories(lengths, seed=0):
    rng = np.random.default_rng(seed)
    return Sequences.from_lists([list(rng.integers(1, NUM_ITEMS + 1, n)) for n in lengths])


def config(**fields):
    return make_config(dataset_name="synthetic", sequence_length=LENGTH, embedding_dim=DIM, num_heads=2,
                       num_blocks=1, negs_per_pos=NEGATIVES, train_batch_size=4, **fields)


def one_batch(pack: bool):
    batches = TrainingBatches(histories([3, LENGTH + 4, 7, 2]), LENGTH, NUM_ITEMS + 1, 4, torch.device("cpu"),
                              False, pack=pack)
    return batches.batch(torch.arange(4), 0, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("pack", [False, True])
def test_every_position_of_a_row_scores_the_same_negatives(pack):
    batch = one_batch(pack)
    model = GSASRec.from_config(config(), NUM_ITEMS)
    objective = objective_for(config(shared_negatives=True), NUM_ITEMS)
    hidden = model(batch.inputs, positions=batch.positions, segments=batch.segments)
    valid = batch.inputs != model.padding_id
    generator = torch.Generator().manual_seed(0)
    logits, candidates = objective.position_logits(hidden, valid, batch.labels, model, generator)
    assert logits.shape == candidates.shape == (int(valid.sum()), 1 + NEGATIVES)
    assert torch.equal(candidates[:, 0], batch.labels[valid])
    rows = torch.arange(len(valid)).unsqueeze(1).expand_as(valid)[valid]  # (positions,)
    for row in rows.unique():
        negatives = candidates[rows == row, 1:]
        assert (negatives == negatives[0]).all()
    assert len({tuple(candidates[rows == row, 1:][0].tolist()) for row in rows.unique()}) == len(rows.unique())


def losses(shared: bool, steps: int = 3, loss: str = "gbce") -> list[float]:
    torch.manual_seed(0)
    settings = config(shared_negatives=shared, dropout_rate=0.2, loss=loss)
    model = GSASRec.from_config(settings, NUM_ITEMS).train()
    step = TrainingStep(model, torch.optim.Adam(model.parameters()), settings, NUM_ITEMS,
                        torch.Generator().manual_seed(0))
    batch = one_batch(pack=True)
    return [float(step(batch)) for _ in range(steps)]


@pytest.mark.parametrize("loss", ["gbce", "sampled_ce"])
def test_a_step_with_shared_negatives_learns_and_repeats_bit_for_bit(loss):
    first = losses(shared=True, loss=loss)
    assert first == losses(shared=True, loss=loss)
    assert first[-1] < first[0]
    assert first != losses(shared=False, loss=loss)  # the option changes which negatives are drawn


def test_shared_negatives_must_be_a_boolean():
    with pytest.raises(GSASRecError, match="'shared_negatives' must be True or False, got 'yes'"):
        config(shared_negatives="yes")

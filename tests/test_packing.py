"""Packed batches (several users per row) give each user what a row of their own gives: the same
windows, the same sequence embeddings, the same loss and gradients, to float tolerance."""

import numpy as np
import pytest
import torch

from gsasrec.batches import Batch, TrainingBatches, pack_lengths
from gsasrec.config import make_config
from gsasrec.data.folder import Sequences
from gsasrec.loss import gbce_beta, gbce_loss
from gsasrec.model import GSASRec
from gsasrec.scoring import candidate_logits

LENGTH = 50  # sequence_length


def histories(lengths, num_items, seed=0):
    rng = np.random.default_rng(seed)
    return Sequences.from_lists([list(rng.integers(1, num_items + 1, n)) for n in lengths])


def user_positions(batch: Batch):
    """{user: [(input, label, position), ...] in order} of a batch, packed or not."""
    found = {}
    for row in range(batch.inputs.shape[0]):
        for column in range(batch.inputs.shape[1]):
            item = int(batch.inputs[row, column])
            if batch.segments is None:
                user, position = row, column
            else:
                user, position = int(batch.segments[row, column]), int(batch.positions[row, column])
            if item != PADDING and user >= 0:
                found.setdefault(user, []).append((item, int(batch.labels[row, column]), position))
    return found


NUM_ITEMS = 40
PADDING = NUM_ITEMS + 1
# Users of length 0 (an empty training line of an imported log), 1 (no training position), 2 (one),
# sequence_length, sequence_length + 1 and longer.
LENGTHS = [0, 1, 2, 3, LENGTH, LENGTH + 1, LENGTH + 7, 17, 9, 30, 2, 44]


@pytest.mark.parametrize("random_windows", [False, True])
def test_packed_batches_hold_each_users_window_with_its_own_positions(random_windows):
    train = histories(LENGTHS, NUM_ITEMS)
    made = {}
    for pack in (False, True):
        batches = TrainingBatches(train, LENGTH, PADDING, 8, torch.device("cpu"), random_windows, pack=pack)
        order = torch.randperm(len(LENGTHS), generator=torch.Generator().manual_seed(1))
        made[pack] = [batches.batch(order, index, generator=torch.Generator().manual_seed(index))
                      for index in range(len(batches))]
    for plain, packed in zip(made[False], made[True]):
        assert user_positions(packed) == user_positions(plain)
        assert packed.inputs.shape[0] < plain.inputs.shape[0]  # fewer rows: that is the point


def test_first_fit_packing_places_every_segment_without_overlap():
    rng = np.random.default_rng(0)
    lengths = rng.integers(0, LENGTH + 1, 300)
    rows, offsets, count = pack_lengths(lengths, LENGTH)
    used = np.zeros((count, LENGTH), dtype=int)
    for row, offset, length in zip(rows, offsets, lengths):
        used[row, offset:offset + length] += 1
    assert used.max() == 1 and used.sum() == lengths.sum()
    assert count <= int(np.ceil(lengths.sum() / LENGTH * 1.25)) + 1


def loss_and_gradients(model, batch: Batch, negatives_by_user: dict, beta: float):
    """gBCE over the batch's positions with each (user, position)'s own negatives, and the gradients."""
    model.zero_grad()
    hidden = model(batch.inputs, positions=batch.positions, segments=batch.segments)
    valid = batch.inputs != PADDING
    keys = user_keys(batch)[valid]  # (positions, 2): user, position
    if batch.segments is not None:
        valid = valid & (batch.segments >= 0)
    negatives = torch.stack([negatives_by_user[tuple(k.tolist())] for k in keys])
    logits = candidate_logits(hidden[valid], model.output_table, batch.labels[valid], negatives, True,
                              model.output_bias)
    # Sum in a fixed order (by user and position), so that the two layouts add alike.
    order = torch.from_numpy(np.lexsort((keys[:, 1].numpy(), keys[:, 0].numpy())))
    loss = gbce_loss(logits[order], beta)
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters()}


def user_keys(batch: Batch) -> torch.Tensor:
    rows, width = batch.inputs.shape
    if batch.segments is None:
        return torch.stack(torch.broadcast_tensors(torch.arange(rows)[:, None], torch.arange(width)[None, :]), -1)
    return torch.stack([batch.segments, batch.positions], -1)


@pytest.mark.parametrize("lengths,length", [(LENGTHS, LENGTH), ([200, 150, 1, 2, 200, 201, 60, 97, 3, 200], 200)],
                         ids=["small", "ml1m-shapes"])
def test_packed_loss_and_gradients_equal_the_unpacked_ones(lengths, length):
    config = make_config(dataset_name="x", sequence_length=length, embedding_dim=32, num_heads=2, num_blocks=2,
                         negs_per_pos=16, dropout_rate=0.0)
    torch.manual_seed(0)
    model = GSASRec.from_config(config, NUM_ITEMS)
    train = histories(lengths, NUM_ITEMS, seed=3)
    generator = torch.Generator().manual_seed(0)
    negatives = {(u, p): torch.randint(1, NUM_ITEMS + 1, (16,), generator=generator)
                 for u in range(len(lengths)) for p in range(length)}
    beta = gbce_beta(NUM_ITEMS, 16, 0.75)
    results = []
    for pack in (False, True):
        batches = TrainingBatches(train, length, PADDING, len(lengths), torch.device("cpu"), pack=pack)
        results.append(loss_and_gradients(model, batches.batch(torch.arange(len(lengths)), 0), negatives, beta))
    (plain_loss, plain_grads), (packed_loss, packed_grads) = results
    assert packed_loss.item() == pytest.approx(plain_loss.item(), rel=1e-5)
    for name, grad in plain_grads.items():
        torch.testing.assert_close(packed_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)

"""gBCE: the float32 closed form against the reference's float64 logit transform, and its properties."""

import pytest
import torch
import torch.nn.functional as F

from gsasrec.loss import gbce_beta, gbce_loss


def reference_style_gbce(logits, beta):
    """The seed README's transform (float64, clamps at 1e-10) followed by plain BCE, written out."""
    positive = logits[..., :1].double()
    eps = 1e-10
    probs = torch.clamp(torch.sigmoid(positive), eps, 1 - eps)
    adjusted = torch.clamp(probs.pow(-beta), 1 + eps, torch.finfo(torch.float64).max)
    transformed = torch.clamp(1.0 / (adjusted - 1), eps, torch.finfo(torch.float64).max).log()
    all_logits = torch.cat([transformed, logits[..., 1:].double()], -1)
    labels = torch.zeros_like(all_logits)
    labels[..., 0] = 1
    return F.binary_cross_entropy_with_logits(all_logits, labels)


@pytest.mark.parametrize("negatives", [1, 4, 256])
@pytest.mark.parametrize("t", [0.0, 0.25, 0.5, 0.75, 1.0])
def test_closed_form_equals_reference_transform(negatives, t):
    torch.manual_seed(negatives)
    logits = torch.randn(3, 7, 1 + negatives) * 4  # inside the transform's clamp-free range
    beta = gbce_beta(3416, negatives, t)
    assert gbce_loss(logits, beta).item() == pytest.approx(reference_style_gbce(logits, beta).item(), rel=1e-6)


def test_t_zero_is_plain_bce():
    logits = torch.randn(10, 5)
    labels = torch.zeros(10, 5)
    labels[:, 0] = 1
    assert gbce_beta(100, 4, 0.0) == pytest.approx(1.0)
    expected = F.binary_cross_entropy_with_logits(logits, labels)
    assert gbce_loss(logits, 1.0).item() == pytest.approx(expected.item(), rel=1e-6)


def test_t_one_gives_beta_alpha():
    assert gbce_beta(1001, 256, 1.0) == pytest.approx(256 / 1000)


def test_stable_and_differentiable_at_extreme_logits():
    logits = torch.tensor([[80.0, -80.0, 90.0], [-90.0, 50.0, -50.0]], requires_grad=True)
    loss = gbce_loss(logits, gbce_beta(3416, 2, 0.75))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    # Outside the reference's clamp range the closed form still has a gradient.
    assert logits.grad[1, 0] < 0


def test_mask_excludes_positions():
    logits = torch.randn(2, 3, 5)
    mask = torch.tensor([[0, 1, 1], [1, 1, 0]])
    expected = gbce_loss(logits[mask.bool()], 0.5)
    assert gbce_loss(logits, 0.5, mask).item() == pytest.approx(expected.item(), rel=1e-6)


def test_full_ce_is_softmax_cross_entropy_over_items_only():
    from gsasrec.loss import full_ce_loss

    torch.manual_seed(0)
    all_logits = torch.randn(6, 12)  # 10 items: columns 0 (id 0) and 11 (padding) are not items
    positives = torch.tensor([1, 5, 10, 3, 3, 7])
    expected = F.cross_entropy(all_logits[:, 1:11], positives - 1)
    assert full_ce_loss(all_logits, positives).item() == pytest.approx(expected.item(), rel=1e-6)
    all_logits[:, 0] = all_logits[:, 11] = 1e4  # huge non-item logits change nothing
    assert full_ce_loss(all_logits, positives).item() == pytest.approx(expected.item(), rel=1e-6)


def test_sampled_ce_leaves_out_negatives_equal_to_the_positive():
    from gsasrec.loss import sampled_ce_loss

    logits = torch.tensor([[2.0, 1.0, 5.0, 0.5]])
    candidates = torch.tensor([[7, 3, 7, 4]])  # the second negative is the positive itself
    expected = F.cross_entropy(torch.tensor([[2.0, 1.0, 0.5]]), torch.tensor([0]))
    assert sampled_ce_loss(logits, candidates).item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize("loss", ["ce", "sampled_ce"])
def test_other_losses_train_end_to_end(tmp_path, loss):
    import json

    from synthetic import write_config, write_cycle_dataset

    from gsasrec.cli import main

    write_cycle_dataset(tmp_path / "datasets", num_users=300, num_items=30, val_users=32)
    config = write_config(tmp_path / "c.py", loss=loss, init_std=0.05, learning_rate=0.005, max_epochs=10,
                          max_batches_per_epoch=10, negs_per_pos=8, early_stopping_patience=100)
    assert main(["train", "--config", str(config), "--datasets-dir", str(tmp_path / "datasets"),
                 "--output-dir", str(tmp_path / "run"), "--seed", "0"]) == 0
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["loss"] < records[0]["loss"]
    assert max(r["metrics"]["nDCG@10"] for r in records) > 0.5  # popularity is about 0.1 here

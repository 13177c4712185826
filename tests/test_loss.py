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

"""Model behaviour that the reference cases do not pin down: padding, NaN-freedom, width trimming."""

from pathlib import Path

import pytest
import torch

from gsasrec.model import GSASRec


def small_model(dropout=0.3, reuse=False, num_items=20, sequence_length=10):
    torch.manual_seed(0)
    return GSASRec(num_items, sequence_length, embedding_dim=16, num_heads=2, num_blocks=2,
                   dropout_rate=dropout, reuse_item_embeddings=reuse)


def test_no_nan_in_forward_or_backward_with_all_padding_rows():
    model = small_model().train()
    pad = model.padding_id
    inputs = torch.tensor([[pad] * 10, [pad] * 9 + [3], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]])
    hidden = model(inputs)
    assert torch.isfinite(hidden).all()
    (hidden.sum() + model.last_scores(inputs).sum()).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name


def test_padding_rows_do_not_influence_real_positions():
    model = small_model().eval()
    pad = model.padding_id
    a = torch.tensor([[pad, pad, pad, pad, pad, pad, 4, 5, 6, 7]])
    # Changing what sits under the padding mask (here: nothing, then a different left context
    # length but the same items at the same columns) must not change the real positions.
    b = torch.tensor([[pad, pad, pad, pad, pad, pad, pad, pad, pad, 7]])
    with torch.no_grad():
        ha, hb = model(a), model(b)
    assert not torch.allclose(ha[0, -1], hb[0, -1])  # the history matters
    with torch.no_grad():
        again = model(a.clone())
    torch.testing.assert_close(ha, again)


def test_trimmed_width_equals_full_width_at_real_positions():
    model = small_model().eval()
    pad = model.padding_id
    full = torch.tensor([[pad] * 6 + [4, 5, 6, 7], [pad] * 7 + [1, 2, 3]])
    trimmed = full[:, -4:]
    with torch.no_grad():
        torch.testing.assert_close(model(trimmed)[:, -1], model(full)[:, -1], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(model.last_scores(trimmed), model.last_scores(full), atol=1e-5, rtol=1e-5)


def test_last_only_equals_the_last_row_of_the_full_computation():
    model = small_model().eval()
    inputs = torch.randint(1, 21, (4, 10))
    with torch.no_grad():
        torch.testing.assert_close(model(inputs, last_only=True)[:, -1], model(inputs)[:, -1])


def test_parameter_count_equals_the_reference_ml1m_checkpoint(reference_dir):
    # REFERENCE-NOTES.md says 1,504,512; the reference's own checkpoint holds 1,067,008 values, as here.
    state_dict = torch.load(reference_dir / "ml1m_gsasrec_step1008.pt", weights_only=True, map_location="cpu")
    model = GSASRec(3416, 200, embedding_dim=128, num_heads=1, num_blocks=2, dropout_rate=0.5)
    assert sum(p.numel() for p in model.parameters()) == sum(v.numel() for v in state_dict.values())


def test_cpu_dropout_keeps_the_rate_and_the_expectation():
    from gsasrec.dropout import dropout

    torch.manual_seed(0)
    x = torch.ones(200_000)
    y = dropout(x, 0.3, training=True)
    assert abs((y == 0).float().mean().item() - 0.3) < 0.01
    assert abs(y.mean().item() - 1.0) < 0.01
    assert torch.equal(dropout(x, 0.3, training=False), x)


def blocked_attention_case(width: int, heads: int, dtype=torch.float64):
    from gsasrec.model import attention_mask

    torch.manual_seed(0)
    valid = torch.rand(3, width) > 0.2
    valid[2] = False  # a row of padding only: each query attends itself alone
    segments = (torch.arange(width) // 37).expand(3, width)  # packed rows: three users and a part
    allowed = attention_mask(valid, segments)
    q, k, v = (torch.randn(3, heads, width, 8, dtype=dtype, requires_grad=True) for _ in range(3))
    return q, k, v, allowed, torch.randn(3, heads, width, 8, dtype=dtype)


@pytest.mark.parametrize("width", [1, 7, 50, 130, 200])
def test_blocked_causal_attention_equals_sdpa_without_dropout(width):
    from gsasrec.attention import causal_attention_with_dropout

    q, k, v, allowed, grad = blocked_attention_case(width, heads=2)
    blocked = causal_attention_with_dropout(q, k, v, allowed, 0.0)
    sdpa = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
    torch.testing.assert_close(blocked, sdpa, atol=1e-12, rtol=1e-12)
    for ours, theirs in zip(torch.autograd.grad(blocked, (q, k, v), grad), torch.autograd.grad(sdpa, (q, k, v), grad)):
        torch.testing.assert_close(ours, theirs, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_blocked_causal_attention_with_dropout_equals_autograd_with_the_same_masks(dtype):
    """Each block of queries draws its mask in turn from the global generator: the same draws, made by
    an autograd computation of the whole (width, width) scores, give the same result and gradients."""
    from gsasrec.attention import causal_attention_with_dropout, query_blocks
    from gsasrec.dropout import kept_scale

    q, k, v, allowed, grad = blocked_attention_case(130, heads=2, dtype=dtype)
    torch.manual_seed(5)
    blocked = causal_attention_with_dropout(q, k, v, allowed, 0.3)
    ours = torch.autograd.grad(blocked, (q, k, v), grad)
    torch.manual_seed(5)
    mask = torch.zeros(3, 2, 130, 130, dtype=dtype)
    for start, end in query_blocks(130, dtype):
        mask[:, :, start:end, :end] = kept_scale((3 * 2, end - start, end), 0.3, dtype).view(3, 2, end - start, end)
    scores = (q @ k.transpose(-2, -1)) * 8 ** -0.5
    weights = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)
    reference = (weights * mask) @ v
    tolerance = {"atol": 0.05, "rtol": 0.05} if dtype == torch.bfloat16 else {}
    torch.testing.assert_close(blocked, reference, **tolerance)
    for mine, theirs in zip(ours, torch.autograd.grad(reference, (q, k, v), grad)):
        torch.testing.assert_close(mine, theirs, **tolerance)
    assert blocked.dtype == dtype and all(g.dtype == dtype for g in ours)


def test_cpu_dropout_keeps_each_element_with_probability_one_minus_rate_and_follows_the_seed():
    from gsasrec.dropout import dropout, kept_scale

    for rate in (0.1, 0.3, 0.5, 0.9):
        mask = kept_scale(torch.Size([400, 500]), rate)
        assert abs((mask > 0).float().mean().item() - (1 - rate)) < 0.005
        assert set(mask.unique().tolist()) == {0.0, torch.tensor(1 / (1 - rate)).item()}  # the scale in float32
    x = torch.ones(300, 200)
    torch.manual_seed(3)
    first = dropout(x, 0.5, True)
    torch.manual_seed(3)
    assert torch.equal(dropout(x, 0.5, True), first)  # the global generator: saved and restored on resume
    assert set(first.unique().tolist()) == {0.0, 2.0}  # kept elements scaled by 1 / (1 - rate)
    assert dropout(x, 0.5, False) is x and dropout(x, 0.0, True) is x


def test_loading_a_checkpoint_does_not_import_torch_dynamo(tmp_path):
    """Building the model on the meta device imported torch._dynamo: 1.7 s of every evaluate."""
    import subprocess
    import sys

    script = ("import sys, torch; from gsasrec.checkpoint import load_model; "
              "load_model('pretrained/ml1m_gsasrec_t0.75.pt'); print('torch._dynamo' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=Path(__file__).parent.parent)
    assert result.stdout.strip() == "False", result.stderr

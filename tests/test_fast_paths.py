"""Fast paths equal the plain ones: logits (dense vs gather), evaluation (trimmed vs full width, the
ranking shortcuts vs the full computation)."""

import numpy as np
import pytest
import torch

from gsasrec import native
from gsasrec.batches import left_padded
from gsasrec.data.folder import Sequences
from gsasrec.evaluation import BATCH_POSITIONS, length_sorted_batches, predict_top
from gsasrec.loss import gbce_loss
from gsasrec.model import GSASRec
from gsasrec.scoring import candidate_logits, gather_rows, mask_scores, use_dense_logits


def test_dense_and_gather_logits_give_the_same_loss_and_gradients():
    torch.manual_seed(0)
    table = torch.randn(52, 16, requires_grad=True)
    hidden = torch.randn(30, 16, requires_grad=True)
    positives = torch.randint(1, 51, (30,))
    negatives = torch.randint(1, 51, (30, 8))
    results = []
    for dense in (True, False):
        loss = gbce_loss(candidate_logits(hidden, table, positives, negatives, dense), 0.4)
        grads = torch.autograd.grad(loss, (hidden, table))
        results.append((loss, *grads))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_logit_path_choice():
    assert use_dense_logits(3416, 256, 13_800, "cuda")  # ML-1M gSASRec: one matmul beats a 257-wide gather
    assert not use_dense_logits(3416, 256, 13_800, "cpu")  # ... but not the CPU's bagged products
    assert use_dense_logits(300, 256, 13_800, "cpu")  # a catalogue near the candidates' count
    for device in ("cpu", "cuda"):
        assert not use_dense_logits(3416, 1, 13_800, device)  # SASRec: 2 candidates
        assert not use_dense_logits(1_000_000, 256, 10, device)
        assert not use_dense_logits(30_000, 256, 25_600, device)  # a 3 GB logit buffer is too much


def test_sorted_trimmed_evaluation_equals_plain_full_width_scoring():
    torch.manual_seed(1)
    model = GSASRec(30, 12, embedding_dim=16, num_heads=2, num_blocks=2).eval()
    rng = np.random.default_rng(0)
    histories = Sequences.from_lists([list(rng.integers(1, 31, rng.integers(0, 25))) for _ in range(37)])
    items, scores = predict_top(model, histories, 7, filter_rated=True, batch_size=8)
    # Plain way: every user at full width, one by one, filtering with a Python loop.
    for u in range(len(histories)):
        x = torch.from_numpy(left_padded(histories.take(np.array([u])), 12, model.padding_id))
        with torch.no_grad():
            plain = mask_scores(model.last_scores(x), 30)[0]
        for item in set(histories[u].tolist()):
            plain[item] = float("-inf")
        best = torch.topk(plain, 7)
        assert items[u].tolist() == best.indices.tolist()
        np.testing.assert_allclose(scores[u], best.values.numpy(), atol=1e-5)


def test_blockwise_top_k_equals_one_matrix():
    from gsasrec.scoring import top_k

    torch.manual_seed(3)
    hidden, table = torch.randn(9, 8), torch.randn(1002, 8)  # 1000 items
    rated = torch.randint(1, 1001, (9, 40))
    rated[0] = 1001  # a row with nothing rated (all padding)
    full_ids, full_scores = top_k(hidden, table, 10, 1000, rated)
    for budget in (9 * 10, 9 * 37, 9 * 500):  # blocks of 10, 37 (uneven) and 500 items
        ids, scores = top_k(hidden, table, 10, 1000, rated, max_elements=budget)
        assert torch.equal(ids, full_ids) and torch.allclose(scores, full_scores)
    assert not set(full_ids[1].tolist()) & set(rated[1].tolist())
    assert 0 not in full_ids and 1001 not in full_ids


def test_bucketed_logits_equal_the_plain_matmul():
    from gsasrec.scoring import ROW_BUCKET, all_logits

    torch.manual_seed(2)
    table = torch.randn(40, 8)
    for rows in (1, ROW_BUCKET - 1, ROW_BUCKET, ROW_BUCKET + 3):
        hidden = torch.randn(rows, 8, requires_grad=True)
        logits = all_logits(hidden, table)
        assert logits.shape == (rows, 40)
        torch.testing.assert_close(logits, hidden @ table.T)
        logits.sum().backward()
        torch.testing.assert_close(hidden.grad, table.sum(0).expand(rows, 8))


def test_gathered_gradients_are_the_same_in_every_run():
    # The shapes of an ML-1M step's bias gather: large enough that PyTorch's own indexing backward
    # (index_put_ with accumulate) splits the sums over threads and gives different bits run to run.
    generator = torch.Generator().manual_seed(0)
    for table in (torch.randn(3418, generator=generator), torch.randn(3418, 16, generator=generator)):
        ids = torch.randint(1, 3417, (20000, 257) if table.dim() == 1 else (2000, 65), generator=generator)
        weights = torch.rand(*ids.shape, *table.shape[1:], generator=generator)
        gradients = []
        for _ in range(4):
            leaf = table.clone().requires_grad_()
            (gather_rows(leaf, ids) * weights).sum().backward()
            gradients.append(leaf.grad)
        assert all(torch.equal(gradients[0], g) for g in gradients[1:])
        # the sums themselves, against float64 ones (float32 sums of ~1,500 terms agree to about 1e-6)
        expected = torch.zeros_like(table, dtype=torch.float64).index_put_(
            (ids.flatten(),), weights.reshape(-1, *table.shape[1:]).double(), accumulate=True)
        torch.testing.assert_close(gradients[0].double(), expected, rtol=1e-5, atol=1e-4)


def ranking_inputs(model: GSASRec) -> torch.Tensor:
    """Left-padded rows: all padding, one item, two items, the whole width, and random lengths."""
    rng = np.random.default_rng(3)
    lengths = [0, 1, 2, model.sequence_length] + list(rng.integers(0, model.sequence_length + 1, 12))
    histories = Sequences.from_lists([list(rng.integers(1, model.num_items + 1, n)) for n in lengths])
    return torch.from_numpy(left_padded(histories, model.sequence_length, model.padding_id))


def test_ranking_shortcuts_equal_the_full_computation():
    # last_only folds the last block's key/value projections into its one query (attend_one), and
    # keys_from_tables gathers the first block's from projected tables: the full computation's last row.
    for blocks, heads in [(1, 1), (2, 2), (3, 4)]:
        torch.manual_seed(blocks)
        model = GSASRec(25, 11, embedding_dim=16, num_heads=heads, num_blocks=blocks, dropout_rate=0.3,
                        initial_bias=-2.0).eval()
        inputs = ranking_inputs(model)
        with torch.no_grad():
            full = model(inputs)[:, -1]
            for tables in (False, True):
                torch.testing.assert_close(model.last_hidden(inputs, keys_from_tables=tables), full,
                                           atol=1e-5, rtol=1e-5)
            # Left to the model, eval mode takes the tables wherever they pay (two blocks or more).
            chosen = model.last_hidden(inputs, keys_from_tables=blocks > 1)
            torch.testing.assert_close(model.last_hidden(inputs), chosen, rtol=0, atol=0)


def test_projected_tables_follow_the_weights():
    torch.manual_seed(0)
    model = GSASRec(25, 11, embedding_dim=16, num_heads=2, num_blocks=2, dropout_rate=0.3, initial_bias=-2.0)
    inputs = ranking_inputs(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    with pytest.raises(ValueError, match="eval mode"):
        model.first_keys_and_values(inputs, torch.arange(11))  # training mode: the tables leave out dropout
    before = None
    for _ in range(2):
        model.eval()
        with torch.no_grad():
            tabled = model.last_hidden(inputs, keys_from_tables=True)
            torch.testing.assert_close(tabled, model(inputs)[:, -1], atol=1e-5, rtol=1e-5)
        if before is not None:
            assert not torch.allclose(tabled, before)  # the step changed the tables
        before = tabled
        model.train()
        optimizer.zero_grad()
        model(inputs).square().mean().backward()
        optimizer.step()


def test_length_sorted_batches_cover_every_user_within_both_limits():
    lengths = np.random.default_rng(0).integers(0, 400, 1000)
    batches = list(length_sorted_batches(lengths, 64, 200))
    assert np.array_equal(np.concatenate(batches), np.argsort(lengths, kind="stable"))
    for users in batches:
        width = min(max(lengths[users].max(), 1), 200)
        assert len(users) <= 64 and (len(users) * width <= BATCH_POSITIONS or len(users) == 1)
    assert [len(u) for u in length_sorted_batches(np.array([10**6, 5]), 64, 10**6)] == [1, 1]


def test_a_model_with_projected_tables_pickles_and_copies():
    import copy
    import pickle

    torch.manual_seed(0)
    model = GSASRec(25, 11, embedding_dim=16, num_heads=2, num_blocks=2, initial_bias=-2.0).eval()
    inputs = ranking_inputs(model)
    with torch.no_grad():
        expected = model.last_hidden(inputs, keys_from_tables=True)  # the tables are made and kept
        for twin in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
            torch.testing.assert_close(twin.last_hidden(inputs, keys_from_tables=True), expected)
            with torch.no_grad():
                twin.item_embedding.weight.add_(1.0)  # the twin's own weights: its tables follow them
            torch.testing.assert_close(twin.last_hidden(inputs, keys_from_tables=True), twin(inputs)[:, -1],
                                       atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(model.last_hidden(inputs, keys_from_tables=True), expected)


def test_bagged_logits_equal_the_gathered_ones_and_float64():
    # The CPU's sparse path (sampled product, bagged backward) against the gathered embeddings and a
    # float64 reference: repeated candidates in a row, a bias, more candidates than items (the
    # tiny-catalogue branch) and more ids than 16-bit sort keys hold; under bf16 autocast the gradients come
    # back in the inputs' dtypes.
    from gsasrec.scoring import gathered_logits, logits_of

    generator = torch.Generator().manual_seed(5)
    for rows, width in ((300, 65), (40, 65), (40_000, 9)):
        table = torch.randn(rows, 16, generator=generator, requires_grad=True)
        bias = torch.randn(rows, generator=generator, requires_grad=True)
        hidden = torch.randn(500, 16, generator=generator, requires_grad=True)
        candidates = torch.randint(0, rows, (500, width), generator=generator)
        weights = torch.randn(500, width, generator=generator)
        bagged = logits_of(hidden, table, candidates, False, bias)
        expected = (hidden.double() @ table.double().T).gather(1, candidates) + bias.double()[candidates]
        torch.testing.assert_close(bagged.double(), expected, rtol=1e-5, atol=1e-5)
        bagged_grads = torch.autograd.grad((bagged * weights).sum(), (hidden, table, bias))
        gathered = gathered_logits(hidden, table, candidates) + gather_rows(bias, candidates)
        gathered_grads = torch.autograd.grad((gathered * weights).sum(), (hidden, table, bias))
        for a, b in zip(bagged_grads, gathered_grads):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half = hidden.detach().bfloat16().requires_grad_()
        logits = logits_of(half, table, candidates, False)
        assert logits.dtype == torch.float32
        grad_half, grad_table = torch.autograd.grad(logits.sum(), (half, table))
    assert grad_half.dtype == torch.bfloat16 and grad_table.dtype == torch.float32


def test_bagged_gradients_are_the_same_for_any_thread_count_and_buffer():
    # ML-1M's catalogue and candidate count on fewer positions: every sum of the backward runs in one
    # fixed order, whatever the threads and whatever the kept buffers held before (a larger batch first).
    from gsasrec.scoring import logits_of

    generator = torch.Generator().manual_seed(6)
    table = torch.randn(3418, 32, generator=generator, requires_grad=True)
    bias = torch.randn(3418, generator=generator, requires_grad=True)
    large = torch.randn(3000, 32, generator=generator), torch.randint(1, 3417, (3000, 257), generator=generator)
    hidden = torch.randn(2000, 32, generator=generator, requires_grad=True)
    candidates = torch.randint(1, 3417, (2000, 257), generator=generator)
    weights = torch.rand(2000, 257, generator=generator)
    threads = torch.get_num_threads()
    results = []
    try:
        for count in (threads, 1, threads):
            torch.set_num_threads(count)
            logits_of(large[0], table, large[1], False).sum().backward()  # fills the buffers with other pairs
            logits = logits_of(hidden, table, candidates, False, bias)
            results.append((logits, *torch.autograd.grad((logits * weights).sum(), (hidden, table, bias))))
    finally:
        torch.set_num_threads(threads)
    for later in results[1:]:
        assert all(torch.equal(a, b) for a, b in zip(results[0], later))


def test_bagged_gbce_equals_the_loss_of_the_bagged_logits(monkeypatch):
    # The fused loss (gradients taken in the forward, part by part) against gbce_loss of the logits with
    # autograd's backward: value and the gradients of hidden, table and bias, in float64 and float32, with
    # parts of 7 positions over 40 (the last one short), a scaled loss, no bias, and under bf16 autocast.
    from gsasrec import scoring
    from gsasrec.loss import gbce_logit_gradient
    from gsasrec.scoring import bagged_gbce_loss, logits_of

    monkeypatch.setattr(scoring, "GBCE_PART_PAIRS", 7 * 33)
    monkeypatch.setattr(scoring, "GBCE_PAIRS_PER_ITEM", 0)
    monkeypatch.setenv(native.ENVIRONMENT_SWITCH, "0")  # torch's parts loop (the C kernel: tests/test_native.py)
    generator = torch.Generator().manual_seed(8)
    for dtype, tolerance in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        table = torch.randn(300, 16, generator=generator, dtype=dtype, requires_grad=True)
        bias = torch.randn(300, generator=generator, dtype=dtype).sub(4).requires_grad_()
        hidden = torch.randn(40, 16, generator=generator, dtype=dtype, requires_grad=True)
        candidates = torch.randint(1, 299, (40, 33), generator=generator)
        for with_bias in (True, False):
            b = bias if with_bias else None
            inputs = (hidden, table, bias) if with_bias else (hidden, table)
            expected = gbce_loss(logits_of(hidden, table, candidates, False, b), 0.3)
            expected_grads = torch.autograd.grad(3 * expected, inputs)
            fused = bagged_gbce_loss(hidden, table, candidates, b, 0.3)
            torch.testing.assert_close(fused, expected, rtol=tolerance, atol=tolerance)
            for a, e in zip(torch.autograd.grad(3 * fused, inputs), expected_grads):
                assert a.dtype == e.dtype
                torch.testing.assert_close(a, e, rtol=tolerance, atol=tolerance)
    logits = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(gbce_loss(logits, 0.7), logits)
    torch.testing.assert_close(gbce_logit_gradient(logits.detach().clone(), 0.7), grad, rtol=1e-12, atol=1e-15)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half = hidden.detach().float().bfloat16().requires_grad_()
        loss = bagged_gbce_loss(half, table.detach().float().requires_grad_(), candidates, None, 0.3)
        assert loss.dtype == torch.float32
        assert torch.autograd.grad(loss, half)[0].dtype == torch.bfloat16


@pytest.mark.parametrize("kernel", ["0", "1"])  # torch's parts loop, and the C kernel where it can be built
def test_bagged_gbce_is_the_same_for_any_thread_count(monkeypatch, kernel):
    from gsasrec.scoring import bagged_gbce_loss

    monkeypatch.setenv(native.ENVIRONMENT_SWITCH, kernel)
    if kernel == "1" and native.library() is None:
        pytest.skip("no C compiler here: the kernel cannot be built")
    generator = torch.Generator().manual_seed(9)
    table = torch.randn(3418, 32, generator=generator, requires_grad=True)
    bias = torch.randn(3418, generator=generator, requires_grad=True)
    hidden = torch.randn(2500, 32, generator=generator, requires_grad=True)
    candidates = torch.randint(1, 3417, (2500, 257), generator=generator)
    threads = torch.get_num_threads()
    results = []
    try:
        # Torch's path differs in the last bits with 3 threads (some of its kernels split work by the thread
        # count); the kernel's sums do not depend on it at all.
        for count in (threads, 1, 3, threads) if kernel == "1" else (threads, 1, threads):
            torch.set_num_threads(count)
            loss = bagged_gbce_loss(hidden, table, candidates, bias, 0.2)
            results.append((loss, *torch.autograd.grad(loss, (hidden, table, bias))))
    finally:
        torch.set_num_threads(threads)
    for later in results[1:]:
        assert all(torch.equal(a, b) for a, b in zip(results[0], later))

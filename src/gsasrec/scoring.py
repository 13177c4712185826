"""Scores: logits of [positive, negatives] for training; masked top-k lists for prediction."""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

from gsasrec import native
from gsasrec.items import padding_id
from gsasrec.loss import gbce_logit_gradient, gbce_per_position

# The dense path computes all num_items + 2 logits per position with one matmul and gathers; the sparse
# path computes only the candidates' logits. Dense wins while the catalogue is below a multiple of
# 1 + negatives, as long as its (positions, num_items + 2) float32 buffer stays reasonable: on a GPU
# about 150 times (gathered embeddings and bmm), on a CPU about 4 times, as there the sparse path's
# bagged products (_BaggedCandidateLogits) are 2.6 times faster than dense on ML-1M's 3,418 rows and 256
# negatives (benchmarks/RESULTS.md, "Logit paths").
DENSE_LOGITS_RATIO = 128
DENSE_LOGITS_RATIO_CPU = 4
DENSE_LOGITS_MAX_BYTES = 1 << 30


ROW_BUCKET = 512


def all_logits(hidden: torch.Tensor, table: torch.Tensor,
               bias: torch.Tensor | None = None) -> torch.Tensor:
    """(positions, num_items + 2) = hidden @ table.T (+ bias, one per id).

    The product is computed on a row count rounded up to a multiple of ROW_BUCKET (zero rows, sliced off
    again). The number of non-padding positions differs in every batch, and oneDNN's bfloat16 kernels keep
    a primitive per matrix shape: without buckets, CPU memory grew without bound under --precision bf16
    (benchmarks/RESULTS.md)."""
    logits = (bucketed_rows(hidden) @ table.T)[:hidden.shape[0]]
    return logits if bias is None else logits + bias


def use_dense_logits(num_items: int, negs_per_pos: int, positions: int, device: torch.device | str) -> bool:
    ratio = DENSE_LOGITS_RATIO_CPU if torch.device(device).type == "cpu" else DENSE_LOGITS_RATIO
    rows = num_items + 2
    return rows <= ratio * (negs_per_pos + 1) and positions * rows * 4 <= DENSE_LOGITS_MAX_BYTES


class _GatherRows(torch.autograd.Function):
    """table[ids], with a backward that sums the gradient of repeated ids with index_add_, which adds in
    a fixed order on a CPU. The default backward of indexing (index_put_ with accumulate) adds in an
    order that depends on the threads: two runs with the same seed drifted apart by 1e-6 within 5 steps,
    and a resumed run no longer matched an uninterrupted one. It is also faster (benchmarks/RESULTS.md)."""

    @staticmethod
    def forward(ctx, table: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(ids)
        ctx.table_shape, ctx.table_dtype = table.shape, table.dtype
        if table.dim() == 1 and ids.dim() == 2:
            # One number per id (the output bias): a gather along the row broadcast to every row of ids is
            # about 8x faster than index_select (1.4 against 12.5 ms for ML-1M's (14,336, 257) candidates).
            return table.expand(ids.shape[0], -1).gather(1, ids)
        # index_select of the flattened ids copies the same rows as table[ids], several times faster on a
        # CPU (advanced indexing with a 2-d index took 6 ms a call in the training step).
        return table.index_select(0, ids.reshape(-1)).view(*ids.shape, *table.shape[1:])

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (ids,) = ctx.saved_tensors
        rows = grad.new_zeros(ctx.table_shape).index_add_(0, ids.flatten(), grad.reshape(-1, *ctx.table_shape[1:]))
        return rows.to(ctx.table_dtype), None


def gather_rows(table: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """(*ids.shape, *table.shape[1:]) = table[ids], with a gradient that is the same in every run."""
    return _GatherRows.apply(table, ids)


def bucketed_rows(x: torch.Tensor) -> torch.Tensor:
    """x with zero rows appended up to a multiple of ROW_BUCKET (see all_logits)."""
    rows = x.shape[0]
    padded = -(-rows // ROW_BUCKET) * ROW_BUCKET
    return x if padded == rows else torch.cat([x, x.new_zeros(padded - rows, *x.shape[1:])])


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype autocast would run a matrix product of x in (x's own without autocast)."""
    device = x.device.type
    return torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else x.dtype


_WORKSPACES: dict = {}


def workspace(elements: int, dtype: torch.dtype, device: torch.device, name: str = "") -> torch.Tensor:
    """A flat buffer of at least `elements`, kept between calls (one per name, dtype and device) and handed out
    again: never held past the call that takes it. The (positions, items) matrices of a training step are
    hundreds of MB and a different size in every batch; freshly allocated each time, they made the CPU
    allocator fault in new pages for several of every ten steps (0.3-0.4 s instead of 0.04 s)."""
    key = (name, dtype, device)
    buffer = _WORKSPACES.get(key)
    if buffer is None or buffer.numel() < elements:
        _WORKSPACES.pop(key, None)
        buffer = _WORKSPACES[key] = torch.empty(elements, dtype=dtype, device=device)
    return buffer[:elements]


class _DenseCandidateLogits(torch.autograd.Function):
    """(hidden @ table.T).gather(1, candidates), with a backward written out.

    Autograd's own backward of that expression turned the (positions, items) gradient through a zero-fill,
    a scatter, a slice and two dtype casts, each a pass over a 45-million-element matrix on ML-1M: about
    60% of a bf16 CPU step. Here the gradient of the (positions, 1 + negatives) logits is added once
    into a zeroed (positions, items) matrix of the product's dtype, and two matrix products give the
    gradients of hidden and of the table. Duplicate candidates add up, in a fixed order: runs stay
    bit-identical."""

    @staticmethod
    def forward(ctx, hidden: torch.Tensor, table: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        dtype = compute_dtype(hidden)
        rows = hidden.shape[0]
        h, e = bucketed_rows(hidden.to(dtype)), table.to(dtype)  # (bucketed positions, dim), (items, dim)
        products = workspace(h.shape[0] * e.shape[0], dtype, h.device).view(h.shape[0], e.shape[0])
        logits = torch.mm(h, e.T, out=products)[:rows].gather(1, candidates)  # (positions, 1 + negatives)
        ctx.save_for_backward(h, e, candidates)
        ctx.dtypes = hidden.dtype, table.dtype
        return logits.float()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        h, e, candidates = ctx.saved_tensors
        hidden_dtype, table_dtype = ctx.dtypes
        rows = candidates.shape[0]
        # The gradient is added up in float32, then rounded once to the product's dtype: a bfloat16
        # scatter_add_ made a float32 copy of the whole matrix (and back) on every call. The bucket's
        # extra rows stay zero.
        shape = h.shape[0], e.shape[0]  # (bucketed positions, items)
        total = workspace(shape[0] * shape[1], torch.float32, h.device, "gradient").view(shape).zero_()
        total[:rows].scatter_add_(1, candidates, grad.float())
        dense = total if h.dtype == torch.float32 else \
            workspace(total.numel(), h.dtype, h.device).view(shape).copy_(total)
        grad_hidden = (dense @ e)[:rows].to(hidden_dtype)  # (positions, dim)
        grad_table = (dense.T @ h).to(table_dtype)  # (items, dim)
        return grad_hidden, grad_table, None


class _BaggedCandidateLogits(torch.autograd.Function):
    """(positions, candidates) logits hidden[p] . table[candidates[p, c]] (+ bias[candidates[p, c]]) on a
    CPU, in float32 or wider.

    Each product is computed once, from rows of the table and of hidden that stay in the cache: the
    forward is a sampled product (torch.sparse.sampled_addmm over the candidates' pattern), the backward
    two weighted sums of rows (bagged_gradients). The dense path instead multiplies every position with
    every item (ML-1M: 13 times the products, 200 MB of buffers). Every sum runs in a fixed order on one
    thread, so runs are bit-identical for any thread count; everything is float32 (float64 for float64
    inputs), also under bf16 autocast."""

    @staticmethod
    def forward(ctx, hidden: torch.Tensor, table: torch.Tensor, candidates: torch.Tensor,
                bias: torch.Tensor | None) -> torch.Tensor:
        h, e, logits = bagged_logits(hidden, table, candidates, bias)
        ctx.save_for_backward(h, e, candidates)
        ctx.dtypes = hidden.dtype, table.dtype, None if bias is None else bias.dtype
        return logits

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        h, e, candidates = ctx.saved_tensors
        hidden_dtype, table_dtype, bias_dtype = ctx.dtypes
        grad_hidden, grad_table, grad_bias = bagged_gradients(h, e, candidates, grad, bias_dtype is not None)
        return (grad_hidden.to(hidden_dtype), grad_table.to(table_dtype), None,
                None if grad_bias is None else grad_bias.to(bias_dtype))


# (position, candidate) pairs per part of _BaggedGBCE: a part's weights, keys and rows of hidden stay in a
# core's cache (1 MB of float32 weights, 0.5 MB of 16-bit keys; ML-1M's 257 candidates: 1,020 positions).
# Each part also writes and adds a whole (items, dim) table of its terms, so a part holds at least
# GBCE_PAIRS_PER_ITEM pairs per item: a large catalogue is one part (a 15,000-item log's 3 parts were 5-10%
# slower than one).
GBCE_PART_PAIRS = 1 << 18
GBCE_PAIRS_PER_ITEM = 64


class _BaggedGBCE(torch.autograd.Function):
    """gbce_loss of the bagged logits, its gradients taken in the forward.

    The loss is a scalar, so once the logits of a part of the positions are known so is the gradient of
    the loss with respect to them (loss.gbce_logit_gradient), and with it that part's terms of the
    gradients of hidden, the table and the bias. The forward computes all of them part by part (about
    GBCE_PART_PAIRS candidates at a time), while the part's logits, gradients and sorted pairs are still
    in the cache; the backward only scales them by the loss's gradient. The parts are fixed by the batch,
    not by the threads, and their terms are added in order: the same bits for any thread count."""

    @staticmethod
    def forward(ctx, hidden: torch.Tensor, table: torch.Tensor, candidates: torch.Tensor,
                bias: torch.Tensor | None, beta: float) -> torch.Tensor:
        dtype = bagged_dtype(hidden, table)
        h, e = hidden.to(dtype), table.to(dtype)  # (positions, dim), (items, dim)
        b = None if bias is None else bias.to(dtype)
        kernel = native_kernel(h, e, candidates)
        per_position, grad_hidden, grad_table, grad_bias = (
            parts_gbce(h, e, candidates, b, beta) if kernel is None else native_gbce(kernel, h, e, candidates, b, beta))
        ctx.save_for_backward(grad_hidden.to(hidden.dtype), grad_table.to(table.dtype),
                              None if bias is None else grad_bias.to(bias.dtype))
        return per_position.mean() / candidates.shape[1]  # gbce_loss's reduction

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor):
        grads = ctx.saved_tensors  # hidden's, the table's, the bias's (None without one)
        if not bool(grad_loss == 1):  # a training step's loss.backward() passes 1: nothing to scale
            grads = [None if g is None else g * grad_loss.to(g.dtype) for g in grads]
        return grads[0], grads[1], None, grads[2], None


def parts_gbce(h: torch.Tensor, e: torch.Tensor, candidates: torch.Tensor, b: torch.Tensor | None,
               beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """native_gbce's four results in torch, part by part (about GBCE_PART_PAIRS pairs at a time, see
    _BaggedGBCE), in h's dtype."""
    rows, width = candidates.shape
    per_position = torch.empty(rows, dtype=h.dtype, device=h.device)
    grad_hidden, grad_table = torch.empty_like(h), torch.zeros_like(e)
    grad_bias = None if b is None else torch.zeros_like(b)
    per_part = max(max(GBCE_PART_PAIRS, GBCE_PAIRS_PER_ITEM * len(e)) // width, 1)  # positions
    for start in range(0, rows, per_part):
        part = slice(start, min(start + per_part, rows))
        ids = candidates[part]  # (part positions, candidates)
        logits = bagged_logits(h[part], e, ids, b)[2]  # (part positions, candidates)
        per_position[part] = gbce_per_position(logits[:, 0], logits[:, 1:], beta)
        grad = gbce_logit_gradient(logits, beta, rows * width)  # in place of logits
        grad_hidden[part], table_term, bias_term = bagged_gradients(h[part], e, ids, grad, b is not None)
        grad_table += table_term
        if grad_bias is not None:
            grad_bias += bias_term
    return per_position, grad_hidden, grad_table, grad_bias


def native_kernel(h: torch.Tensor, e: torch.Tensor, candidates: torch.Tensor):
    """The C kernel (gsasrec.native) where it serves these inputs: float32 CPU tensors, or None."""
    if (h.device.type != "cpu" or h.dtype != torch.float32 or e.dtype != torch.float32
            or candidates.dtype != torch.int64 or not len(candidates)):
        return None
    return native.library()


def native_gbce(kernel, h: torch.Tensor, e: torch.Tensor, candidates: torch.Tensor, b: torch.Tensor | None,
                beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(per position loss, hidden's, the table's and the bias's gradients) of gBCE's mean over the
    (positions, candidates) pairs, from the C kernel (native_gbce.c): the values of the parts loop of
    _BaggedGBCE up to float rounding, in one pass over the pairs with no sort."""
    rows, width = candidates.shape
    h, e, ids = h.contiguous(), e.contiguous(), candidates.contiguous()
    b = None if b is None else b.contiguous()
    # float32 whatever torch's default dtype: the kernel writes floats
    per_position, grad_hidden = torch.empty(rows, dtype=torch.float32), torch.empty_like(h)
    grad_table = torch.empty_like(e)
    grad_bias = None if b is None else torch.empty_like(b)
    logit_gradient = workspace(rows * width, torch.float32, h.device, "logit gradient")
    failed = kernel.gsasrec_gbce(
        h.data_ptr(), rows, h.shape[1], e.data_ptr(), e.shape[0], None if b is None else b.data_ptr(),
        ids.data_ptr(), width, beta, 1.0 / (rows * width), per_position.data_ptr(), logit_gradient.data_ptr(),
        grad_hidden.data_ptr(), grad_table.data_ptr(), None if grad_bias is None else grad_bias.data_ptr(),
        torch.get_num_threads())
    if failed == -2:
        raise ValueError(f"a candidate id is not a row of the output table (0..{e.shape[0] - 1})")
    if failed:
        raise RuntimeError("the native gBCE kernel could not start its threads")
    return per_position, grad_hidden, grad_table, grad_bias


def bagged_gbce_loss(hidden: torch.Tensor, table: torch.Tensor, candidates: torch.Tensor,
                     bias: torch.Tensor | None, beta: float) -> torch.Tensor:
    """gbce_loss(logits_of(hidden, table, candidates, dense=False, bias), beta) on a CPU, with the same
    value and gradients up to float rounding (tested), in less time (benchmarks/RESULTS.md)."""
    return _BaggedGBCE.apply(hidden, table, candidates, bias, beta)


def bagged_logits(hidden: torch.Tensor, table: torch.Tensor, candidates: torch.Tensor,
                  bias: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(h, e, logits): hidden and table in the bagged path's dtype (float32 or wider) and their
    (positions, candidates) logits, the bias included."""
    dtype = bagged_dtype(hidden, table)
    h, e = hidden.to(dtype), table.to(dtype)  # (positions, dim), (items, dim)
    # The bias along a broadcast row: a gather 8x faster than index_select of the flattened ids.
    added = None if bias is None else bias.to(dtype).expand(len(candidates), -1).gather(1, candidates)
    return h, e, sampled_products(h, e, candidates, added)


def bagged_dtype(hidden: torch.Tensor, table: torch.Tensor) -> torch.dtype:
    """The dtype the bagged path computes in: float32, or float64 where an input is."""
    return torch.promote_types(torch.promote_types(hidden.dtype, table.dtype), torch.float32)


def bagged_gradients(h: torch.Tensor, e: torch.Tensor, candidates: torch.Tensor, grad: torch.Tensor,
                     with_bias: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Gradients of hidden (positions, dim), of the table (items, dim) and, with_bias, of the bias
    (items,), in h's dtype, given the logits' (positions, candidates): each position's gradient sums its
    candidates' rows of the table, each item's sums the rows of the positions that drew it, visited in a
    stable sort by item (embedding_bag with per-sample weights), and each id's bias sums its logits'
    gradients in pair order."""
    weights = grad.to(h.dtype).contiguous()  # (positions, candidates)
    grad_hidden = F.embedding_bag(candidates, e, per_sample_weights=weights, mode="sum")  # (positions, dim)
    # The pairs in a stable order by item, in buffers kept between steps (scoring.workspace): fresh, these
    # 15-30 MB arrays of a different size every step faulted in new pages. Ids fit 16 bits in most
    # catalogues, whose stable sort takes 60% of a 32-bit one's time.
    pairs, width, device = candidates.numel(), candidates.shape[1], h.device
    key_dtype = torch.int16 if e.shape[0] <= 1 << 15 else torch.int32
    keys = workspace(pairs, key_dtype, device, "keys").copy_(candidates.view(-1))
    by_item = workspace(pairs, torch.int64, device, "by item")  # pair numbers (position * width + column)
    torch.sort(keys, stable=True, out=(workspace(pairs, key_dtype, device, "sorted keys"), by_item))
    counts = torch.bincount(keys, minlength=e.shape[0])  # (items,)
    positions = torch.div(by_item, width, rounding_mode="floor",
                          out=workspace(pairs, torch.int64, device, "positions"))  # each pair's row of h
    sorted_weights = torch.index_select(weights.view(-1), 0, by_item,
                                        out=workspace(pairs, h.dtype, device, "weights"))
    grad_table = F.embedding_bag(positions, h, torch.cumsum(counts, 0) - counts, mode="sum",
                                 per_sample_weights=sorted_weights)  # (items, dim)
    grad_bias = torch.bincount(keys, weights=weights.view(-1), minlength=e.shape[0]) if with_bias else None
    return grad_hidden, grad_table, grad_bias


def sampled_products(h: torch.Tensor, e: torch.Tensor, candidates: torch.Tensor,
                     added: torch.Tensor | None = None) -> torch.Tensor:
    """(positions, candidates) products h[p] . e[candidates[p, c]] (+ added[p, c]), each computed once
    (autocast off)."""
    rows, width = candidates.shape
    if width > e.shape[0]:
        # More candidates than items (a tiny catalogue): every product is cheaper, and the sampled product
        # refuses a row with more entries than columns.
        with torch.autocast(h.device.type, enabled=False):
            products = (h @ e.T).gather(1, candidates)
        return products if added is None else products + added
    # The pattern's values are what the sampled product adds (beta = 1), or a broadcast zero that it
    # multiplies by beta = 0, so memory left uninitialised could not hold a NaN and spoil the sum.
    values = h.new_zeros(1).expand(candidates.numel()) if added is None else added.reshape(-1)
    with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta state": only its layout is used
        warnings.simplefilter("ignore", UserWarning)
        pattern = torch.sparse_csr_tensor(
            torch.arange(0, candidates.numel() + 1, width, device=h.device), candidates.reshape(-1),
            values, size=(rows, e.shape[0]), check_invariants=False)
    beta = 0.0 if added is None else 1.0
    return torch.sparse.sampled_addmm(pattern, h, e.T, beta=beta).values().view(rows, width)


def candidate_logits(hidden: torch.Tensor, table: torch.Tensor, positives: torch.Tensor,
                     negatives: torch.Tensor, dense: bool, bias: torch.Tensor | None = None) -> torch.Tensor:
    """(positions, 1 + negatives) logits, column 0 the positive.

    hidden: (positions, dim); table: (num_items + 2, dim); positives: (positions,);
    negatives: (positions, negatives); bias: (num_items + 2,) or None.
    """
    candidates = torch.cat([positives.unsqueeze(1), negatives], dim=1)  # (positions, 1 + negatives)
    return logits_of(hidden, table, candidates, dense, bias)


def logits_of(hidden: torch.Tensor, table: torch.Tensor, candidates: torch.Tensor, dense: bool,
              bias: torch.Tensor | None = None) -> torch.Tensor:
    """(positions, candidates) logits of each position's candidate ids (positions, candidates): the
    dense path (one product with the whole table, then a gather) or the sparse one (bagged products on a
    CPU, the candidates' embeddings gathered elsewhere); all give the same values and gradients (tested)."""
    if dense:
        logits = _DenseCandidateLogits.apply(hidden, table, candidates)  # (positions, candidates)
    elif hidden.device.type == "cpu":
        return _BaggedCandidateLogits.apply(hidden, table, candidates, bias)  # the bias added inside
    else:
        logits = gathered_logits(hidden, table, candidates)
    # The bias is added after the gather: a (positions, candidates) sum, not a (positions, items) one.
    return logits if bias is None else logits + gather_rows(bias, candidates)


def gathered_logits(hidden: torch.Tensor, table: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """(positions, candidates) logits from the candidates' embeddings gathered, (positions, candidates, dim):
    the sparse path off the CPU."""
    embeddings = gather_rows(table, candidates)  # (positions, candidates, dim)
    return torch.bmm(embeddings, hidden.unsqueeze(-1)).squeeze(-1)


def row_shared_logits(hidden: torch.Tensor, labels: torch.Tensor, table: torch.Tensor, negatives: torch.Tensor,
                      bias: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Float32 logits of every position of every row: its label (rows, width) and its row's negatives
    (rows, width, negatives); padding positions included, for the caller to mask.

    hidden: (rows, width, dim); labels: (rows, width) ids; negatives: (rows, negatives). At each position
    equal to candidate_logits with the row's negatives repeated for it (tested), at the cost of one batched
    product against rows x negatives embeddings instead of a (positions, items) one.
    """
    positive = (hidden * gather_rows(table, labels)).sum(-1)  # (rows, width)
    scored = torch.bmm(hidden, gather_rows(table, negatives).transpose(1, 2))  # (rows, width, negatives)
    positive, scored = positive.float(), scored.float()
    if bias is not None:
        positive = positive + gather_rows(bias, labels)
        scored = scored + gather_rows(bias, negatives).unsqueeze(1)
    return positive, scored


def all_scores(hidden: torch.Tensor, table: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """(batch, rows) float32 scores of hidden against every row of table, plus each row's bias."""
    scores = (hidden @ table.T).float()
    return scores if bias is None else scores + bias


def mask_scores(scores: torch.Tensor, num_items: int, rated: torch.Tensor | None = None) -> torch.Tensor:
    """Set -inf, in place, for ids that are not items (0 and >= padding id) and for rated items.

    scores: (batch, num_items + 2); rated: (batch, width) item ids, padded with the padding id.
    """
    scores[:, 0] = float("-inf")
    scores[:, padding_id(num_items):] = float("-inf")
    if rated is not None:
        scores.scatter_(1, rated, float("-inf"))
    return scores


def best_of(scores: torch.Tensor, k: int, num_items: int, rated: torch.Tensor | None = None,
            additions: tuple[torch.Tensor, ...] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch, k) best ids and scores of a (batch, num_items + 2) score matrix, changed in place: additions
    (rows, items, values) added, non-items and rated items set to -inf."""
    if additions is not None:
        scores.index_put_(additions[:2], additions[2], accumulate=True)
    best = torch.topk(mask_scores(scores, num_items, rated), k, dim=1)
    return best.indices, best.values


def top_k(hidden: torch.Tensor, table: torch.Tensor, k: int, num_items: int,
          rated: torch.Tensor | None = None, max_elements: int | None = None,
          bias: torch.Tensor | None = None, additions: tuple[torch.Tensor, ...] | None = None,
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch, k) best item ids and scores of hidden @ table.T + bias (+ additions), non-items and rated
    items excluded.

    hidden: (batch, dim); table: (num_items + 2, dim); bias: (num_items + 2,) or None; rated: (batch,
    width) ids padded with the padding id; additions: (rows, items, values), each (entries,): values added
    to single scores (transition_term), or None. With max_elements, scores are computed for blocks of
    items so that no (batch, block) matrix has more elements than that, and the blocks' top-k lists are
    merged: a large catalogue never needs a (batch, num_items) matrix.
    """
    rows = table.shape[0]
    block = rows if max_elements is None else max(k, max_elements // max(len(hidden), 1))
    if block >= rows:
        return best_of(all_scores(hidden, table, bias), k, num_items, rated, additions)
    best_ids = torch.empty(len(hidden), 0, dtype=torch.long, device=hidden.device)
    best_scores = torch.empty(len(hidden), 0, device=hidden.device)
    for start in range(0, rows, block):
        end = min(start + block, rows)
        scores = all_scores(hidden, table[start:end], None if bias is None else bias[start:end])  # (batch, block)
        if additions is not None:
            users, items, values = additions
            inside = (items >= start) & (items < end)  # (entries,)
            scores.index_put_((users[inside], items[inside] - start), values[inside], accumulate=True)
        ids = torch.arange(start, end, device=hidden.device)
        scores[:, (ids == 0) | (ids >= padding_id(num_items))] = float("-inf")
        if rated is not None:
            inside = (rated >= start) & (rated < end)  # (batch, width)
            users = torch.arange(len(hidden), device=hidden.device).unsqueeze(1).expand_as(rated)
            scores[users[inside], rated[inside] - start] = float("-inf")
        block_best = torch.topk(scores, min(k, end - start), dim=1)
        merged_scores = torch.cat([best_scores, block_best.values], dim=1)
        merged_ids = torch.cat([best_ids, block_best.indices + start], dim=1)
        keep = torch.topk(merged_scores, min(k, merged_scores.shape[1]), dim=1)
        best_scores, best_ids = keep.values, merged_ids.gather(1, keep.indices)
    return best_ids, best_scores

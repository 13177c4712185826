"""gSASRec / SASRec: a causal Transformer decoder over item sequences (docs/reference.md, "Model").

Parameter names match the reference's state_dicts, so its checkpoints load as they are.
"""

from __future__ import annotations

import weakref

import torch
import torch.nn.functional as F
from torch import nn

from gsasrec.attention import causal_attention_with_dropout
from gsasrec.dropout import Dropout
from gsasrec.items import embedding_rows, padding_id
from gsasrec.loss import initial_logit_offset

# The largest id table projected_tables keeps: 256 MB of float32 (1,048,576 ids at dim 32, 262,144 at dim 128).
PROJECTED_IDS_MAX_ELEMENTS = 1 << 26


class MultiHeadAttention(nn.Module):
    """Full-width Q/K/V projections split into heads; no output projection (as in SASRec)."""

    def __init__(self, dim: int, num_heads: int, dropout_rate: float):
        super().__init__()
        self.num_heads = num_heads
        self.dropout_rate = dropout_rate
        self.query_proj = nn.Linear(dim, dim)
        self.key_proj = nn.Linear(dim, dim)
        self.val_proj = nn.Linear(dim, dim)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, allowed: torch.Tensor,
                keys_and_values: torch.Tensor | None = None) -> torch.Tensor:
        """keys_and_values: (batch, key_length, 2 * dim) the projections of `keys` when the caller has
        them already (GSASRec.first_keys_and_values)."""
        batch, query_length, dim = queries.shape
        key_length = keys.shape[1]
        head_dim = dim // self.num_heads
        q = self.query_proj(queries).view(batch, query_length, self.num_heads, head_dim).transpose(1, 2)
        if keys_and_values is None:
            keys_and_values = F.linear(keys, *self.key_value_weights())  # (batch, key_length, 2 * dim)
        # unbind, not two slices: the backward of a slice zero-fills the whole (batch, key_length, 2 * dim) input
        halves = keys_and_values.view(batch, key_length, 2, self.num_heads, head_dim).unbind(2)
        k, v = (x.transpose(1, 2) for x in halves)  # (batch, heads, key_length, head_dim)
        if self.training and q.device.type == "cpu" and (self.dropout_rate > 0 or q.dtype == torch.bfloat16):
            # SDPA's own dropout draws its mask with bernoulli_, 15x slower on a CPU (dropout.py); without
            # dropout SDPA is as fast in float32 but 1.6-2.5x slower in bfloat16 (benchmarks/RESULTS.md)
            attended = causal_attention_with_dropout(q, k, v, allowed, self.dropout_rate)
        else:
            # (batch, heads, query_length, head_dim); scale 1/sqrt(head_dim) is SDPA's default
            attended = F.scaled_dot_product_attention(
                q, k, v, attn_mask=allowed, dropout_p=self.dropout_rate if self.training else 0.0
            )
        return attended.transpose(1, 2).reshape(batch, query_length, dim)

    def key_value_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(2 * dim, dim) weight and (2 * dim,) bias: keys and values in one product of the shared input
        with both weights stacked, so the input is read (and under autocast cast) once, and a
        (tokens, 2 * dim) product runs closer to the machine's peak than two narrow ones."""
        return (torch.cat([self.key_proj.weight, self.val_proj.weight]),
                torch.cat([self.key_proj.bias, self.val_proj.bias]))

    def attend_one(self, query: torch.Tensor, keys: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """(batch, 1, dim): forward() for one query per row, without training-time dropout.

        The key and value projections are folded into the query and the result instead of applied to
        every key: q . (W_k h_j + b_k) = (W_k^T q) . h_j + q . b_k, whose last term is the same for every
        j and so drops out of the softmax; and sum_j p_j (W_v h_j + b_v) = W_v (sum_j p_j h_j) + b_v, the
        weights p_j summing to 1. The same numbers up to rounding, without the (tokens, dim) x (dim,
        2 * dim) product that was a third of a ranking's arithmetic.
        """
        batch, _, dim = query.shape
        heads, head_dim = self.num_heads, dim // self.num_heads
        q = self.query_proj(query).view(batch, heads, head_dim)
        key_weight = self.key_proj.weight.view(heads, head_dim, dim)
        folded = torch.einsum("bhd,hdk->bhk", q, key_weight)  # (batch, heads, dim)
        scores = torch.bmm(folded, keys.transpose(1, 2)) * head_dim ** -0.5  # (batch, heads, key_length)
        weights = torch.softmax(scores.masked_fill(~allowed.view(batch, 1, -1), float("-inf")), dim=-1)
        context = torch.bmm(weights, keys)  # (batch, heads, dim)
        value_weight = self.val_proj.weight.view(heads, head_dim, dim)
        attended = torch.einsum("bhk,hdk->bhd", context, value_weight) + self.val_proj.bias.view(heads, head_dim)
        return attended.reshape(batch, 1, dim)


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, dropout_rate: float):
        super().__init__()
        self.first_norm = nn.LayerNorm(dim)
        self.second_norm = nn.LayerNorm(dim)
        self.multihead_attention = MultiHeadAttention(dim, num_heads, dropout_rate)
        self.dense1 = nn.Linear(dim, dim)
        self.dense2 = nn.Linear(dim, dim)
        self.dropout = Dropout(dropout_rate)

    def forward(self, h: torch.Tensor, allowed: torch.Tensor, mask: torch.Tensor, last_only: bool = False,
                keys_and_values: torch.Tensor | None = None) -> torch.Tensor:
        # last_only (eval mode): compute just the final position's output (all that scoring needs); the
        # keys still cover every position, so the result equals the last row of the full computation.
        queries = self.first_norm(h[:, -1:] if last_only else h)
        # Keys and values come from the un-normalised h, the residual goes onto the normalised queries.
        if last_only:
            attended = self.multihead_attention.attend_one(queries, h, allowed[:, :, -1])
            mask = mask[:, -1:]
        else:
            attended = self.multihead_attention(queries, h, allowed, keys_and_values)
        a = self.second_norm(attended + queries)
        f = self.dropout(self.dense2(self.dropout(F.relu(self.dense1(a))))) + a
        return f * mask


class GSASRec(nn.Module):
    def __init__(self, num_items: int, sequence_length: int = 200, embedding_dim: int = 256,
                 num_heads: int = 4, num_blocks: int = 3, dropout_rate: float = 0.0,
                 reuse_item_embeddings: bool = False, init_std: float | None = None,
                 initial_bias: float | None = None):
        super().__init__()
        self.num_items = num_items
        self.padding_id = padding_id(num_items)
        self.sequence_length = sequence_length
        self.reuse_item_embeddings = reuse_item_embeddings
        rows = embedding_rows(num_items)
        self.item_embedding = nn.Embedding(rows, embedding_dim)
        self.position_embedding = nn.Embedding(sequence_length, embedding_dim)
        self.embeddings_dropout = Dropout(dropout_rate)
        self.transformer_blocks = nn.ModuleList(
            TransformerBlock(embedding_dim, num_heads, dropout_rate) for _ in range(num_blocks)
        )
        self.seq_norm = nn.LayerNorm(embedding_dim)
        if not reuse_item_embeddings:
            self.output_embedding = nn.Embedding(rows, embedding_dim)
        # One learnable bias per id added to its score, started at initial_bias (the config's boolean
        # logit_offset asks for one; from_config computes its value). gBCE wants every logit near log(beta / k) at the
        # start (loss.initial_logit_offset); without a bias the network can only get there by pointing
        # every user's hidden state along one shared direction, and it stalls at popularity level
        # (docs/reference.md, "Where the defaults depart"). None: the reference's model, whose scores have
        # no bias (and whose state_dict has exactly the reference's keys).
        self.output_bias = None if initial_bias is None else nn.Parameter(torch.full((rows,), initial_bias))
        # Item-to-item counts added to the scores at inference, when the checkpoint has them with a weight
        # other than 0 (transition_term.py; set by checkpoint.load_model, never trained): not a weight, so
        # not in the state_dict.
        self.transition_term = None
        self._projected_tables = None  # (stamp, tables): projected_tables(), kept between rankings
        if init_std is not None:
            # PyTorch's N(0, 1) embeddings start logits at a standard deviation of about 11 and spend the
            # first thousands of steps shrinking them (docs/reference.md, "Where the defaults depart");
            # smaller tables start sooner.
            for module in self.modules():
                if isinstance(module, nn.Embedding):
                    nn.init.normal_(module.weight, std=init_std)

    @classmethod
    def from_config(cls, config, num_items: int) -> GSASRec:
        return cls(num_items=num_items, sequence_length=config.sequence_length,
                   embedding_dim=config.embedding_dim, num_heads=config.num_heads,
                   num_blocks=config.num_blocks, dropout_rate=config.dropout_rate,
                   reuse_item_embeddings=config.reuse_item_embeddings, init_std=config.init_std,
                   initial_bias=initial_logit_offset(config, num_items) if config.logit_offset else None)

    @property
    def output_table(self) -> torch.Tensor:
        """(num_items + 2, dim): the embeddings that scores are dot products with."""
        if self.reuse_item_embeddings:
            return self.item_embedding.weight
        return self.output_embedding.weight

    def forward(self, inputs: torch.Tensor, last_only: bool = False, positions: torch.Tensor | None = None,
                segments: torch.Tensor | None = None, keys_from_tables: bool = False) -> torch.Tensor:
        """Sequence embeddings (batch, width, dim) of left-padded inputs (batch, width).

        width may be less than sequence_length: the columns are then the rightmost ones of a full-width
        input, so they get positions sequence_length - width .. sequence_length - 1, and the result at
        each non-padding position is what the full-width input gives there.

        Packed rows (batches.Batch) pass positions and segments (batch, width): each column's position
        index and the segment it belongs to; attention then stays within a segment, and each segment's
        result is what its user's own row gives.

        last_only (eval mode): only the last column's result is computed (what scoring needs), shape
        (batch, 1, dim). keys_from_tables (eval mode, two or more blocks): the first block's keys and
        values come from first_keys_and_values; worth it when the batch holds more positions than ids.
        """
        width = inputs.shape[1]
        if width > self.sequence_length:
            raise ValueError(f"inputs have {width} columns, more than sequence_length={self.sequence_length}")
        mask = (inputs != self.padding_id).unsqueeze(-1)  # (batch, width, 1)
        if positions is None:
            positions = torch.arange(self.sequence_length - width, self.sequence_length, device=inputs.device)
        h = self.item_embedding(inputs) + self.position_embedding(positions)
        h = self.embeddings_dropout(h) * mask
        allowed = attention_mask(mask.squeeze(-1), segments)
        for index, block in enumerate(self.transformer_blocks):
            is_last = index == len(self.transformer_blocks) - 1
            tabled = keys_from_tables and index == 0 and not is_last
            keys_and_values = self.first_keys_and_values(inputs, positions) if tabled else None
            h = block(h, allowed, mask, last_only=last_only and is_last, keys_and_values=keys_and_values)
        if last_only and not self.transformer_blocks:
            h = h[:, -1:]
        return self.seq_norm(h)

    def first_keys_and_values(self, inputs: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """(batch, width, 2 * dim) the first block's key and value projections, gathered from projected
        tables: (E[id] + P[position]) W^T + b = (E W^T)[id] + (P W^T + b)[position], without dropout.

        A ranking of ML-1M's users holds some 650,000 positions against 3,418 ids, so this projects the
        ids' rows once (projected_tables) instead of every position. Padding gets a finite projection
        where the model has the bias alone, which changes nothing: no real query attends a padding key,
        and a padding query's own result is masked out.
        """
        if self.training:
            raise ValueError("first_keys_and_values is for eval mode: it leaves out the embeddings' dropout")
        per_id, per_position = self.projected_tables()
        return per_id[inputs] + per_position[positions]

    def projected_tables(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(num_items + 2, 2 * dim) E W^T and (sequence_length, 2 * dim) P W^T + b in float32: the item
        and position embeddings through the first block's key and value weights.

        Kept while those weights stay the same tensors at the same version (an optimizer step, a load, a
        move to another device or new parameters make them anew), and always of the same shapes, so the
        numbers do not depend on the batch: a product of only a batch's few positions can round
        differently with the number of threads, and `recommend --all --nproc 2` would then not write what
        one process writes.
        """
        attention = self.transformer_blocks[0].multihead_attention
        weights = (self.item_embedding.weight, self.position_embedding.weight, attention.key_proj.weight,
                   attention.val_proj.weight, attention.key_proj.bias, attention.val_proj.bias)
        if self._projected_tables is None or not all(
                ref() is w and version == w._version for (ref, version), w in zip(self._projected_tables[0], weights)):
            stamp = [(weakref.ref(w), w._version) for w in weights]
            with torch.no_grad(), torch.autocast(self.item_embedding.weight.device.type, enabled=False):
                weight, bias = attention.key_value_weights()
                per_id = self.item_embedding.weight @ weight.T
                per_position = F.linear(self.position_embedding.weight, weight, bias)
            self._projected_tables = (stamp, (per_id, per_position))
        return self._projected_tables[1]

    def __getstate__(self) -> dict:
        # The projected tables' stamp holds weak references, which do not pickle; tables are made on use.
        return {**self.__dict__, "_projected_tables": None}

    def keys_from_tables_pay(self) -> bool:
        """Whether rankings take the first block's keys and values from tables (first_keys_and_values):
        with two blocks or more (with one, attend_one needs no keys projected at all), and a table of at
        most PROJECTED_IDS_MAX_ELEMENTS."""
        rows, dim = self.item_embedding.weight.shape
        return len(self.transformer_blocks) > 1 and rows * 2 * dim <= PROJECTED_IDS_MAX_ELEMENTS

    def last_hidden(self, inputs: torch.Tensor, keys_from_tables: bool | None = None) -> torch.Tensor:
        """(batch, dim): the sequence embedding at the last position, which scores the next item.
        keys_from_tables: see forward(); None takes them in eval mode where keys_from_tables_pay()."""
        if keys_from_tables is None:
            keys_from_tables = not self.training and self.keys_from_tables_pay()
        return self.forward(inputs, last_only=True, keys_from_tables=keys_from_tables)[:, -1]

    def last_scores(self, inputs: torch.Tensor) -> torch.Tensor:
        """Scores (batch, num_items + 2) of every id at the last position, before any masking."""
        # Without the tables: the reference's cases compare these scores to the last digit.
        scores = self.last_hidden(inputs, keys_from_tables=False) @ self.output_table.T
        return scores if self.output_bias is None else scores + self.output_bias


def attention_mask(valid: torch.Tensor, segments: torch.Tensor | None = None) -> torch.Tensor:
    """(batch, 1, width, width) boolean: query i may attend key j.

    Causal (j <= i) and only to non-padding keys (and, for packed rows, keys of the query's own segment).
    Each position may also attend itself: for a padding query, whose keys are all padding, this replaces
    the reference's NaN-then-zero softmax with a finite value; that row is multiplied by the padding mask
    right after, so no result or gradient changes.
    """
    index = torch.arange(valid.shape[1], device=valid.device)
    # Index comparisons rather than tril/eye: they also export to ONNX runtimes.
    causal = index[None, :] <= index[:, None]  # (query, key)
    diagonal = index[None, :] == index[:, None]
    allowed = causal & valid[:, None, :]  # (batch, query, key)
    if segments is not None:
        allowed = allowed & (segments[:, :, None] == segments[:, None, :])
    return (allowed | diagonal).unsqueeze(1)

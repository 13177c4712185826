"""Ranking metrics by ir-measures name over top-k lists with one relevant item per user.

Common measures take a vectorised fast path computed from the rank of the target (tests prove it equal
to ir-measures); any other measure is computed by ir-measures itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gsasrec.errors import GSASRecError


def measure_name(measure: Any, field_name: str) -> str:
    """The canonical ir-measures name of a measure given as a string or an ir-measures object."""
    import ir_measures

    text = str(measure)
    try:
        return str(ir_measures.parse_measure(text))
    except Exception:
        raise GSASRecError(
            f"config field {field_name!r}: {text!r} is not an ir-measures measure (e.g. 'nDCG@10', 'R@1')",
            field=field_name) from None


def measure_cutoff(name: str) -> int | None:
    import ir_measures

    return ir_measures.parse_measure(name).params.get("cutoff")


def target_ranks(top_items: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(users,) 1-based rank of each target in its top list, 0 where it is absent."""
    hits = top_items == targets[:, None]  # (users, limit)
    return np.where(hits.any(axis=1), hits.argmax(axis=1) + 1, 0)


def _fast_values(name: str, ranks: np.ndarray) -> np.ndarray | None:
    """Per-user values of a measure from target ranks, or None when it has no fast path."""
    import ir_measures

    measure = ir_measures.parse_measure(name)
    params = dict(measure.params)
    cutoff = params.pop("cutoff", None)
    if params:  # e.g. nDCG(gains=...) or judged_only: leave to ir-measures
        return None
    found = (ranks > 0) & (ranks <= (cutoff if cutoff is not None else np.inf))
    safe = np.maximum(ranks, 1).astype(np.float64)
    if measure.NAME == "nDCG":
        return np.where(found, 1.0 / np.log2(safe + 1.0), 0.0)
    if measure.NAME in ("R", "Success") and (cutoff is not None or measure.NAME == "R"):
        return found.astype(np.float64)
    if measure.NAME == "P" and cutoff is not None:
        return np.where(found, 1.0 / cutoff, 0.0)
    if measure.NAME in ("RR", "AP"):
        return np.where(found, 1.0 / safe, 0.0)
    return None


def compute_metrics(names: list, top_items: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """Mean of each measure over users. top_items: (users, limit); targets: (users,)."""
    names = [measure_name(n, "metrics") for n in names]
    ranks = target_ranks(top_items, targets)
    results: dict[str, float] = {}
    slow = []
    for name in names:
        values = _fast_values(name, ranks)
        if values is None:
            slow.append(name)
        else:
            results[name] = float(values.mean()) if len(values) else 0.0
    if slow:
        results.update(ir_measures_metrics(slow, top_items, targets))
    return {name: results[name] for name in names}


def ir_measures_metrics(names: list, top_items: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """The same means computed by ir-measures itself (slow; the reference's way)."""
    import ir_measures

    measures = [ir_measures.parse_measure(n) for n in names]
    limit = top_items.shape[1]
    qrels = [ir_measures.Qrel(str(u), str(int(t)), 1) for u, t in enumerate(targets)]
    # Scores that fall with rank keep each list's order whatever ir-measures does with score ties.
    run = [ir_measures.ScoredDoc(str(u), str(int(item)), float(limit - rank))
           for u, row in enumerate(top_items) for rank, item in enumerate(row)]
    aggregated = ir_measures.calc_aggregate(measures, qrels, run)
    return {str(m): float(aggregated.get(m, 0.0)) for m in measures}

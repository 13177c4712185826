"""Chronological leave-one-out split with sampled validation users (SPEC.md, "ML-1M split").

Test: each user's last item, input everything before it. Validation: the second-last item of the
sampled users, input everything before that. Train: each sequence minus its last 2 items, minus 3 for
validation users (their validation target is never trained on).
"""

from __future__ import annotations

import numpy as np

from gsasrec.data.folder import Sequences, Split


def reference_validation_users(num_users: int, count: int, seed: int) -> np.ndarray:
    """(num_users,) bool: which users (in file order, user id = index + 1) are validation users,
    exactly as the reference's ML-1M split chose them.

    The reference draws numpy.random.RandomState(seed).choice(num_users, count, replace=False) and
    compares the draws with 1-based user ids, so a draw of 0 matches nobody; kept for an exact split.
    """
    count = min(count, num_users)
    drawn = np.random.RandomState(seed).choice(num_users, count, replace=False)
    chosen = np.zeros(num_users + 1, dtype=bool)
    chosen[drawn] = True
    return chosen[1:]


def leave_one_out(sequences: Sequences, is_validation: np.ndarray) -> tuple[Sequences, Split, Split]:
    """(train, val, test) from each user's full chronological sequence (every user needs >= 2 items,
    validation users >= 3)."""
    lengths = sequences.lengths
    starts = sequences.offsets[:-1]
    test = Split(inputs=sequences.prefixes(lengths - 1), targets=sequences.items[starts + lengths - 1])
    val_rows = np.flatnonzero(is_validation)
    val_sequences = sequences.take(val_rows)
    val_lengths = val_sequences.lengths
    val = Split(inputs=val_sequences.prefixes(val_lengths - 2),
                targets=val_sequences.items[val_sequences.offsets[:-1] + val_lengths - 2])
    train = sequences.prefixes(lengths - np.where(is_validation, 3, 2))
    return train, val, test



def sample_validation_users(lengths: np.ndarray, count: int, seed: int) -> np.ndarray:
    """(users,) bool: `count` users drawn without replacement (numpy RandomState(seed)) among those with
    at least 3 items, the fewest that leave a training item besides the validation and test targets."""
    eligible = np.flatnonzero(lengths >= 3)
    chosen = np.random.RandomState(seed).choice(eligible, min(count, len(eligible)), replace=False)
    is_validation = np.zeros(len(lengths), dtype=bool)
    is_validation[chosen] = True
    return is_validation

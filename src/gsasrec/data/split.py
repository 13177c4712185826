"""Chronological leave-one-out split with sampled validation users (docs/reference.md, "Data format").

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


def time_split(sequences: Sequences, times: np.ndarray, test_start: float, val_start: float | None,
               val_users: int, seed: int) -> tuple[Sequences, Split, Split, dict]:
    """(train, val, test, {"counts": ..., "users": {split: internal user id of each line}}), split at a
    moment instead of per user (times: each event's time, in the sequences' order, seconds).

    Test: every user with an event at or after test_start and one before it; the target is the first event
    from test_start on, the input everything before test_start. Train: every event before val_start, or
    before test_start without it. Validation: with val_start, the users with an event in [val_start,
    test_start) and one before val_start (at most val_users, drawn with `seed`), on their first event from
    val_start on; without it, the last training event of val_users users drawn among those with at least 3
    training events, which leaves their training sequence. Nothing from test_start on is trained on.
    """
    lengths = sequences.lengths
    starts = sequences.offsets[:-1]
    user_of = np.repeat(np.arange(len(sequences)), lengths)  # (events,)

    def before(moment: float) -> np.ndarray:
        """(users,) how many of each user's events come before `moment` (events are in time order)."""
        return np.bincount(user_of[times < moment], minlength=len(sequences))

    def held_out_at(moment: float, end: float | None = None) -> tuple[np.ndarray, Split]:
        kept = before(moment)
        after = lengths - kept if end is None else before(end) - kept
        users = np.flatnonzero((kept > 0) & (after > 0))
        return users, Split(inputs=sequences.take(users).prefixes(kept[users]),
                            targets=sequences.items[starts[users] + kept[users]])

    test_users, test = held_out_at(test_start)
    cut = test_start if val_start is None else val_start
    trained = before(cut)
    if val_start is not None:
        candidates, val = held_out_at(val_start, test_start)
        rng = np.random.RandomState(seed)
        chosen = np.sort(rng.choice(len(candidates), min(val_users, len(candidates)), replace=False))
        val = Split(inputs=val.inputs.take(chosen), targets=val.targets[chosen])
    else:
        is_validation = sample_validation_users(trained, val_users, seed)
        rows = np.flatnonzero(is_validation)
        val = Split(inputs=sequences.take(rows).prefixes(trained[rows] - 1),
                    targets=sequences.items[starts[rows] + trained[rows] - 1])
        trained = trained - is_validation
    keep = trained >= 2  # a single event trains nothing
    train = sequences.take(np.flatnonzero(keep)).prefixes(trained[keep])
    counts = {"test_users": len(test_users), "validation_users": len(val.targets),
              "training_users": int(keep.sum()), "training_events": int(trained[keep].sum())}
    val_rows = candidates[chosen] if val_start is not None else rows
    return train, val, test, {"counts": counts, "users": {"test": test_users + 1, "val": val_rows + 1}}

"""Generated logs of shapes unlike ML-1M, for measuring the derived settings (`train --dataset`) against the
popularity and transition baselines.

    python benchmarks/make_logs.py benchmarks/runs/datasets [--shapes short_sessions long_histories skewed]

Each log has the structure real ones have in some measure: items belong to clusters, each user prefers two
clusters, and the next event is, with probability 0.5, one of the current item's three related items, which
one decided by the item before it (a series read in an order that depends on where one came from: a
pattern of second order); with 0.3 an item from the user's clusters; with 0.2 any item; the last two drawn
by popularity (Zipf-like). Popularity sees only the last part; transitions (first order) see the related
items but not which of the three comes; a sequential model can learn all of it. (The first version of this
generator drew the related item at random: transitions then knew all there was to know, and no model could
beat them by much: benchmarks/logs/derived_results_first_order_logs.jsonl.)

    short_sessions  20,000 users, 15,000 items, histories log-normal around 20 (5..200)
    long_histories   2,000 users,    500 items, histories log-normal around 300 (50..1,000)
    skewed          10,000 users,  5,000 items, histories around 40, popularity exponent 1.2
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gsasrec.data.folder import Sequences, write_dataset
from gsasrec.data.split import leave_one_out, sample_validation_users

SHAPES = {  # users, items, median length, (shortest, longest), popularity exponent
    "short_sessions": (20_000, 15_000, 20, (5, 200), 0.8),
    "long_histories": (2_000, 500, 300, (50, 1_000), 0.8),
    "skewed": (10_000, 5_000, 40, (5, 400), 1.2),
}
CLUSTERS, RELATED = 50, 3
P_RELATED, P_CLUSTER = 0.5, 0.3


@dataclass
class World:
    """A generated log and the rules that made it (what benchmarks/log_ceiling.py ranks by)."""

    sequences: Sequences  # item ids from 1
    related: np.ndarray  # (items, RELATED) 0-based ids: which comes is decided by the item before
    favourite: np.ndarray  # (users, 2) each user's clusters
    cluster_draws: np.ndarray  # (CLUSTERS, 4096) popularity-weighted draws of each cluster's items
    popularity: np.ndarray  # (items,) unnormalised weights


def related_slot(previous: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Which of the current item's related items comes next, given the item before it (0-based ids)."""
    return (previous * 7 + current) % RELATED


def generate_world(users: int, items: int, median: int, bounds: tuple, exponent: float, seed: int = 0) -> World:
    rng = np.random.default_rng(seed)
    lengths = np.clip(np.round(rng.lognormal(np.log(median), 0.6, users)), *bounds).astype(np.int64)
    popularity = 1.0 / rng.permutation(np.arange(1, items + 1)) ** exponent  # (items,) popular ids spread out
    cluster = rng.integers(CLUSTERS, size=items)  # (items,)
    members = [np.flatnonzero(cluster == c) for c in range(CLUSTERS)]

    def draw(pool: np.ndarray, count: int) -> np.ndarray:
        weights = popularity[pool] / popularity[pool].sum()
        return rng.choice(pool, size=count, p=weights)

    related = np.stack([draw(members[cluster[i]], RELATED) for i in range(items)])  # (items, RELATED)
    favourite = rng.integers(CLUSTERS, size=(users, 2))  # (users, 2)
    # Per cluster, a long list of popularity-weighted draws to pick from: vectorised "an item of cluster c".
    cluster_draws = np.stack([draw(members[c], 4096) for c in range(CLUSTERS)])  # (CLUSTERS, 4096)
    events = np.zeros((users, lengths.max()), dtype=np.int64)  # (users, longest)
    current = cluster_draws[favourite[:, 0], rng.integers(4096, size=users)]
    previous = rng.integers(items, size=users)
    for t in range(lengths.max()):
        events[:, t] = current
        choice = rng.random(users)
        own = cluster_draws[favourite[np.arange(users), rng.integers(2, size=users)], rng.integers(4096, size=users)]
        anywhere = rng.choice(items, size=users, p=popularity / popularity.sum())
        nearby = related[current, related_slot(previous, current)]
        previous = current
        current = np.where(choice < P_RELATED, nearby, np.where(choice < P_RELATED + P_CLUSTER, own, anywhere))
    sequences = Sequences.from_lists([events[u, :lengths[u]] + 1 for u in range(users)])
    return World(sequences, related, favourite, cluster_draws, popularity)


def world_of(name: str, seed: int = 0) -> World:
    return generate_world(*SHAPES[name], seed)


def write_log(datasets_dir: Path, name: str, seed: int = 0) -> Path:
    users, items = SHAPES[name][:2]
    sequences = world_of(name, seed).sequences
    train, val, test = leave_one_out(sequences, sample_validation_users(sequences.lengths, 512, seed))
    used = np.unique(sequences.items)
    stats = {"num_users": users, "num_items": items, "num_interactions": int(len(sequences.items)),
             "items_with_interactions": len(used), "generated_by": f"benchmarks/make_logs.py {name} seed {seed}"}
    return write_dataset(datasets_dir / name, stats, train, val, test, force=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets_dir", type=Path)
    parser.add_argument("--shapes", nargs="+", choices=sorted(SHAPES), default=list(SHAPES))
    args = parser.parse_args()
    for name in args.shapes:
        print(f"wrote {write_log(args.datasets_dir, name)}")


if __name__ == "__main__":
    main()

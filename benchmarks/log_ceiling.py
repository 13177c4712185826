"""How far a model can get on a generated log (benchmarks/make_logs.py) at all: the test nDCG@10 of
rankings that know more than the data shows, beside the two baselines.

    python benchmarks/log_ceiling.py short_sessions [long_histories skewed]

    rules        ranks by the generator's own next-item probabilities (the best any ranking can do)
    first order  the same probabilities with the item before the last unknown (each of the current item's
                 related items equally likely): the best a ranking by the last item alone can do
    pairs        second-order counts: what followed (item before last, last item) in the training
                 sequences, then first-order counts, then popularity: what memorising the training pairs
                 gives, the part of the rules a model can learn from this much data
    transitions  the project's first-order baseline (`gsasrec evaluate --baseline transitions`)

Every ranking is measured by the project's metrics code on the test split of the same leave-one-out split
`make_logs.py` writes, without rated-item filtering (the derived settings' choice on these logs).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from make_logs import P_CLUSTER, P_RELATED, SHAPES, World, related_slot, world_of

from gsasrec.baselines import baseline_top, fit_baseline
from gsasrec.data.folder import Sequences
from gsasrec.data.split import leave_one_out, sample_validation_users
from gsasrec.items import embedding_rows
from gsasrec.metrics import compute_metrics
from gsasrec.transition_term import FollowerCounts

METRICS = ["nDCG@10", "R@1", "R@10"]
LIMIT = 10


def rule_probabilities(world: World, inputs: Sequences, know_previous: bool) -> np.ndarray:
    """(users, items) the generator's probability of each 0-based item coming next."""
    items = len(world.popularity)
    ends = inputs.offsets[1:]
    current, previous = inputs.items[ends - 1] - 1, inputs.items[ends - 2] - 1  # (users,) 0-based
    users = np.arange(len(inputs))
    in_cluster = np.stack([np.bincount(row, minlength=items) / row.size for row in world.cluster_draws])
    anywhere = world.popularity / world.popularity.sum()
    probabilities = (1 - P_RELATED - P_CLUSTER) * np.tile(anywhere, (len(inputs), 1))  # (users, items)
    for column in range(world.favourite.shape[1]):  # a favourite cluster each, equally likely
        probabilities += P_CLUSTER / world.favourite.shape[1] * in_cluster[world.favourite[:, column]]
    if know_previous:
        np.add.at(probabilities, (users, world.related[current, related_slot(previous, current)]), P_RELATED)
    else:
        for slot in range(world.related.shape[1]):
            np.add.at(probabilities, (users, world.related[current, slot]), P_RELATED / world.related.shape[1])
    return probabilities


def top_of(probabilities: np.ndarray) -> np.ndarray:
    """(users, LIMIT) project item ids (from 1) of the most probable items."""
    return np.argsort(-probabilities, axis=1, kind="stable")[:, :LIMIT] + 1


def pair_top(train: Sequences, inputs: Sequences, num_items: int) -> np.ndarray:
    """(users, LIMIT) ids ranked by second-order counts, first-order counts breaking ties and filling in."""
    users, items, counts = FollowerCounts.of(train, num_items, order=2).after(inputs)  # (entries,) each
    scores = fit_baseline("transitions", train, num_items).scores(inputs)  # (users, rows): counts + popularity
    scores[users, items] += counts * (scores.max() + 1)  # a pair's count outranks every other
    scores[:, 0] = -np.inf  # padding
    scores[:, embedding_rows(num_items) - 1:] = -np.inf  # ids past the catalogue
    return np.argsort(-scores, axis=1, kind="stable")[:, :LIMIT]


def ceiling(name: str, seed: int = 0) -> dict:
    world = world_of(name, seed)
    sequences = world.sequences
    train, _, test = leave_one_out(sequences, sample_validation_users(sequences.lengths, 512, seed))
    num_items = len(world.popularity)
    rankings = {
        "rules": top_of(rule_probabilities(world, test.inputs, know_previous=True)),
        "first order": top_of(rule_probabilities(world, test.inputs, know_previous=False)),
        "pairs": pair_top(train, test.inputs, num_items),
        "transitions": baseline_top(fit_baseline("transitions", train, num_items), test.inputs, LIMIT, False),
        "popularity": baseline_top(fit_baseline("popularity", train, num_items), test.inputs, LIMIT, False),
    }
    return {"log": name, "users": len(test.targets),
            **{ranking: compute_metrics(METRICS, top, test.targets) for ranking, top in rankings.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shapes", nargs="+", choices=sorted(SHAPES))
    for name in parser.parse_args().shapes:
        print(json.dumps(ceiling(name)), flush=True)


if __name__ == "__main__":
    main()

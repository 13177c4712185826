"""The popularity and transition baselines: lists and metrics computed by hand on a small log, and the
same figures from the command line."""

import json

import numpy as np
import pytest
from synthetic import write_successor_dataset

from gsasrec.baselines import baseline_top, evaluate_baseline, fit_baseline
from gsasrec.cli import main
from gsasrec.data.folder import Sequences, Split

# Items 1..5. Counts: item 2 x5, 4 x4, 1 x3, 3 x2, 5 x1. What followed 2: 4 four times, 3 once; what
# followed 1: 2 three times; what followed 3: 3 once; nothing followed 4 or 5.
TRAIN = Sequences.from_lists([[1, 2, 4], [1, 2, 4], [2, 4], [2, 3, 3], [1, 2, 4], [5]])
NUM_ITEMS = 5


def test_popularity_ranks_by_training_count_and_skips_rated_items():
    popularity = fit_baseline("popularity", TRAIN, NUM_ITEMS)
    inputs = Sequences.from_lists([[2], [5, 4], []])
    assert baseline_top(popularity, inputs, 3, filter_rated=True).tolist() == [[4, 1, 3], [2, 1, 3], [2, 4, 1]]
    # Without filtering a user's own items stay in.
    assert baseline_top(popularity, inputs, 2, filter_rated=False).tolist() == [[2, 4], [2, 4], [2, 4]]


def test_transitions_follow_the_last_item_and_fall_back_to_popularity():
    transitions = fit_baseline("transitions", TRAIN, NUM_ITEMS)
    inputs = Sequences.from_lists([[1, 2], [3], [5], [4, 1]])
    # after 2: 4, then 3, then 5 (1 and 2 are rated); after 3: only 3, which is rated, so popularity;
    # after 5 nothing: popularity; after 1: 2, then by popularity 3 and 5 (4 and 1 are rated).
    assert baseline_top(transitions, inputs, 3, filter_rated=True).tolist() == [
        [4, 3, 5], [2, 4, 1], [2, 4, 1], [2, 3, 5]]
    assert baseline_top(transitions, Sequences.from_lists([[3]]), 2,
                        filter_rated=False).tolist() == [[3, 2]]


def test_baseline_metrics_by_hand():
    split = Split(inputs=Sequences.from_lists([[1, 2], [5]]), targets=np.array([3, 4]))
    # transitions: user 1 gets [4, 3, 5] (target 3 at rank 2), user 2 gets [2, 4, 1] (target 4 at rank 2)
    metrics = evaluate_baseline("transitions", TRAIN, split, NUM_ITEMS, ["R@1", "R@3", "RR@3"], 3, True)
    assert metrics == pytest.approx({"R@1": 0.0, "R@3": 1.0, "RR@3": 0.5})
    # popularity: user 1 gets [4, 3, 5] too (1 and 2 rated), user 2 gets [2, 4, 1]
    metrics = evaluate_baseline("popularity", TRAIN, split, NUM_ITEMS, ["RR@3", "R@1"], 3, True)
    assert metrics == pytest.approx({"RR@3": 0.5, "R@1": 0.0})


def test_evaluate_baseline_command(tmp_path, capsys):
    write_successor_dataset(tmp_path)
    assert main(["evaluate", "--baseline", "transitions", "--dataset", "successor", "--datasets-dir",
                 str(tmp_path), "--json"]) == 0
    transitions = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert main(["evaluate", "--baseline", "popularity", "--dataset", "successor", "--datasets-dir",
                 str(tmp_path), "--json", "--split", "val"]) == 0
    popularity = json.loads(capsys.readouterr().out.splitlines()[-1])
    # Each item has one successor that follows it 90% of the time: transitions find it, popularity cannot.
    assert transitions["nDCG@10"] > 0.7 > 0.1 > popularity["nDCG@10"]
    assert main(["evaluate", "--baseline", "transitions", "--datasets-dir", str(tmp_path)]) == 2
    assert "--baseline needs --dataset NAME" in capsys.readouterr().err

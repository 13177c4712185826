"""The vectorised metric path equals ir-measures itself."""

import numpy as np
import pytest

from gsasrec.metrics import compute_metrics, ir_measures_metrics, target_ranks

MEASURES = ["nDCG@10", "nDCG@5", "nDCG", "R@1", "R@5", "R@10", "P@1", "P@5", "P@10", "RR", "RR@5",
            "AP", "AP@10", "Success@3"]


def random_lists(users=300, limit=10, num_items=40, seed=0):
    rng = np.random.default_rng(seed)
    top = np.stack([rng.permutation(num_items)[:limit] + 1 for _ in range(users)])
    # About half the targets are in the list, at every rank.
    targets = np.where(rng.random(users) < 0.5, top[np.arange(users), rng.integers(0, limit, users)],
                       rng.integers(1, num_items + 1, users))
    return top, targets


def test_target_ranks():
    top = np.array([[5, 6, 7], [1, 2, 3]])
    assert target_ranks(top, np.array([7, 9])).tolist() == [3, 0]


@pytest.mark.parametrize("seed", [0, 1])
def test_fast_path_equals_ir_measures(seed):
    top, targets = random_lists(seed=seed)
    fast = compute_metrics(MEASURES, top, targets)
    slow = ir_measures_metrics(MEASURES, top, targets)
    assert set(fast) == set(MEASURES)
    for name in MEASURES:
        assert fast[name] == pytest.approx(slow[name], abs=1e-12), name
    assert fast["R@10"] > 0.3  # the lists do contain targets


def test_measures_without_a_fast_path_go_to_ir_measures():
    top, targets = random_lists()
    name = "nDCG(gains={0:0,1:1})@10"
    value = compute_metrics([name], top, targets)
    assert list(value.values())[0] == pytest.approx(compute_metrics(["nDCG@10"], top, targets)["nDCG@10"])

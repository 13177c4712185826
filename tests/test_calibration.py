"""Expected calibration error and the reliability diagram."""

import json

import numpy as np
import pytest
import torch

from gsasrec.calibration import expected_calibration_error, scored_pairs
from gsasrec.cli import main
from gsasrec.data.folder import Sequences, Split
from gsasrec.model import GSASRec


def test_calibrated_probabilities_have_small_ece_and_overconfident_ones_large():
    rng = np.random.default_rng(0)
    probabilities = rng.random(200_000)
    labels = (rng.random(200_000) < probabilities).astype(float)
    calibrated = expected_calibration_error(probabilities, labels)
    assert calibrated.ece < 0.01 and calibrated.expected_over_observed == pytest.approx(1.0, abs=0.01)
    overconfident = expected_calibration_error(np.clip(probabilities * 1.6, 0, 1), labels)
    assert overconfident.ece > 0.15 and overconfident.expected_over_observed > 1.3


def test_weights_stand_for_unsampled_negatives():
    # 1 positive at p=0.5 and 1 sampled negative standing for 3: the population is 1 in 4, not 1 in 2.
    result = expected_calibration_error(np.array([0.5, 0.5]), np.array([1.0, 0.0]), np.array([1.0, 3.0]))
    assert result.ece == pytest.approx(0.25)
    assert result.expected_over_observed == pytest.approx(2.0)  # 0.5 + 3 x 0.5 predicted for 1 observed
    assert result.weight.sum() == pytest.approx(1.0)


def test_evaluate_with_calibration(pattern_run, tmp_path, capsys):
    root, _, run_dir = pattern_run
    plot = tmp_path / "reliability.png"
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(run_dir / "best.pt"), "--datasets-dir", str(root / "datasets"),
                 "--calibration", "--calibration-negatives", "20", "--calibration-plot", str(plot), "--json"]) == 0
    values = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0 <= values["ECE"] <= 1 and values["E/O"] > 0 and "nDCG@10" in values
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_default_diagram_goes_to_the_working_directory_not_beside_the_checkpoint(pattern_run, tmp_path,
                                                                                monkeypatch):
    root, _, run_dir = pattern_run
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "--checkpoint", str(run_dir / "last.pt"), "--datasets-dir", str(root / "datasets"),
                 "--calibration", "--calibration-negatives", "10"]) == 0
    assert (tmp_path / "last_calibration.png").read_bytes()[:4] == b"\x89PNG"
    assert not (run_dir / "last_calibration.png").exists()


def test_small_ece_is_shown_with_its_digits():
    from gsasrec.calibration import Calibration, figures_line

    calibration = Calibration(0.0000404, 0.9903, np.linspace(0, 1, 3), np.zeros(2), np.zeros(2), np.ones(2) / 2)
    assert figures_line(calibration) == "ECE 4.04e-05, E/O 0.99"


def test_filter_rated_measures_over_the_items_a_recommender_can_return():
    # Bias +30 on the rated items 1..5 (sigmoid 1: the model is sure of items it has seen) and -30 on all
    # others, targets included. Over the catalogue the rated items count as wrong predictions; over each
    # user's unrated items nothing is predicted and nothing happens (E/O 0, not 5).
    num_items, negatives = 40, 400
    model = GSASRec(num_items, sequence_length=8, embedding_dim=8, num_heads=1, num_blocks=1,
                    init_std=0.02, initial_bias=0.0)
    with torch.no_grad():
        model.output_bias.fill_(-30.0)
        model.output_bias[1:6] = 30.0
    split = Split(Sequences.from_lists([[1, 2, 3, 4, 5], [5, 3, 1, 2, 4]]), np.array([6, 7]))
    catalogue = expected_calibration_error(*scored_pairs(model, split, negatives))
    unrated_pairs = scored_pairs(model, split, negatives, filter_rated=True)
    unrated = expected_calibration_error(*unrated_pairs)
    # Each user's 5 rated items are 5 of its 39 non-targets; weighted, they stand for 5 items predicted at
    # probability 1 per user, against 1 target observed.
    assert catalogue.expected_over_observed == pytest.approx(5, rel=0.2)
    assert unrated.expected_over_observed < 1e-6
    probabilities, labels, weights = unrated_pairs
    per_user = weights.reshape(2, 1 + negatives)
    assert per_user[:, 0].tolist() == [1.0, 1.0]
    # the non-targets stand for the 40 - 5 - 1 unrated items other than the target
    assert per_user[:, 1:].sum(1) == pytest.approx([34, 34])

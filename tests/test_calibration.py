"""Expected calibration error and the reliability diagram."""

import json

import numpy as np
import pytest

from gsasrec.calibration import expected_calibration_error
from gsasrec.cli import main


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

"""The shipped models under pretrained/: small, weights-only, and they give the figures the README states."""

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gsasrec.checkpoint import read_checkpoint
from gsasrec.config import load_config
from gsasrec.recommender import Recommender
from gsasrec.serve import create_app

REPO = Path(__file__).resolve().parents[1]
PRETRAINED = sorted((REPO / "pretrained").glob("*.pt"))


def test_the_gsasrec_and_sasrec_models_are_shipped_small():
    names = [path.name for path in PRETRAINED]
    assert any("gsasrec" in name for name in names) and any(re.match(r".*(?<!g)sasrec", n) for n in names)
    for path in PRETRAINED:
        assert path.stat().st_size < 6 * 2**20, path
        payload = read_checkpoint(path)  # torch.load(weights_only=True)
        assert {"command", "steps", "minutes", "test_metrics", "calibration"} <= set(payload)


@pytest.mark.parametrize("path", PRETRAINED, ids=[p.stem for p in PRETRAINED])
def test_the_stored_command_names_a_config_that_gives_the_stored_settings(path):
    """Rerunning a shipped file's command trains the model it holds: its --config file, as it is in the
    repository now, gives every setting the checkpoint stored (files from before a field existed lack it)."""
    stored = read_checkpoint(path)
    words = shlex.split(stored["command"])
    assert "--set" not in words, stored["command"]  # a shipped recipe is a file, not a file plus overrides
    config = load_config(REPO / words[words.index("--config") + 1]).to_dict()  # as save_checkpoint stores it
    assert {field: config[field] for field in stored["config"]} == stored["config"]


@pytest.mark.parametrize("path", PRETRAINED, ids=[p.stem for p in PRETRAINED])
def test_evaluate_prints_the_stored_test_figures_and_the_readme_states_them(path, shared_datasets, tmp_path):
    stored = read_checkpoint(path)
    result = subprocess.run([sys.executable, "-m", "gsasrec", "evaluate", "--checkpoint", str(path),
                             "--datasets-dir", str(shared_datasets), "--json", "--device", "cpu", "--calibration",
                             "--calibration-plot", str(tmp_path / "c.png")],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout.splitlines()[-1])
    assert printed == pytest.approx({**stored["test_metrics"], **stored["calibration"]}, rel=1e-5, abs=1e-6)
    row = next(line for line in (REPO / "README.md").read_text().splitlines() if f"`{path.name}`" in line)
    for value in stored["test_metrics"].values():
        assert f"{value:.4f}" in row, row
    for value in stored["calibration"].values():  # ECE and E/O, three significant digits
        assert f"{value:.3g}" in row, row


@pytest.mark.parametrize("path", PRETRAINED, ids=[p.stem for p in PRETRAINED])
def test_recommend_and_serve_work_on_the_shipped_models(path, shared_datasets):
    recommender = Recommender.from_checkpoint(path, device="cpu", datasets_dir=shared_datasets)
    result = recommender.recommend([1, 2, 3, 4], k=5)
    assert len(result.items) == 5 and all(0 < r["probability"] < 1 for r in result.items)
    assert all(r["name"] for r in result.items)  # ML-1M titles from the folder's extra/
    with TestClient(create_app(recommender)) as client:
        response = client.post("/recommend", json={"history": [1, 2, 3, 4], "k": 5})
    assert response.status_code == 200
    assert [r["item"] for r in response.json()["items"]] == [r["item"] for r in result.items]

"""gsasrec tune: an Optuna study in SQLite over a tiny dataset: trials, pruning, the best config (which
trains), and a study resumed after its process was killed."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from synthetic import write_successor_dataset

from gsasrec.cli import main
from gsasrec.config import load_config

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tune")
    write_successor_dataset(root, num_users=200, num_items=60, val_users=32)
    return root


def tune_args(root: Path, out: Path, trials: int) -> list[str]:
    return ["tune", "--dataset", "successor", "--datasets-dir", str(root), "--trials", str(trials),
            "--max-steps", "12", "--output-dir", str(out), "--device", "cpu", "--precision", "fp32"]


def test_tune_writes_the_study_the_best_config_and_the_table(tiny, tmp_path, capsys):
    out = tmp_path / "tune"
    assert main(tune_args(tiny, out, 6)) == 0
    printed = capsys.readouterr().out
    assert printed.count("\ntrial ") + printed.startswith("trial ") == 6 and "[6/6]" in printed
    study = optuna.load_study(study_name="gsasrec-successor", storage=f"sqlite:///{out / 'study.db'}")
    states = [t.state.name for t in study.trials]
    assert len(states) == 6 and "PRUNED" in states  # a trial clearly behind was stopped early
    rows = list(csv.DictReader((out / "trials.csv").open()))
    assert [r["state"] for r in rows] == [s.lower() for s in states]
    pruned = next(r for r in rows if r["state"] == "pruned")
    assert int(pruned["steps"]) < 12
    assert (out / "trials.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    best = load_config(out / "best_config.py")
    assert best.embedding_dim == study.best_trial.params["embedding_dim"]
    assert best.learning_rate == study.best_trial.params["learning_rate"]
    assert main(["train", "--config", str(out / "best_config.py"), "--datasets-dir", str(tiny), "--max-steps", "3",
                 "--output-dir", str(tmp_path / "best-run"), "--no-progress", "--device", "cpu"]) == 0


def test_a_killed_tune_resumes_its_study(tiny, tmp_path, capsys):
    out = tmp_path / "tune"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    process = subprocess.Popen([sys.executable, "-m", "gsasrec", *tune_args(tiny, out, 3)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in process.stdout:  # kill it as soon as one trial has finished, in the middle of the next
        if line.startswith("trial 0 "):
            time.sleep(0.5)
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    study = optuna.load_study(study_name="gsasrec-successor", storage=f"sqlite:///{out / 'study.db'}")
    finished = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 1
    assert main(tune_args(tiny, out, 3)) == 0
    assert "(1 already finished)" in capsys.readouterr().out
    study = optuna.load_study(study_name="gsasrec-successor", storage=f"sqlite:///{out / 'study.db'}")
    assert len([t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]) == 3
    assert main(tune_args(tiny, out, 3)) == 0  # nothing left to do: the results are written again
    assert "already has 3 finished trials" in capsys.readouterr().out


def test_a_bad_storage_url_is_one_line(tiny, tmp_path, capsys):
    assert main([*tune_args(tiny, tmp_path / "t", 1), "--storage", "nosuchdb://x"]) == 2
    assert "cannot open the study database 'nosuchdb://x'" in capsys.readouterr().err

"""Runs survive interruption: SIGKILL and SIGTERM on a real subprocess, then --resume."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from synthetic import write_config, write_cycle_dataset

from gsasrec.cli import main
from gsasrec.runs import CURVE, read_records


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("resume")
    write_cycle_dataset(tmp_path / "datasets", num_users=256, num_items=30, val_users=16)
    config = write_config(tmp_path / "c.py", max_epochs=6, max_batches_per_epoch=8, train_batch_size=32,
                          early_stopping_patience=100, negs_per_pos=8, lr_decay_steps=30,
                          # Random windows draw from a random stream each batch: resuming must redraw them.
                          sequence_length=10, random_windows=True)
    return tmp_path, config


@pytest.fixture(scope="module")
def straight(small_run):
    """The same run, never interrupted."""
    tmp_path, config = small_run
    run_dir = tmp_path / "straight"
    assert subprocess.run(train_command(tmp_path, config, run_dir), capture_output=True).returncode == 0
    return run_dir


def train_command(tmp_path, config, run_dir, *extra):
    return [sys.executable, "-m", "gsasrec", "train", "--config", str(config), "--datasets-dir",
            str(tmp_path / "datasets"), "--output-dir", str(run_dir), "--seed", "5", "--no-progress", *extra]


def weights(run_dir):
    return torch.load(run_dir / "last.pt", weights_only=True)["state_dict"]


def wait_for_epochs(run_dir, epochs, process, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if len(read_records(run_dir)) >= epochs and (run_dir / "last.pt").exists():
            return
        assert process.poll() is None, "training ended before it could be interrupted"
        time.sleep(0.05)
    raise AssertionError("no epochs logged in time")


def test_two_runs_with_the_same_seed_are_bit_identical(small_run, straight):
    # On a CPU, with the same torch and thread count (README, "Resuming"): not close, equal.
    tmp_path, config = small_run
    twin = tmp_path / "twin"
    assert subprocess.run(train_command(tmp_path, config, twin), capture_output=True).returncode == 0
    for key, value in weights(straight).items():
        assert torch.equal(value, weights(twin)[key]), key
    assert [r["metrics"] for r in read_records(twin)] == [r["metrics"] for r in read_records(straight)]


def test_sigkill_mid_run_then_resume_reaches_the_same_weights(small_run, straight):
    tmp_path, config = small_run
    broken = tmp_path / "broken"
    process = subprocess.Popen(train_command(tmp_path, config, broken), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    wait_for_epochs(broken, 2, process)
    time.sleep(0.3)  # well into the next epoch
    process.send_signal(signal.SIGKILL)
    process.wait()
    records = read_records(broken)
    assert 2 <= len(records) < 6
    assert main(["train", "--resume", str(broken), "--no-progress"]) == 0
    final_straight, final_resumed = weights(straight), weights(broken)
    for key in final_straight:
        assert torch.equal(final_straight[key], final_resumed[key]), key
    assert [r["epoch"] for r in read_records(broken)] == [1, 2, 3, 4, 5, 6]
    assert [r["metrics"] for r in read_records(broken)] == [r["metrics"] for r in read_records(straight)]
    assert main(["train", "--resume", str(broken)]) == 2  # finished: nothing to resume


def test_sigterm_saves_last_mid_epoch_and_resume_is_exact(small_run, straight, capsys):
    tmp_path, config = small_run
    stopped = tmp_path / "stopped"
    process = subprocess.Popen(train_command(tmp_path, config, stopped), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    wait_for_epochs(stopped, 1, process)
    time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    # An interruption is not an error: the resume hint once, the conventional exit code of a signal stop.
    assert process.returncode == 130 and "error" not in stderr
    assert (stdout + stderr).count("gsasrec train --resume") == 1
    state = torch.load(stopped / "last.pt", weights_only=True)
    assert not state["progress"]["finished"]
    # runs list reads where last.pt stands, mid-epoch, not the last validated epoch
    capsys.readouterr()
    assert main(["runs", "list", str(tmp_path), "--json"]) == 0
    listed = {Path(r["run"]).name: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    progress = state["progress"]
    assert listed["stopped"]["steps"] == progress["steps"] > read_records(stopped)[-1]["step"]
    assert (listed["stopped"]["epochs"], listed["stopped"]["epoch_steps"]) == (progress["epoch"] - 1,
                                                                               progress["batch"])
    assert listed["stopped"]["resumable"] and not listed["straight"]["resumable"]  # finished: nothing to resume
    assert main(["train", "--resume", str(stopped), "--no-progress"]) == 0
    # It says where it resumes: the step, the epoch and how far into it, the time already trained.
    said = capsys.readouterr().out.splitlines()[0]
    assert said.startswith(f"resuming {stopped} at step {progress['steps']} (epoch {progress['epoch']}, "
                           f"{progress['batch']} of its steps done), ") and "minutes trained" in said
    for key, value in weights(straight).items():
        assert torch.equal(value, weights(stopped)[key]), key


def test_run_directory_and_runs_commands(small_run, capsys):
    tmp_path, config = small_run
    run_dir = tmp_path / "runs" / "one"
    assert main(["train", "--config", str(config), "--datasets-dir", str(tmp_path / "datasets"),
                 "--output-dir", str(run_dir), "--max-steps", "10", "--seed", "1"]) == 0
    assert f"final weights: {run_dir / 'last.pt'}" in capsys.readouterr().out
    described = json.loads((run_dir / "config.json").read_text())
    assert {"config", "run", "dataset_stats", "environment"} <= set(described)
    assert described["environment"]["torch"] == torch.__version__
    assert (run_dir / CURVE).read_bytes()[:4] == b"\x89PNG"
    assert (run_dir / "best.pt").exists() and (run_dir / "last.pt").exists()
    capsys.readouterr()
    assert main(["runs", "list", str(tmp_path / "runs"), "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(listed) == 1 and listed[0]["steps"] == 10 and listed[0]["resumable"] is True
    assert main(["runs", "show", str(run_dir)]) == 0
    shown = capsys.readouterr().out
    assert "best" in shown and "epoch" in shown and "environment" in shown
    assert main(["runs", "show", str(tmp_path)]) == 2
    # A budget-stopped run can go on: resume with a new budget continues from step 10.
    assert main(["train", "--resume", str(run_dir), "--max-steps", "14"]) == 0
    assert read_records(run_dir)[-1]["step"] == 14


def test_resume_keeps_the_runs_budget_and_precision(small_run):
    tmp_path, config = small_run
    run_dir = tmp_path / "budgeted"
    process = subprocess.Popen(train_command(tmp_path, config, run_dir, "--max-steps", "20", "--precision", "bf16"),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_epochs(run_dir, 1, process)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 130
    assert torch.load(run_dir / "last.pt", weights_only=True)["progress"]["steps"] < 20
    assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 0  # no flags: the run's own
    state = torch.load(run_dir / "last.pt", weights_only=True)
    assert state["progress"]["steps"] == 20 and read_records(run_dir)[-1]["step"] == 20
    command = state["run_options"].pop("command")  # the command that started the run, for the model's card
    assert state["run_options"] == {"max_steps": 20, "max_minutes": None, "precision": "bf16", "compile": False}
    assert command.startswith("gsasrec train --config") and state["command"] == command
    assert main(["train", "--resume", str(run_dir)]) == 2  # its budget is spent: say so
    assert main(["train", "--resume", str(run_dir), "--max-steps", "24", "--no-progress"]) == 0
    assert read_records(run_dir)[-1]["step"] == 24

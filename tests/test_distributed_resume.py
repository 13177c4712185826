"""Distributed runs that resume and heal: real torchrun jobs of 2 CPU ranks on gloo, one rank killed with
SIGKILL mid-run; the continued run must end with the weights and losses of an uninterrupted one."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from synthetic import write_config, write_cycle_dataset

from gsasrec.cli import main
from gsasrec.runs import read_records

STEPS = 40


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp-resume")
    write_cycle_dataset(root / "datasets", num_users=512, num_items=200, val_users=16)
    # Dropout on: each rank's own dropout and negatives streams must come back for a bit-identical resume.
    config = write_config(root / "c.py", max_epochs=100, max_batches_per_epoch=4, train_batch_size=128,
                          negs_per_pos=64, sequence_length=32, embedding_dim=64, dropout_rate=0.2,
                          early_stopping_patience=100)
    uninterrupted = root / "uninterrupted"
    assert main(train_command(root, config, uninterrupted)) == 0
    return root, config, uninterrupted


def train_command(root: Path, config: Path, run_dir: Path, *extra: str) -> list[str]:
    return ["train", "--config", str(config), "--datasets-dir", str(root / "datasets"), "--seed", "11",
            "--max-steps", str(STEPS), "--no-progress", "--output-dir", str(run_dir), "--nproc", "2", *extra]


def start(arguments: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gsasrec", *arguments], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def kill_rank_after(job: subprocess.Popen, run_dir: Path, steps: int, rank: int = 1) -> None:
    """SIGKILL the worker of `rank` once the run has saved last.pt at `steps` or later."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert job.poll() is None, f"the job ended before the kill:\n{job.stdout.read()[-3000:]}"
        state = run_dir / "state.json"
        if state.exists() and json.loads(state.read_text())["progress"]["steps"] >= steps:
            worker = worker_of_rank(job.pid, rank)
            if worker is not None:
                os.kill(worker, signal.SIGKILL)
                return
        time.sleep(0.02)
    raise AssertionError("the run never reached the step to kill it at")


def worker_of_rank(root: int, rank: int) -> int | None:
    """The process under `root` that torchrun started as `rank` (its environment says RANK=rank)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    below, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - below
        below |= frontier
    for pid in below:
        try:
            environment = (Path("/proc") / str(pid) / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in environment and b"TORCHELASTIC_RUN_ID=" in b" ".join(environment):
            return pid
    return None


def assert_same_run(run_dir: Path, uninterrupted: Path) -> None:
    ours = torch.load(run_dir / "last.pt", weights_only=True)
    theirs = torch.load(uninterrupted / "last.pt", weights_only=True)
    assert ours["step"] == theirs["step"] == STEPS
    for name, weights in theirs["state_dict"].items():
        assert torch.equal(ours["state_dict"][name], weights), name
    # Every epoch logged once, with the uninterrupted run's losses and metrics to every digit.
    strip = [{k: v for k, v in r.items() if "seconds" not in k} for r in read_records(uninterrupted)]
    assert [{k: v for k, v in r.items() if "seconds" not in k} for r in read_records(run_dir)] == strip


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the ranks' processes through /proc")
def test_a_killed_rank_then_resume_with_the_same_world_size_is_bit_identical(setup):
    root, config, uninterrupted = setup
    run_dir = root / "killed"
    job = start(train_command(root, config, run_dir))
    kill_rank_after(job, run_dir, steps=12)
    output, _ = job.communicate(timeout=300)
    assert job.returncode != 0
    assert f"continue it with: gsasrec train --resume {run_dir} --nproc 2" in output
    assert torch.load(run_dir / "last.pt", weights_only=True)["step"] < STEPS
    assert main(["train", "--resume", str(run_dir), "--nproc", "2", "--no-progress"]) == 0
    assert_same_run(run_dir, uninterrupted)


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the ranks' processes through /proc")
def test_max_restarts_heal_a_killed_rank_from_last_pt(setup):
    root, config, uninterrupted = setup
    run_dir = root / "healed"
    # One restart is needed; three are allowed so that a round that fails for an unrelated reason (a port
    # taken on a busy machine) does not fail the test.
    job = start(train_command(root, config, run_dir, "--resume-if-exists", "--max-restarts", "3"))
    kill_rank_after(job, run_dir, steps=12)
    output, _ = job.communicate(timeout=300)
    assert job.returncode == 0, output[-3000:]
    assert f"resuming {run_dir} at step" in output  # the restarted workers picked up last.pt themselves
    assert_same_run(run_dir, uninterrupted)
    # Once ended, the same command has nothing to do, and says so.
    again = subprocess.run([sys.executable, "-m", "gsasrec", *train_command(root, config, run_dir,
                                                                            "--resume-if-exists")],
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "nothing to do" in again.stdout


LATE_RESTARTED_RANK = """
import os, sys, time
import torch
from gsasrec.distributed import barrier, join, leave
rank, round_number = int(os.environ["RANK"]), int(os.environ["TORCHELASTIC_RESTART_COUNT"])
if round_number == 1 and rank == 1:
    time.sleep(3)  # restarted later than rank 0, as on a loaded machine
world = join(torch.device("cpu"))
barrier(world)
if round_number == 0 and rank == 1:
    sys.exit(3)  # a rank that fails after joining: torchrun restarts both
barrier(world)
print(f"rank {rank} joined round {round_number}", flush=True)
leave(world)
"""


def test_a_restarted_round_joins_even_when_one_rank_starts_late(tmp_path):
    # torchrun keeps its store across restart rounds: without a prefix per round, rank 0 read the killed
    # rank's old gloo address and failed with "Connection refused" (the healing test's flake under load).
    worker = tmp_path / "worker.py"
    worker.write_text(LATE_RESTARTED_RANK)
    job = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "--max-restarts=1", str(worker)], capture_output=True, text=True, timeout=300)
    assert job.returncode == 0, job.stderr[-3000:]
    assert "rank 0 joined round 1" in job.stdout and "rank 1 joined round 1" in job.stdout


def test_a_distributed_run_resumes_in_one_process_with_a_note(setup, capsys):
    root, config, uninterrupted = setup
    run_dir = root / "single"
    assert main(train_command(root, config, run_dir)[:-2] + ["--nproc", "2", "--max-steps", "8"]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(run_dir), "--no-progress", "--max-steps", str(STEPS)]) == 0
    assert "was trained on 2 processes and resumes on 1" in capsys.readouterr().err
    assert torch.load(run_dir / "last.pt", weights_only=True)["step"] == STEPS


def test_resume_if_exists_starts_continues_and_refuses_another_run(tmp_path, capsys):
    write_cycle_dataset(tmp_path / "datasets", num_users=64, num_items=30, val_users=8)
    config = write_config(tmp_path / "c.py", max_batches_per_epoch=2, max_epochs=10)
    run_dir = tmp_path / "run"
    command = ["train", "--config", str(config), "--datasets-dir", str(tmp_path / "datasets"), "--seed", "3",
               "--no-progress", "--output-dir", str(run_dir), "--resume-if-exists"]
    assert main([*command, "--max-steps", "3"]) == 0  # nothing there: a new run
    assert "resuming" not in capsys.readouterr().out
    assert main([*command, "--max-steps", "6"]) == 0  # its last.pt: continued
    assert f"resuming {run_dir} at step 3" in capsys.readouterr().out
    assert main([*command, "--max-steps", "6"]) == 0
    assert "stopped at its budget (step 6, 0.0 min): nothing to do" in capsys.readouterr().out
    assert main([*command, "--max-steps", "9", "--set", "learning_rate=0.01"]) == 2
    assert "holds another run (learning_rate is 0.001 there, 0.01 here)" in capsys.readouterr().err
    # A run killed before its first last.pt starts over under the same config, never under another.
    (run_dir / "last.pt").unlink()
    assert main([*command, "--max-steps", "2"]) == 0
    assert [r["step"] for r in read_records(run_dir)] == [2]


@pytest.mark.parametrize("extra, message", [
    (["--resume-if-exists"], "--resume-if-exists needs --output-dir"),
    (["--output-dir", "x", "--resume-if-exists", "--force"], "does not go with --resume or --force"),
    (["--output-dir", "x", "--nproc", "2", "--max-restarts", "2"], "--max-restarts needs --nproc N and --resume-if"),
    (["--max-restarts", "-1"], "expected a whole number >= 0"),
])
def test_restart_options_are_checked(tmp_path, capsys, extra, message):
    try:
        code = main(["train", "--config", "c.py", *extra])
    except SystemExit as exit:  # argparse's own refusal of a value
        code = exit.code
    assert code == 2
    assert message in capsys.readouterr().err

"""Every long job reports progress: when stderr is not a terminal, a plain line at least every
LINE_EVERY_SECONDS (shortened here so that the test jobs, a fraction of a second long, print some)."""

import time

import pytest

import gsasrec.progress
from gsasrec.cli import main
from gsasrec.progress import JobProgress


@pytest.fixture
def often(monkeypatch):
    monkeypatch.setattr(gsasrec.progress, "LINE_EVERY_SECONDS", 0.001)


def test_counted_job_prints_done_total_rate_and_eta(capsys):
    with JobProgress("scoring", total=10, unit="users", terminal=False, every=0.02) as progress:
        for _ in range(10):
            time.sleep(0.01)
            progress.update(1)
    captured = capsys.readouterr()
    assert captured.out == ""  # stdout keeps a command's results only
    lines = captured.err.splitlines()
    assert len(lines) >= 2 and all(line.startswith("scoring: ") for line in lines)
    assert "/10 users" in lines[-1] and "users/s" in lines[-1] and "ETA" in lines[-1]


def test_single_long_call_shows_its_stage_and_elapsed_time(capsys):
    with JobProgress("importing log.csv: reading", terminal=False, every=0.02) as progress:
        time.sleep(0.15)
        progress.stage("importing log.csv: writing")
        time.sleep(0.15)
    lines = capsys.readouterr().err.splitlines()
    assert any(line.startswith("importing log.csv: reading: ") for line in lines)
    assert lines[-1].startswith("importing log.csv: writing: ") and lines[-1].endswith("elapsed")


def test_hidden_progress_prints_nothing(capsys):
    with JobProgress("scoring", total=3, terminal=False, every=0.001, shown=False) as progress:
        time.sleep(0.02)
        progress.update(3)
    assert capsys.readouterr().err == ""


def test_evaluate_and_the_calibration_pass_report_progress(pattern_run, tmp_path, capsys, often):
    root, _, run_dir = pattern_run
    assert main(["evaluate", "--checkpoint", str(run_dir / "best.pt"), "--datasets-dir", str(root / "datasets"),
                 "--calibration", "--calibration-plot", str(tmp_path / "c.png"), "--batch-size", "8"]) == 0
    err = capsys.readouterr().err
    assert "ranking test users: " in err and "calibration pass: " in err and "ETA" in err


def test_import_and_export_report_progress(pattern_run, tmp_path, capsys, often):
    log = tmp_path / "log.csv"
    log.write_text("user,item\n" + "".join(f"u{u},i{(u + k) % 20}\n" for u in range(60) for k in range(5)))
    assert main(["data", "import", "--interactions", str(log), "--name", "shop", "--datasets-dir",
                 str(tmp_path / "datasets"), "--val-users", "5", "--user-col", "user", "--item-col", "item"]) == 0
    assert "importing log.csv: " in capsys.readouterr().err
    _, _, run_dir = pattern_run
    assert main(["export", "--checkpoint", str(run_dir / "best.pt"), "--format", "torchscript",
                 "--output", str(tmp_path / "scorer.pt")]) == 0
    assert "exporting torchscript: " in capsys.readouterr().err


def test_a_minutes_budget_shows_the_steps_it_expects_not_max_epochs_worth():
    from gsasrec.progress import Budget, RunProgress

    progress = RunProgress(Budget(None, max_minutes=1.0, spent_seconds=10), total_steps=1_000_000, first_step=0,
                           terminal=False)
    progress.started -= 10  # ten seconds in, 50 steps done: 5 steps/s, about 50 s left
    line = progress.line(50, 0.5, time.perf_counter())
    expected = int(line.split("/~")[1].split()[0])
    assert 290 <= expected <= 310 and "1000000" not in line
    by_steps = RunProgress(Budget(1400, None), total_steps=1_000_000, first_step=0, terminal=False)
    assert by_steps.line(5, 0.5, time.perf_counter()).startswith("step 5/1400 ")

"""Hostile input and faults: a one-line error, a non-zero exit, and nothing already there lost."""

import os
import resource
import subprocess
import sys

import pytest


def gsasrec(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "gsasrec", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def assert_one_line_error(result, words):
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gsasrec: error:") and words in lines[0], result.stderr


@pytest.fixture
def datasets(tmp_path):
    """A datasets folder holding a precious file, a log to import, and a folder that is not a dataset."""
    root = tmp_path / "datasets"
    root.mkdir()
    (root / "precious.txt").write_text("keep me")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "notes.txt").write_text("keep me too")
    log = tmp_path / "log.csv"
    log.write_text("user_id,item_id\n" + "".join(f"u{u},i{(u + k) % 7}\n" for u in range(20) for k in range(4)))
    return root, log


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "/tmp"])
def test_import_refuses_a_dataset_name_that_is_not_one_plain_folder_name(datasets, tmp_path, name):
    root, log = datasets
    result = gsasrec("data", "import", "--interactions", log, "--name", name, "--datasets-dir", root, "--force")
    assert_one_line_error(result, "must be one plain folder name")
    assert (root / "precious.txt").read_text() == "keep me"
    assert sorted(p.name for p in root.iterdir()) == ["precious.txt"]


def test_force_replaces_only_a_dataset_folder(datasets, tmp_path):
    root, log = datasets
    (root / "notes").mkdir()
    (root / "notes" / "draft.txt").write_text("mine")
    result = gsasrec("data", "import", "--interactions", log, "--name", "notes", "--datasets-dir", root, "--force")
    assert_one_line_error(result, "is not a dataset folder")
    assert (root / "notes" / "draft.txt").read_text() == "mine"
    assert gsasrec("data", "import", "--interactions", log, "--name", "shop", "--datasets-dir", root).returncode == 0
    again = gsasrec("data", "import", "--interactions", log, "--name", "shop", "--datasets-dir", root, "--force")
    assert again.returncode == 0 and (root / "shop" / "dataset_stats.json").is_file()


def test_nan_timestamps_are_dropped_and_counted_like_missing_ones(tmp_path):
    log = tmp_path / "log.csv"
    rows = ["user_id,item_id,ts"] + [f"u{u},i{k},{k}" for u in range(6) for k in range(3)]
    rows += ["u0,late,NaN", "u1,late,nan"]  # a NaN sorted as the newest event would become the test target
    log.write_text("\n".join(rows) + "\n")
    result = gsasrec("data", "import", "--interactions", log, "--name", "t", "--time-col", "ts",
                     "--datasets-dir", tmp_path / "datasets", "--val-users", "2")
    assert result.returncode == 0, result.stderr
    assert "2 rows with a missing timestamp dropped" in result.stdout
    assert "late" not in (tmp_path / "datasets" / "t" / "item_ids.tsv").read_text()


def test_a_full_disk_during_import_is_a_one_line_error_and_keeps_the_old_folder(datasets):
    # The file-size limit makes every write past 2 KB fail with EFBIG, as a full disk fails with ENOSPC
    # (Python ignores SIGXFSZ, so the write returns the error instead of killing the process).
    root, log = datasets
    log.write_text("user_id,item_id\n" + "".join(f"u{u},i{(u * 7 + k) % 50}\n" for u in range(300) for k in range(6)))
    assert gsasrec("data", "import", "--interactions", log, "--name", "shop", "--datasets-dir", root).returncode == 0
    before = {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    def small_disk():
        resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))

    result = subprocess.run([sys.executable, "-m", "gsasrec", "data", "import", "--interactions", str(log),
                             "--name", "shop", "--datasets-dir", str(root), "--force"],
                            capture_output=True, text=True, timeout=300, preexec_fn=small_disk)
    assert_one_line_error(result, "cannot write dataset folder")
    after = {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert after == before  # the old dataset is whole, no half-written sibling is left


def test_an_imported_dataset_folder_follows_the_umask(datasets):
    root, log = datasets
    assert gsasrec("data", "import", "--interactions", log, "--name", "shop", "--datasets-dir", root).returncode == 0
    assert (root / "shop").stat().st_mode & 0o777 == 0o777 & ~current_umask()


def current_umask() -> int:

    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_train_on_a_missing_datasets_folder_creates_nothing_when_ml1m_cannot_be_built(tmp_path):
    from synthetic import write_config

    config = write_config(tmp_path / "c.py", dataset_name="ml1m")
    missing = tmp_path / "nowhere" / "datasets"
    # No network in the test: point the recipe at a source that cannot be fetched.
    result = subprocess.run([sys.executable, "-c", (
        "import sys; import gsasrec.data.recipes as r; r.ML1M_URL = 'file:///nonexistent/ml-1m.txt'; "
        "r.build_ml1m.__defaults__ = (r.ML1M_URL, None, False); from gsasrec.cli import main; "
        f"sys.exit(main(['train', '--config', {str(config)!r}, '--datasets-dir', {str(missing)!r}]))")],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert not missing.exists()


def test_train_refuses_a_folder_that_holds_a_run_unless_forced(tmp_path):
    from synthetic import write_config, write_cycle_dataset

    write_cycle_dataset(tmp_path / "datasets", num_users=40, num_items=20, val_users=8)
    config = write_config(tmp_path / "c.py", max_epochs=2, max_batches_per_epoch=2)
    run = tmp_path / "run"
    command = ["train", "--config", config, "--datasets-dir", tmp_path / "datasets", "--output-dir", run,
               "--seed", "1", "--no-progress"]
    assert gsasrec(*command).returncode == 0
    log = (run / "metrics.jsonl").read_text()
    best = (run / "best.pt").read_bytes()
    again = gsasrec(*command)
    assert_one_line_error(again, f"gsasrec train --resume {run}")
    assert (run / "metrics.jsonl").read_text() == log and (run / "best.pt").read_bytes() == best
    forced = gsasrec(*command, "--force", "--seed", "2")
    assert forced.returncode == 0, forced.stderr
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2  # the new run's epochs only


@pytest.fixture
def tiny(tmp_path):
    from synthetic import write_config, write_cycle_dataset

    write_cycle_dataset(tmp_path / "datasets", num_users=40, num_items=20, val_users=8)
    return tmp_path, write_config(tmp_path / "c.py", max_epochs=1, max_batches_per_epoch=1)


def hand_made(path, payload):
    import torch

    torch.save(payload, path)
    return path


@pytest.mark.parametrize("payload, words", [
    (None, "cannot be read as weights-only PyTorch data"),  # an empty file
    ({"format": "gsasrec-checkpoint-1", "config": {}}, "has no weights"),
    ({"format": "gsasrec-checkpoint-1", "state_dict": {"x": 1}, "config": "text"}, "'config' must be a mapping"),
], ids=["empty", "no-state-dict", "string-config"])
def test_damaged_checkpoints_are_one_line_errors(tiny, payload, words):
    tmp_path, _ = tiny
    path = tmp_path / "damaged.pt"
    if payload is None:
        path.write_bytes(b"")
    else:
        hand_made(path, payload)
    result = gsasrec("evaluate", "--checkpoint", path, "--datasets-dir", tmp_path / "datasets")
    assert_one_line_error(result, words)
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(path.read_bytes())
    assert_one_line_error(gsasrec("train", "--resume", run, "--datasets-dir", tmp_path / "datasets"), str(run))


def test_last_pt_of_another_dataset_is_refused(tiny):
    from synthetic import write_config, write_cycle_dataset

    tmp_path, _ = tiny
    config = write_config(tmp_path / "long.py", max_epochs=5, max_batches_per_epoch=1)
    run = tmp_path / "run"
    assert gsasrec("train", "--config", config, "--datasets-dir", tmp_path / "datasets", "--output-dir", run,
                   "--max-steps", "1", "--no-progress").returncode == 0
    write_cycle_dataset(tmp_path / "other", num_users=40, num_items=25, val_users=8)
    result = gsasrec("train", "--resume", run, "--datasets-dir", tmp_path / "other", "--max-steps", "3")
    assert_one_line_error(result, "num_items=20")


def test_unwritable_output_folders_are_one_line_errors(tiny):
    tmp_path, config = tiny
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = gsasrec("train", "--config", config, "--datasets-dir", tmp_path / "datasets", "--output-dir", blocker)
    assert_one_line_error(result, "cannot write the run folder")
    assert blocker.read_text() == "not a folder"


def test_other_bad_input_is_a_one_line_error(tiny):
    from synthetic import write_config

    tmp_path, _ = tiny
    bad = tmp_path / "latin1.py"
    bad.write_bytes(b"# caf\xe9\nconfig = None\n")
    assert_one_line_error(gsasrec("train", "--config", bad), "not UTF-8 text")
    huge = write_config(tmp_path / "huge.py", negs_per_pos=100_000_000)
    result = gsasrec("train", "--config", huge, "--datasets-dir", tmp_path / "datasets")
    assert_one_line_error(result, "lower negs_per_pos")
    result = gsasrec("serve", "--checkpoint", "x.pt", "--port", "99999")
    assert result.returncode == 2 and "port number 1-65535" in result.stderr and "Traceback" not in result.stderr


def test_weights_with_nan_are_refused_before_serving(pattern_run, tmp_path):
    import torch

    from gsasrec.checkpoint import read_checkpoint
    from gsasrec.errors import GSASRecError
    from gsasrec.recommender import Recommender

    payload = read_checkpoint(pattern_run[2] / "best.pt")
    payload["state_dict"]["output_embedding.weight"][3, 0] = float("nan")
    torch.save(payload, tmp_path / "nan.pt")
    with pytest.raises(GSASRecError, match="output_embedding.weight holds NaN"):
        Recommender.from_checkpoint(tmp_path / "nan.pt", device="cpu")


@pytest.mark.parametrize("bad_id", ['"line\nbreak"', "sep\u2028arator", "next\x85line"],
                         ids=["newline", "u2028", "nel"])
def test_ids_with_line_breaks_are_refused_at_import(tmp_path, bad_id):
    log = tmp_path / "log.csv"
    rows = ["user_id,item_id"] + [f"u{u},i{k}" for u in range(5) for k in range(3)] + [f"u1,{bad_id}"]
    log.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = gsasrec("data", "import", "--interactions", log, "--name", "t", "--datasets-dir", tmp_path / "d")
    assert_one_line_error(result, "contains a tab or line break")
    assert not (tmp_path / "d" / "t").exists()


def test_leftovers_of_killed_writers_are_cleared_by_the_next_write(datasets, tmp_path):
    root, log = datasets
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()  # a pid that has ended
    for leftover in (".shop.writing-abc", ".shop.old-def"):
        (root / leftover).mkdir()
        (root / leftover / "train.txt").write_text("half-written")
    run = tmp_path / "run"
    run.mkdir()
    (run / f".last.pt.tmp-{dead}.pt").write_bytes(b"half")
    (run / f".last.pt.tmp-{os.getppid()}.pt").write_bytes(b"a live writer's")  # a process still alive
    assert gsasrec("data", "import", "--interactions", log, "--name", "shop", "--datasets-dir", root).returncode == 0
    assert sorted(p.name for p in root.iterdir()) == ["precious.txt", "shop"]
    from gsasrec.files import write_text_atomic

    write_text_atomic(run / "last.pt", "new")
    assert sorted(p.name for p in run.iterdir()) == [f".last.pt.tmp-{os.getppid()}.pt", "last.pt"]

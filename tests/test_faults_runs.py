"""Faults of run folders (issue 19, second round): damaged run files, two writers on one run, a resume on
another dataset, a hand-made last.pt. Each a real subprocess: a one-line error, exit 2, nothing lost."""

import json
import signal
import subprocess
import sys

import pytest
import torch
from test_faults import assert_one_line_error, gsasrec


@pytest.fixture
def resumable(tmp_path):
    """A run stopped by its budget at step 1 of a config that allows many more: (tmp_path, run folder)."""
    from synthetic import write_config, write_cycle_dataset

    write_cycle_dataset(tmp_path / "datasets", num_users=40, num_items=20, val_users=8)
    config = write_config(tmp_path / "c.py", max_epochs=100000, max_batches_per_epoch=1, early_stopping_patience=100000)
    run = tmp_path / "runs" / "one"
    assert gsasrec("train", "--config", config, "--datasets-dir", tmp_path / "datasets", "--output-dir", run,
                   "--max-steps", "2", "--no-progress").returncode == 0
    return tmp_path, run


@pytest.mark.parametrize("damage, words", [
    ('{"epoch": 1, "step": 1, "lo', "metrics.jsonl, line 2: damaged"),
    ('[1, 2]', "metrics.jsonl, line 2: expected a JSON object"),
    ('{"epoch": 1, "step": "1", "loss": 0.1, "metrics": {}, "best": true, "seconds": 1}', "field 'step' should be int"),
    ('{"epoch": 1, "step": 1, "loss": 0.1, "best": true, "seconds": 1}', "field 'metrics' should be dict"),
], ids=["cut-off", "not-an-object", "wrong-type", "missing-key"])
def test_damaged_records_are_one_line_errors_and_runs_list_flags_them(resumable, damage, words):
    tmp_path, run = resumable
    good = tmp_path / "runs" / "two"
    assert gsasrec("train", "--config", tmp_path / "c.py", "--datasets-dir", tmp_path / "datasets",
                   "--output-dir", good, "--max-steps", "1", "--no-progress").returncode == 0
    log = run / "metrics.jsonl"
    log.write_text(log.read_text().splitlines()[0] + "\n" + damage + "\n")
    assert_one_line_error(gsasrec("runs", "show", run), words)
    listed = gsasrec("runs", "list", tmp_path / "runs")
    assert listed.returncode == 0 and "Traceback" not in listed.stderr
    rows = {line.split()[0]: line for line in listed.stdout.splitlines()[1:]}
    assert "DAMAGED" in rows[str(run)] and words in rows[str(run)] and "DAMAGED" not in rows[str(good)]
    as_json = [json.loads(line) for line in gsasrec("runs", "list", tmp_path / "runs", "--json").stdout.splitlines()]
    assert [("damaged" in row) for row in as_json] == [True, False]
    assert_one_line_error(gsasrec("train", "--resume", run, "--max-steps", "3"), words)


@pytest.mark.parametrize("damage, words", [
    ("", "config.json: damaged"),
    ('{"config": "text"}', "config.json: expected a JSON object with a 'config' mapping"),
    ("[]", "config.json: expected a JSON object"),
], ids=["empty", "config-not-a-mapping", "not-an-object"])
def test_damaged_run_config_is_a_one_line_error(resumable, damage, words):
    _, run = resumable
    (run / "config.json").write_text(damage)
    assert_one_line_error(gsasrec("runs", "show", run), words)


@pytest.mark.parametrize("change, words", [
    (lambda s: s["progress"].update(epoch="3"), "progress field 'epoch' should be int"),
    (lambda s: s["progress"].pop("steps"), "'progress' lacks 'steps'"),
    (lambda s: s["progress"].update(surprise=1), "'progress' has unknown field 'surprise'"),
    (lambda s: s.update(progress=[1, 2]), "'progress' should be a mapping"),
    (lambda s: s.update(rng={"torch": 1}), "'rng' should map torch, order and negatives"),
    (lambda s: s.update(seed="five"), "'seed' should be a whole number"),
    (lambda s: s.update(run_options={"colour": "red"}), "'run_options' has unknown field 'colour'"),
], ids=["epoch-text", "no-steps", "unknown-field", "progress-list", "rng", "seed", "run-options"])
def test_hand_made_last_pt_with_wrong_fields_is_a_one_line_error(resumable, change, words):
    _, run = resumable
    state = torch.load(run / "last.pt", weights_only=True)
    change(state)
    torch.save(state, run / "last.pt")
    assert_one_line_error(gsasrec("train", "--resume", run, "--max-steps", "3"), words)


def test_resume_on_another_dataset_with_the_same_item_count_is_refused(resumable):
    from synthetic import write_cycle_dataset

    tmp_path, run = resumable
    write_cycle_dataset(tmp_path / "other", num_users=60, num_items=20, val_users=8)  # same items, more users
    result = gsasrec("train", "--resume", run, "--datasets-dir", tmp_path / "other", "--max-steps", "3")
    assert_one_line_error(result, "num_users=40")
    assert torch.load(run / "last.pt", weights_only=True)["progress"]["steps"] == 2  # untouched


def test_two_resumes_of_one_run_at_once_exactly_one_runs(resumable):
    tmp_path, run = resumable
    first = subprocess.Popen([sys.executable, "-m", "gsasrec", "train", "--resume", str(run), "--max-steps",
                              "1000000", "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline().startswith(f"resuming {run}")  # printed while holding the run's lock
        second = gsasrec("train", "--resume", run, "--max-steps", "1000000")
        assert_one_line_error(second, "is being written by another process")
        again = gsasrec("train", "--config", run / "config.py", "--datasets-dir", tmp_path / "datasets",
                        "--output-dir", run, "--force")
        assert_one_line_error(again, "is being written by another process")  # nor started over under it
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=60) == 130
    records = gsasrec("runs", "show", run, "--json")
    assert records.returncode == 0
    steps = [r["step"] for r in json.loads(records.stdout)["epochs_log"]]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)  # one writer's records, in order
    saved = torch.load(run / "last.pt", weights_only=True)["progress"]["steps"]
    assert saved >= steps[-1]
    assert gsasrec("train", "--resume", run, "--max-steps", str(saved + 1), "--no-progress").returncode == 0


def test_a_full_disk_during_a_checkpoint_write_is_a_one_line_error(resumable):
    import resource

    tmp_path, _ = resumable
    run = tmp_path / "runs" / "full"

    def small_disk():  # writes past 16 KB fail as on a full disk; torch reports it as a RuntimeError
        resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384))

    result = subprocess.run([sys.executable, "-m", "gsasrec", "train", "--config", str(tmp_path / "c.py"),
                             "--datasets-dir", str(tmp_path / "datasets"), "--output-dir", str(run),
                             "--max-steps", "1", "--no-progress"],
                            capture_output=True, text=True, timeout=300, preexec_fn=small_disk)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "cannot write" in result.stderr and ".pt" in result.stderr, result.stderr
    assert not [p.name for p in run.iterdir() if ".tmp-" in p.name]  # no half-written file left


@pytest.mark.parametrize("where", ["a folder", "under a file"])
def test_output_paths_that_cannot_be_written_fail_first(resumable, where):
    tmp_path, run = resumable
    (tmp_path / "a-file").write_text("keep")
    target = tmp_path / "runs" if where == "a folder" else tmp_path / "a-file" / "out.png"
    words = "it is a folder" if where == "a folder" else "a-file is a file, not a folder"
    checkpoint = run / "last.pt"
    calibration = gsasrec("evaluate", "--checkpoint", checkpoint, "--datasets-dir", tmp_path / "datasets",
                          "--calibration", "--calibration-plot", target)
    assert_one_line_error(calibration, words)
    assert calibration.stdout == ""  # refused before the evaluation, not after it
    assert_one_line_error(gsasrec("export", "--checkpoint", checkpoint, "--format", "torchscript",
                                  "--output", target), words)
    assert_one_line_error(gsasrec("data", "stats", "cycle", "--datasets-dir", tmp_path / "datasets",
                                  "--histogram", target), words)
    assert (tmp_path / "a-file").read_text() == "keep"


def test_a_top_k_longer_than_the_catalogue_is_refused_before_training(tmp_path):
    from synthetic import write_config, write_cycle_dataset

    write_cycle_dataset(tmp_path / "datasets", num_users=30, num_items=2, val_users=8)
    config = write_config(tmp_path / "c.py", max_epochs=1)
    result = gsasrec("train", "--config", config, "--datasets-dir", tmp_path / "datasets",
                     "--output-dir", tmp_path / "run", "--no-progress")
    assert_one_line_error(result, "recommendation_limit=10 is more than the 2 items of dataset cycle")
    assert result.stdout == ""  # not after an epoch


@pytest.mark.parametrize("table, words", [
    (b"internal_id\texternal_id\n1\tsku-1\n2 sku-2\n", "item_ids.tsv:3: expected '2<TAB>external id'"),
    (b"internal_id\texternal_id\n1\tsku-1\n2\tsku-\xff\n", "item_ids.tsv: not UTF-8 text"),
    (b"internal_id\texternal_id\n1\tsku-1\n2\tsku-1\n", "item_ids.tsv:3: id 'sku-1' repeats line 2"),
    (b"internal_id\texternal_id\n1\tsku-1\n3\tsku-3\n", "item_ids.tsv:3: expected '2<TAB>external id'"),
], ids=["no-tab", "not-utf8", "duplicate", "gap"])
def test_a_damaged_id_table_is_a_one_line_error_in_recommend_and_serve(resumable, table, words):
    tmp_path, run = resumable
    (tmp_path / "datasets" / "cycle" / "item_ids.tsv").write_bytes(table)
    common = ["--checkpoint", run / "last.pt", "--datasets-dir", tmp_path / "datasets"]
    assert_one_line_error(gsasrec("recommend", *common, "--history", "1 2"), words)
    assert_one_line_error(gsasrec("serve", *common, "--port", "1"), words)


def test_recommend_refuses_users_of_a_dataset_that_changed_and_says_when_it_is_gone(resumable):
    from synthetic import write_cycle_dataset

    tmp_path, run = resumable
    write_cycle_dataset(tmp_path / "changed", num_users=60, num_items=20, val_users=8)
    changed = gsasrec("recommend", "--checkpoint", run / "last.pt", "--datasets-dir", tmp_path / "changed",
                      "--user", "55")
    assert_one_line_error(changed, "changed since the model was trained (num_users=40, but the folder has "
                                   "num_users=60)")
    gone = gsasrec("recommend", "--checkpoint", run / "last.pt", "--datasets-dir", tmp_path / "nowhere",
                   "--history", "1 2 3")
    assert gone.returncode == 0 and "dataset folder" in gone.stderr and "internal ids (1..20)" in gone.stderr
    assert_one_line_error(gsasrec("recommend", "--checkpoint", run / "last.pt", "--datasets-dir",
                                  tmp_path / "nowhere", "--user", "1"), "dataset folder, which is not here")


def test_small_bad_inputs_are_one_line_errors(resumable):
    from synthetic import write_config

    tmp_path, run = resumable
    data = ["--datasets-dir", tmp_path / "datasets"]
    config = tmp_path / "c.py"
    assert_one_line_error(gsasrec("train", "--config", config, *data, "--device", "cpu:-1"), "is not a device")
    seed = gsasrec("train", "--config", config, *data, "--seed", str(2**70))
    assert seed.returncode == 2 and "expected a whole number 0..2^63-1" in seed.stderr
    assert "Traceback" not in seed.stderr
    zero = write_config(tmp_path / "zero.py", metrics=["nDCG@0"])
    assert_one_line_error(gsasrec("train", "--config", zero, *data), "nDCG@0 has cutoff 0")
    leaving = tmp_path / "exits.py"
    leaving.write_text("import sys\nsys.exit(0)\n")
    assert_one_line_error(gsasrec("train", "--config", leaving, *data), "called sys.exit(0)")
    no_cuda = gsasrec("train", "--config", config, *data, "--nproc", "2", "--device", "cuda")
    if not torch.cuda.is_available():
        assert_one_line_error(no_cuda, "CUDA is not available")
    # a checkpoint whose stored dataset name is a path is refused, not followed out of the datasets folder
    state = torch.load(run / "last.pt", weights_only=True)
    for name in ("../outside", "/etc"):
        state["config"]["dataset_name"] = name
        torch.save(state, tmp_path / "escape.pt")
        assert_one_line_error(gsasrec("evaluate", "--checkpoint", tmp_path / "escape.pt", *data),
                              "must be one plain folder name")


def peak_mb(*args) -> int:
    """Peak resident memory (MB) of one gsasrec command run in a fresh process."""
    probe = ("import resource, sys\nfrom gsasrec.cli import main\nassert main(sys.argv[1:]) == 0\n"
             "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)")
    result = subprocess.run([sys.executable, "-c", probe, *map(str, args)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return int(result.stdout.split()[-1])


def test_one_very_long_history_does_not_widen_evaluation_memory(tmp_path):
    import numpy as np
    from synthetic import write_config, write_synthetic

    from gsasrec.data.folder import Sequences

    rng = np.random.default_rng(0)
    peaks = {}
    for longest in (0, 100_000):
        root = tmp_path / str(longest)
        histories = [rng.integers(1, 51, 20).tolist() for _ in range(300)]
        histories += [rng.integers(1, 51, longest).tolist()] if longest else []
        write_synthetic(root / "datasets" / "shop", Sequences.from_lists(histories), 50, 32, 0)
        config = write_config(root / "c.py", dataset_name="shop", sequence_length=50, max_epochs=1,
                              max_batches_per_epoch=2)
        assert gsasrec("train", "--config", config, "--datasets-dir", root / "datasets", "--output-dir",
                       root / "run", "--no-progress").returncode == 0
        peaks[longest] = peak_mb("evaluate", "--checkpoint", root / "run" / "last.pt", "--datasets-dir",
                                 root / "datasets")
    # rated-item filtering of the long user takes its 50 distinct items, not 100,000 padded columns
    # (which took 1.2 GB against 0.24 GB here before)
    assert peaks[100_000] - peaks[0] < 150, peaks


def test_recommend_user_finds_the_dataset_where_the_run_recorded_it(resumable, tmp_path):
    # no --datasets-dir, run from another folder: the catalogue and the split come from the one folder the
    # checkpoint recorded (recommend --user used to look in ./datasets instead)
    _, run = resumable
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = gsasrec("recommend", "--checkpoint", run / "last.pt", "--user", "1", "--json", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["held_out"]["item"] >= 1


def test_the_memory_guard_counts_the_whole_catalogue_for_softmax_ce():
    from gsasrec.config import make_config
    from gsasrec.errors import GSASRecError
    from gsasrec.training import check_step_size

    config = dict(dataset_name="big", train_batch_size=128, sequence_length=200, negs_per_pos=256)
    check_step_size(make_config(**config, loss="gbce"), num_items=100_000)  # 6.6 million logits: fine
    check_step_size(make_config(**config, loss="sampled_ce"), num_items=100_000)
    with pytest.raises(GSASRecError, match="the 100,002 rows of the catalogue .loss 'ce'.*use loss 'sampled_ce'"):
        check_step_size(make_config(**config, loss="ce"), num_items=100_000)  # 2.56 billion logits
    check_step_size(make_config(**config, loss="ce"), num_items=50_000)


def test_export_offers_no_options_it_would_ignore():
    result = gsasrec("export", "--help")
    assert result.returncode == 0 and "--device" not in result.stdout and "--datasets-dir" not in result.stdout


def test_checkpoint_formats_upgrade_in_one_chain(resumable, tmp_path):
    from gsasrec.checkpoint import CHECKPOINT_FORMAT, load_model, read_checkpoint

    _, run = resumable
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["format"] == CHECKPOINT_FORMAT == "gsasrec-checkpoint-2"
    # a format-1 file of a run trained before the logit offset: no logit_offset field, no output_bias
    old = {**state, "format": "gsasrec-checkpoint-1"}
    old["config"] = {k: v for k, v in state["config"].items() if k != "logit_offset"}
    old["state_dict"] = {k: v for k, v in state["state_dict"].items() if k != "output_bias"}
    torch.save(old, tmp_path / "old.pt")
    upgraded = read_checkpoint(tmp_path / "old.pt")
    assert upgraded["format"] == CHECKPOINT_FORMAT and upgraded["config"]["logit_offset"] is False
    model, config, _ = load_model(tmp_path / "old.pt")
    assert model.output_bias is None and config.logit_offset is False
    # the same weights as a bare state_dict under a config with the offset: a zero bias, the same scores
    bare = tmp_path / "bare.pt"
    torch.save(old["state_dict"], bare)
    with_offset, _, _ = load_model(bare, make_config(**{**old["config"], "logit_offset": True}))
    assert torch.equal(with_offset.output_bias, torch.zeros_like(with_offset.output_bias))
    history = torch.tensor([[with_offset.padding_id] * 14 + [3, 4]])
    assert torch.allclose(with_offset(history)[:, -1] @ with_offset.output_table.T + with_offset.output_bias,
                          model(history)[:, -1] @ model.output_table.T)
    # a format from a later version: one line that says so
    torch.save({**state, "format": "gsasrec-checkpoint-9"}, tmp_path / "future.pt")
    assert_one_line_error(gsasrec("evaluate", "--checkpoint", tmp_path / "future.pt"), "does not know")


def make_config(**fields):
    from gsasrec.config import make_config as build

    return build(**fields)


def test_runs_list_reads_the_small_state_file_not_the_weights(resumable):
    tmp_path, run = resumable
    steps = torch.load(run / "last.pt", weights_only=True)["progress"]["steps"]
    state = json.loads((run / "state.json").read_text())
    assert state["progress"]["steps"] == steps == 2
    (run / "last.pt").write_bytes(b"not unpickled by runs list")  # it is never opened there
    listed = json.loads(gsasrec("runs", "list", tmp_path / "runs", "--json").stdout)
    assert listed["steps"] == 2 and listed["resumable"] is True
    (run / "state.json").write_text('{"progress": {"epoch": 1')
    listed = json.loads(gsasrec("runs", "list", tmp_path / "runs", "--json").stdout)
    assert "state.json: damaged" in listed["damaged"]


def test_saved_progress_holds_no_tensors_so_a_resume_puts_losses_on_its_own_device():
    # A mid-epoch resume of a CUDA run stacked CPU tensors (the saved epoch losses) with CUDA ones; the
    # progress is saved as plain floats and put back on the trainer's device when loaded.
    from gsasrec.runstate import Progress, progress_from

    saved = Progress(epoch=2, batch=3, steps=51, epoch_losses=[torch.tensor(0.5), torch.tensor(0.25)]).to_dict()
    assert saved["epoch_losses"] == [0.5, 0.25] and not any(isinstance(v, torch.Tensor) for v in saved.values())
    assert progress_from(saved, "last.pt").epoch_losses == [0.5, 0.25]
    with pytest.raises(Exception, match="epoch_losses"):
        progress_from({**saved, "epoch_losses": [torch.tensor(0.5)]}, "last.pt")


@pytest.mark.parametrize("loss", ["gbce", "sampled_ce", "ce"])
def test_each_objective_trains_and_reports_its_logits(tmp_path, loss):
    from synthetic import write_config, write_cycle_dataset

    from gsasrec.config import make_config as build
    from gsasrec.objectives import objective_for

    write_cycle_dataset(tmp_path / "datasets", num_users=40, num_items=20, val_users=8)
    config = write_config(tmp_path / "c.py", max_epochs=1, max_batches_per_epoch=2, loss=loss)
    result = gsasrec("train", "--config", config, "--datasets-dir", tmp_path / "datasets", "--output-dir",
                     tmp_path / "run", "--no-progress")
    assert result.returncode == 0, result.stderr
    expected = {"gbce": 9, "sampled_ce": 9, "ce": 22}[loss]  # negs_per_pos 8 + 1, or the 20 + 2 rows
    assert objective_for(build(dataset_name="cycle", negs_per_pos=8, loss=loss), 20).logits_per_position == expected

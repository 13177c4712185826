"""train --dataset: settings derived from the data and the budget, printed with reasons, written as an
editable config file, overridable field by field."""

import dataclasses
from pathlib import Path

import pytest
from synthetic import write_successor_dataset

from gsasrec.cli import main
from gsasrec.config import load_config
from gsasrec.data.folder import read_dataset
from gsasrec.derive import derive_config, parse_overrides, with_overrides
from gsasrec.errors import GSASRecError


@pytest.fixture(scope="module")
def successor(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("derive")
    write_successor_dataset(root, num_users=300, num_items=120, val_users=64)
    return root


def test_derived_settings_follow_the_data_and_the_budget(successor):
    dataset = read_dataset("successor", successor)
    derived = derive_config(dataset, max_steps=300)
    config = derived.config
    lengths = dataset.test.inputs.lengths + 1  # histories of 10..60 items
    assert config.sequence_length % 8 == 0 and (lengths <= config.sequence_length).mean() >= 0.9
    assert config.embedding_dim == 64 and config.negs_per_pos == 30 and config.lr_decay_steps == 300
    assert config.random_windows == bool((lengths > config.sequence_length + 1).any())
    assert set(derived.reasons) >= {"sequence_length", "embedding_dim", "negs_per_pos", "lr_decay_steps"}
    assert derive_config(dataset, max_steps=300) == derived  # the same data and budget, the same settings
    timed = derive_config(dataset, step_seconds=0.05, max_minutes=2)
    assert timed.config.lr_decay_steps == int(2 * 60 * 0.85 / 0.05)
    with pytest.raises(GSASRecError, match="needs max_steps"):
        derive_config(dataset)


def test_derived_settings_on_ml1m_are_the_ten_minute_recipe_with_the_transition_term(shared_datasets):
    recipe = load_config(Path(__file__).parents[1] / "configs" / "ml1m_gsasrec_10min.py")
    derived = derive_config(read_dataset("ml1m", shared_datasets), max_steps=1400).config
    assert derived == dataclasses.replace(recipe, transition_term=True)


def test_overrides_are_literals_and_bad_ones_name_the_field(successor):
    assert parse_overrides(["embedding_dim=32", "loss=sampled_ce", "lr_decay_steps=None", "metrics=['R@5']"]) == {
        "embedding_dim": 32, "loss": "sampled_ce", "lr_decay_steps": None, "metrics": ["R@5"]}
    config = derive_config(read_dataset("successor", successor), max_steps=10).config
    assert with_overrides(config, {"dropout_rate": 0.1}) == dataclasses.replace(config, dropout_rate=0.1)
    with pytest.raises(GSASRecError, match="unknown config field 'embeding_dim'"):
        parse_overrides(["embeding_dim=3"])
    with pytest.raises(GSASRecError, match="expected FIELD=VALUE"):
        parse_overrides(["embedding_dim"])
    with pytest.raises(GSASRecError, match=r"'dropout_rate' must be a number in \[0, 1\).*--set dropout_rate"):
        with_overrides(config, {"dropout_rate": 1.5})


def test_train_from_a_dataset_name_writes_a_config_that_trains_again(successor, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--dataset", "successor", "--datasets-dir", str(successor), "--max-steps", "12",
                 "--set", "embedding_dim=32", "--set", "num_blocks=1", "--output-dir", str(run), "--seed", "0",
                 "--no-progress", "--precision", "fp32", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "settings for dataset successor" in out and "embedding_dim            32       --set" in out
    assert "lr_decay_steps           12       cosine decay over the budget of 12 steps" in out
    assert "baselines: popularity" in out
    written = load_config(run / "config.py")
    assert written.embedding_dim == 32 and written.num_blocks == 1 and written.lr_decay_steps == 12
    assert "# 90% of the" in (run / "config.py").read_text()
    again = tmp_path / "again"
    assert main(["train", "--config", str(run / "config.py"), "--datasets-dir", str(successor), "--max-steps",
                 "12", "--output-dir", str(again), "--seed", "0", "--no-progress", "--device", "cpu"]) == 0
    # The same config and seed from the file: the same run.
    assert (again / "metrics.jsonl").read_text().count("\n") == (run / "metrics.jsonl").read_text().count("\n")
    first = [line.split('"seconds"')[0] for line in (run / "metrics.jsonl").read_text().splitlines()]
    second = [line.split('"seconds"')[0] for line in (again / "metrics.jsonl").read_text().splitlines()]
    assert first == second


def test_a_minutes_budget_times_the_step_first(successor, tmp_path, capsys):
    assert main(["train", "--dataset", "successor", "--datasets-dir", str(successor), "--max-minutes", "0.05",
                 "--set", "embedding_dim=16", "--output-dir", str(tmp_path / "run"), "--no-progress",
                 "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "timing a few training steps" in out and "at a measured" in out


@pytest.mark.parametrize("argv, message", [
    (["--dataset", "successor", "--config", "x.py"], "exactly one of --dataset NAME, --config FILE or --resume"),
    (["--resume", "runs/x", "--set", "embedding_dim=3"], "a resumed run keeps its own"),
    (["--dataset", "successor", "--set", "embedding_dim=0"], "'embedding_dim' must be an integer >= 1"),
    (["--datasets", "x"], "unrecognized arguments: --datasets"),
])
def test_train_refuses_in_one_line(successor, argv, message, capsys):
    code = None
    try:
        code = main(["train", "--datasets-dir", str(successor), *argv])
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    assert code == 2
    assert message in capsys.readouterr().err

"""Training end to end on a tiny dataset with an obvious pattern, through the CLI and the Python API."""

import json

import numpy as np
import pytest
import torch
from synthetic import write_config, write_cycle_dataset

from gsasrec.checkpoint import load_model, read_checkpoint
from gsasrec.cli import main
from gsasrec.config import load_config
from gsasrec.data.folder import read_dataset
from gsasrec.evaluation import evaluate
from gsasrec.metrics import compute_metrics


def popularity_metrics(dataset, split):
    """nDCG@10 of ranking unrated items by training popularity."""
    counts = np.bincount(dataset.train.items, minlength=dataset.num_items + 1).astype(float)
    counts[0] = -1
    tops = []
    for u in range(len(split.inputs)):
        scores = counts.copy()
        scores[split.inputs[u]] = -1
        tops.append(np.argsort(-scores, kind="stable")[:10])
    return compute_metrics(["nDCG@10"], np.array(tops), split.targets)["nDCG@10"]


def test_training_learns_the_pattern_far_above_popularity(pattern_run):
    root, config, run_dir = pattern_run
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 64
    assert all({"epoch", "step", "loss", "metrics", "seconds"} <= set(r) for r in records)
    assert records[-1]["loss"] < records[0]["loss"]
    dataset = read_dataset("cycle", root / "datasets")
    popularity = popularity_metrics(dataset, dataset.val)
    best = max(r["metrics"]["nDCG@10"] for r in records)
    assert best > max(0.5, 3 * popularity), (best, popularity)
    # The best checkpoint holds the best validation score and reproduces it.
    model, stored, payload = load_model(run_dir / "best.pt")
    assert payload["val_metrics"]["nDCG@10"] == pytest.approx(best)
    again = evaluate(model, dataset.val, ["nDCG@10"], 10, True)
    assert again["nDCG@10"] == pytest.approx(best, abs=1e-6)
    assert json.loads((run_dir / "config.json").read_text())["run"]["seed"] == 3


def test_evaluate_command_needs_no_config_for_own_checkpoints(pattern_run, capsys):
    root, _, run_dir = pattern_run
    capsys.readouterr()
    code = main(["evaluate", "--checkpoint", str(run_dir / "best.pt"), "--datasets-dir",
                 str(root / "datasets"), "--json", "--metrics", "nDCG@10", "RR", "R@5"])
    assert code == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    values = json.loads(last)
    assert list(values) == ["nDCG@10", "RR", "R@5"] and values["nDCG@10"] > 0.3


def test_same_seed_repeats_a_cpu_run(tmp_path):
    write_cycle_dataset(tmp_path / "datasets", num_users=60, num_items=20, val_users=8)
    config = write_config(tmp_path / "c.py", max_epochs=2, max_batches_per_epoch=2)
    weights = []
    for run in ("a", "b"):
        assert main(["train", "--config", str(config), "--datasets-dir", str(tmp_path / "datasets"),
                     "--output-dir", str(tmp_path / run), "--seed", "11", "--no-progress"]) == 0
        weights.append(read_checkpoint(tmp_path / run / "best.pt")["state_dict"])
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key]), key


def test_max_steps_stops_mid_epoch_and_still_leaves_a_best_checkpoint(tmp_path):
    write_cycle_dataset(tmp_path / "datasets", num_users=200, num_items=20, val_users=8)
    config = write_config(tmp_path / "c.py", max_epochs=50, max_batches_per_epoch=100)
    assert main(["train", "--config", str(config), "--datasets-dir", str(tmp_path / "datasets"),
                 "--output-dir", str(tmp_path / "run"), "--max-steps", "3", "--seed", "1"]) == 0
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [3]
    assert read_checkpoint(tmp_path / "run" / "best.pt")["step"] == 3


def test_early_stopping_after_patience(tmp_path):
    write_cycle_dataset(tmp_path / "datasets", num_users=60, num_items=20, val_users=8)
    # lr-free way to stall: a model with dropout ~1 cannot improve on its first validation for long
    config = write_config(tmp_path / "c.py", max_epochs=40, max_batches_per_epoch=1,
                          early_stopping_patience=2, dropout_rate=0.99)
    assert main(["train", "--config", str(config), "--datasets-dir", str(tmp_path / "datasets"),
                 "--output-dir", str(tmp_path / "run"), "--seed", "0"]) == 0
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(records) < 40
    tail = records[-2:]
    assert not any(r["best"] for r in tail)


def test_seed_config_object_round_trips_through_the_checkpoint(pattern_run):
    root, config_path, run_dir = pattern_run
    _, stored, _ = load_model(run_dir / "best.pt")
    assert stored == load_config(config_path)


def test_bf16_autocast_step_keeps_a_float32_loss_close_to_fp32():
    from gsasrec.batches import Batch
    from gsasrec.config import make_config
    from gsasrec.model import GSASRec
    from gsasrec.step import TrainingStep

    config = make_config(dataset_name="x", sequence_length=12, embedding_dim=16, num_heads=2, num_blocks=2,
                         negs_per_pos=8, dropout_rate=0.0)
    torch.manual_seed(0)
    model = GSASRec.from_config(config, 40)
    inputs = torch.randint(1, 41, (6, 12))
    labels = torch.randint(1, 41, (6, 12))
    losses = {}
    for precision in ("fp32", "bf16"):
        generator = torch.Generator().manual_seed(5)  # the same negatives for both
        step = TrainingStep(model, torch.optim.Adam(model.parameters()), config, 40, generator, precision)
        losses[precision] = step.loss(Batch(inputs, labels))
    assert losses["bf16"].dtype == torch.float32
    assert losses["bf16"].item() == pytest.approx(losses["fp32"].item(), rel=0.03)


def test_compiled_bf16_training_runs_end_to_end(tmp_path):
    write_cycle_dataset(tmp_path / "datasets", num_users=64, num_items=20, val_users=8)
    config = write_config(tmp_path / "c.py", max_epochs=1, max_batches_per_epoch=3, train_batch_size=32)
    assert main(["train", "--config", str(config), "--datasets-dir", str(tmp_path / "datasets"),
                 "--output-dir", str(tmp_path / "run"), "--compile", "--precision", "bf16", "--seed", "0"]) == 0
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text())
    assert record["step"] == 2 and np.isfinite(record["loss"])
    run = json.loads((tmp_path / "run" / "config.json").read_text())["run"]
    assert run["compile"] is True and run["precision"] == "bf16"
    load_model(tmp_path / "run" / "best.pt")  # the compiled wrapper's names do not leak into the weights


def test_precision_auto_is_bf16_only_where_the_hardware_has_it(tmp_path, capsys):
    from gsasrec.runtime import fast_bf16

    write_cycle_dataset(tmp_path / "datasets", num_users=64, num_items=20, val_users=8)
    config = write_config(tmp_path / "c.py", max_epochs=3, max_batches_per_epoch=2, train_batch_size=32)
    native = fast_bf16(torch.device("cpu"))
    for precision in ("auto", "bf16"):
        run_dir = tmp_path / precision
        assert main(["train", "--config", str(config), "--datasets-dir", str(tmp_path / "datasets"), "--device",
                     "cpu", "--output-dir", str(run_dir), "--precision", precision, "--seed", "0",
                     "--max-steps", "2"]) == 0
        recorded = json.loads((run_dir / "config.json").read_text())["run"]["precision"]
        warned = "warning: --precision bf16" in capsys.readouterr().err
        if precision == "auto":  # resolved before the run, so a resume on other hardware keeps it
            assert recorded == ("bf16" if native else "fp32") and not warned
        else:  # kept as asked, with a warning where bf16 is emulated, also when resumed with the record
            assert recorded == "bf16" and warned == (not native)
            assert main(["train", "--resume", str(run_dir), "--device", "cpu", "--max-steps", "3"]) == 0
            assert ("warning: --precision bf16" in capsys.readouterr().err) == (not native)


def test_learning_rate_schedule():
    from gsasrec.config import make_config
    from gsasrec.step import LR_FLOOR, learning_rate_at

    constant = make_config(dataset_name="x", learning_rate=0.01)
    assert learning_rate_at(constant, 0) == learning_rate_at(constant, 10**6) == 0.01
    cosine = make_config(dataset_name="x", learning_rate=0.01, lr_decay_steps=100)
    rates = [learning_rate_at(cosine, step) for step in range(0, 151, 10)]
    assert rates[0] == pytest.approx(0.01)
    assert rates[5] == pytest.approx(0.01 * (LR_FLOOR + (1 - LR_FLOOR) / 2))
    assert rates[10] == rates[15] == pytest.approx(0.01 * LR_FLOOR)
    assert all(a >= b for a, b in zip(rates, rates[1:]))


def test_progress_lines_when_output_is_not_a_terminal(tmp_path, capsys):
    """Redirected output gets plain progress lines (here every step) before the first epoch ends, with the
    whole run's ETA to its budget."""
    import re

    from gsasrec.training import RunOptions, train

    write_cycle_dataset(tmp_path / "datasets", num_users=64, num_items=20, val_users=8)
    config = load_config(write_config(tmp_path / "c.py", max_batches_per_epoch=2, max_epochs=3))
    train(config, read_dataset("cycle", tmp_path / "datasets"),
          RunOptions(output_dir=tmp_path / "run", seed=0, max_steps=5, progress=False, progress_every=0.0))
    lines = capsys.readouterr().out.splitlines()
    first_epoch = next(i for i, line in enumerate(lines) if line.startswith("epoch 1 "))
    progress = [line for line in lines[:first_epoch] if line.startswith("step ")]
    assert progress and re.fullmatch(r"step 1/5 loss \d+\.\d{4} [\d.]+ steps/s ETA \d+:\d\d", progress[0])

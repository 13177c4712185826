"""What the command line does is there from Python too: opening a dataset, evaluating a checkpoint,
a dataset user's history, resuming a run; and scoring leaves the model's mode as it found it."""

import json
import shutil

import pytest
import torch
from synthetic import write_cycle_dataset

from gsasrec.calibration import scored_pairs
from gsasrec.checkpoint import load_model
from gsasrec.cli import main
from gsasrec.config import load_config
from gsasrec.data.recipes import open_dataset
from gsasrec.evaluation import evaluate_checkpoint, predict_top
from gsasrec.recommender import Recommender
from gsasrec.runs import read_records
from gsasrec.training import RunOptions, resume, train


def test_evaluate_checkpoint_gives_what_the_command_prints(pattern_run, capsys):
    root, _, run_dir = pattern_run
    result = evaluate_checkpoint(run_dir / "best.pt", "test", root / "datasets", device="cpu",
                                 metrics=["nDCG@10", "RR@5"], recommendation_limit=10)
    assert set(result.metrics) == {"nDCG@10", "RR@5"} and result.metrics["nDCG@10"] > 0.5
    assert len(result.split.inputs) == 400 and result.config.recommendation_limit == 10
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(run_dir / "best.pt"), "--datasets-dir", str(root / "datasets"),
                 "--metrics", "nDCG@10", "RR@5", "--json", "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == pytest.approx(result.metrics)


def test_evaluate_in_bf16_ranks_like_fp32(pattern_run, capsys):
    root, _, run_dir = pattern_run
    exact = evaluate_checkpoint(run_dir / "best.pt", "test", root / "datasets", device="cpu")
    fast = evaluate_checkpoint(run_dir / "best.pt", "test", root / "datasets", device="cpu", precision="bf16")
    assert fast.metrics == pytest.approx(exact.metrics, abs=0.02)
    with pytest.raises(Exception, match="precision must be one of auto, fp32, bf16"):
        evaluate_checkpoint(run_dir / "best.pt", "test", root / "datasets", device="cpu", precision="fp16")
    assert main(["evaluate", str(run_dir / "best.pt"), "--datasets-dir", str(root / "datasets"),
                 "--precision", "bf16", "--json", "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == pytest.approx(fast.metrics)


def test_evaluate_finds_the_dataset_the_checkpoint_was_trained_on_like_recommend(pattern_run, tmp_path,
                                                                                monkeypatch):
    _, _, run_dir = pattern_run
    monkeypatch.chdir(tmp_path)  # no ./datasets here: only the folder recorded in the checkpoint can serve
    monkeypatch.delenv("GSASREC_DATASETS", raising=False)
    assert evaluate_checkpoint(run_dir / "best.pt", device="cpu").metrics["nDCG@10"] > 0.5
    assert Recommender.from_checkpoint(run_dir / "best.pt", device="cpu").catalog is not None


def test_user_history_in_external_ids(pattern_run):
    root, _, run_dir = pattern_run
    recommender = Recommender.from_checkpoint(run_dir / "best.pt", device="cpu")
    split = open_dataset("cycle", root / "datasets").test
    history, held_out = recommender.user_history(split, 1)
    assert history == split.inputs[0].tolist() and held_out == int(split.targets[0])
    with pytest.raises(Exception, match="line number 1..400"):
        recommender.user_history(split, 401)


def test_resume_from_python_continues_a_budget_stopped_run(tmp_path, capsys):
    from synthetic import write_config

    write_cycle_dataset(tmp_path / "datasets", num_users=64, num_items=20, val_users=8)
    config = load_config(write_config(tmp_path / "c.py", max_epochs=3, max_batches_per_epoch=2))
    dataset = open_dataset("cycle", tmp_path / "datasets")
    first = train(config, dataset, RunOptions(output_dir=tmp_path / "run", seed=1, max_steps=3, progress=False))
    assert first.steps == 3
    moved = tmp_path / "moved"  # the dataset path recorded in last.pt is what resume opens
    shutil.copytree(tmp_path / "datasets", moved)
    shutil.rmtree(tmp_path / "datasets")
    with pytest.raises(Exception, match="not found"):
        resume(tmp_path / "run", progress=False)
    with pytest.raises(Exception, match="stopped at its budget"):
        resume(tmp_path / "run", moved, progress=False)  # the recorded --max-steps 3 is spent
    threads = torch.get_num_threads()
    torch.set_num_threads(threads + 1)  # another thread count: resumed, but not bit for bit, and it says so
    try:
        result = resume(tmp_path / "run", moved, progress=False, max_steps=5)
    finally:
        torch.set_num_threads(threads)
    assert f"trained with {threads} CPU threads and resumes with {threads + 1}" in capsys.readouterr().err
    # Two steps an epoch. A budget stop validates the final weights but leaves the epoch open: the resumed
    # run finishes epoch 2 at step 4 (not a third step of a new epoch), then stops 1 step into epoch 3.
    assert result.steps == 5 and result.epochs == 2
    logged = [(r["epoch"], r["step"], r.get("epoch_steps")) for r in read_records(tmp_path / "run")]
    assert logged == [(1, 2, None), (2, 3, 1), (2, 4, None), (3, 5, 1)]


def test_scoring_restores_the_models_mode(pattern_run):
    root, _, run_dir = pattern_run
    model, _, _ = load_model(run_dir / "best.pt")
    split = open_dataset("cycle", root / "datasets").test
    for mode in (True, False):
        model.train(mode)
        scored_pairs(model, split, negatives=3)
        assert model.training is mode
        predict_top(model, split.inputs, 5, filter_rated=True)
        assert model.training is mode

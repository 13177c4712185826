"""Recommendations from a trained checkpoint: Python API, CLI, export."""

import json
import shutil

import numpy as np
import pytest
import torch

from gsasrec.checkpoint import load_model
from gsasrec.cli import main
from gsasrec.data.folder import read_dataset
from gsasrec.errors import GSASRecError
from gsasrec.export import example_input, export_scorer
from gsasrec.recommender import Recommender


@pytest.fixture(scope="module")
def recommender(pattern_run):
    _, _, run_dir = pattern_run
    return Recommender.from_checkpoint(run_dir / "best.pt", device="cpu")


def test_planted_pattern_is_recommended(recommender):
    result = recommender.recommend([10, 11, 12], k=3)
    assert result.items[0]["item"] == 13
    assert [r["rank"] for r in result.items] == [1, 2, 3]
    assert all(0 < r["probability"] < 1 for r in result.items)
    assert result.items[0]["probability"] == pytest.approx(1 / (1 + np.exp(-result.items[0]["score"])))


def test_exclude_seen(recommender):
    history = [12, 8, 9, 10, 11]  # the pattern says 12 next, and 12 was already seen
    assert recommender.recommend(history, k=1, exclude_seen=False).items[0]["item"] == 12
    assert recommender.recommend(history, k=1).items[0]["item"] != 12


def test_long_histories_use_their_most_recent_items(recommender):
    history = list(range(1, 51))  # 50 items, longer than sequence_length=20
    full = recommender.recommend(history, k=3, exclude_seen=False)
    recent = recommender.recommend(history[-20:], k=3, exclude_seen=False)
    assert [r["item"] for r in full.items] == [r["item"] for r in recent.items]
    assert full.items[0]["score"] == pytest.approx(recent.items[0]["score"], abs=1e-5)
    # Excluding the seen items uses the whole history, not just the recent part: all 50 are excluded.
    assert recommender.recommend(history, k=3).items == []


def test_batch_equals_single_and_reports_unknown_ids(recommender):
    histories = [[3, 4, 5], [30, 31, "32", 33, 34, 35, 36, "nope"], [40]]
    batch = recommender.recommend_batch(histories, k=4)
    for history, result in zip(histories, batch):
        single = recommender.recommend(history, k=4)
        assert [r["item"] for r in result.items] == [r["item"] for r in single.items]
    assert batch[1].unknown_items == ["nope"] and batch[1].items[0]["item"] == 37
    with pytest.raises(GSASRecError, match="no known items"):
        recommender.recommend(["nope", 999])
    with pytest.raises(GSASRecError, match="k must be between 1 and 50"):
        recommender.recommend([1], k=51)


def test_external_ids_and_names(pattern_run, tmp_path):
    root, _, run_dir = pattern_run
    folder = tmp_path / "cycle"
    shutil.copytree(root / "datasets" / "cycle", folder)
    (folder / "item_ids.tsv").write_text("internal_id\texternal_id\n" + "".join(
        f"{i}\tsku-{i}\n" for i in range(1, 51)))
    (folder / "item_names.tsv").write_text("item_id\ttitle\n13\tThirteen\n")
    named = Recommender.from_checkpoint(run_dir / "best.pt", device="cpu", datasets_dir=tmp_path)
    result = named.recommend(["sku-10", "sku-11", "sku-12", 12], k=2)
    assert result.items[0]["item"] == "sku-13" and result.items[0]["name"] == "Thirteen"
    assert result.unknown_items == [12]


def test_recommend_command(pattern_run, capsys):
    root, _, run_dir = pattern_run
    capsys.readouterr()
    assert main(["recommend", "--checkpoint", str(run_dir / "best.pt"), "--history", "30 31 32", "-k", "2",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["items"][0]["item"] == 33
    assert main(["recommend", "--checkpoint", str(run_dir / "best.pt"), "--user", "1", "--split", "test",
                 "--datasets-dir", str(root / "datasets")]) == 0
    table = capsys.readouterr().out
    assert "rank" in table and "<- held-out item" in table and "held-out item" in table.splitlines()[-1]
    # Outside the top k the table still says what was held out and where it ranks.
    assert main(["recommend", "--checkpoint", str(run_dir / "best.pt"), "--user", "1", "--split", "test",
                 "--datasets-dir", str(root / "datasets"), "-k", "1", "--include-seen", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    recommender = Recommender.from_checkpoint(run_dir / "best.pt", device="cpu")
    history, target = recommender.user_history(read_dataset("cycle", root / "datasets").test, 1)
    everything = recommender.recommend(history, 50, exclude_seen=False).items
    expected_rank = next(r["rank"] for r in everything if r["item"] == target)
    assert printed["held_out"] == {"item": target, "rank": expected_rank}
    assert main(["recommend", "--checkpoint", str(run_dir / "best.pt"), "--user", "0",
                 "--datasets-dir", str(root / "datasets")]) == 2


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_matches_pytorch(pattern_run, tmp_path, fmt):
    _, _, run_dir = pattern_run
    output = tmp_path / f"scorer.{fmt}"
    assert main(["export", "--checkpoint", str(run_dir / "best.pt"), "--format", fmt,
                 "--output", str(output)]) == 0
    model, _, _ = load_model(run_dir / "best.pt")
    history = example_input(model, batch=5)
    history[2, :-1] = model.padding_id
    with torch.no_grad():
        expected = model.last_scores(history).numpy()
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(output))
        actual = session.run(None, {"history": history.numpy()})[0]
    else:
        actual = torch.jit.load(str(output))(history).detach().numpy()
    np.testing.assert_allclose(actual, expected, atol=1e-4)
    assert sorted(p.name for p in tmp_path.iterdir()) == [output.name]


def test_export_rejects_unknown_format(pattern_run, tmp_path):
    model, _, _ = load_model(pattern_run[2] / "best.pt")
    with pytest.raises(GSASRecError, match="--format must be one of"):
        export_scorer(model, tmp_path / "x", "tflite")


def test_recommend_by_names_and_what_an_unknown_history_is_told(pattern_run, tmp_path, capsys):
    root, _, run_dir = pattern_run
    shutil.copytree(root / "datasets" / "cycle", tmp_path / "cycle")
    (tmp_path / "cycle" / "item_names.tsv").write_text("item_id\ttitle\n" + "".join(
        f"{i}\tTrack {i:02d}\n" for i in range(1, 51)))
    common = ["recommend", "--checkpoint", str(run_dir / "best.pt"), "--datasets-dir", str(tmp_path)]
    capsys.readouterr()
    assert main([*common, "--history-names", "Track 10; track 11 ;TRACK 12", "-k", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["items"][0]["name"] == "Track 13"
    # every name not found, each with the closest names the catalogue has
    assert main([*common, "--history-names", "Track 10; Trak 11; Nothing like it"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert "'Trak 11' (closest: 'Track 11'" in error and "'Nothing like it' (closest: none)" in error
    # titles given as ids: the unknown tokens are listed, with the expected form and the way to give titles
    assert main([*common, "--history", "Toy Story (1995)"]) == 2
    error = capsys.readouterr().err
    assert "'Toy', 'Story', '(1995)'" in error and "item ids 1..50" in error and "--history-names" in error


def test_history_names_need_a_names_table(pattern_run, capsys):
    root, _, run_dir = pattern_run
    assert main(["recommend", "--checkpoint", str(run_dir / "best.pt"), "--datasets-dir", str(root / "datasets"),
                 "--history-names", "Track 10"]) == 2
    assert "no item names (item_names.tsv)" in capsys.readouterr().err

"""The transition term: counts by hand, scores with the term added on both scoring paths, the weight chosen
on validation, stored in the checkpoints of a run and used by evaluate, recommend and serve."""

import itertools
import json

import numpy as np
import pytest
import torch
from synthetic import write_config, write_successor_dataset

from gsasrec.checkpoint import load_model, save_checkpoint, store_transition_term
from gsasrec.cli import main
from gsasrec.config import make_config
from gsasrec.data.folder import Sequences, Split, read_dataset
from gsasrec.errors import GSASRecError
from gsasrec.evaluation import choose_transition_weights, evaluate_checkpoint
from gsasrec.model import GSASRec
from gsasrec.recommender import Recommender
from gsasrec.scoring import top_k
from gsasrec.transition_term import WEIGHTS, FollowerCounts, TransitionTerm

# Items 1..5. What followed 2: 4 three times, 3 once; what followed 1: 2 three times; 3 followed 3 once.
# What followed (1, 2): 4 twice; (2, 3): 3 once.
TRAIN = Sequences.from_lists([[1, 2, 4], [1, 2, 4], [2, 4], [2, 3, 3], [1, 2], [5], []])
NUM_ITEMS = 5


def test_counts_by_hand_and_the_entries_of_each_context():
    histories = Sequences.from_lists([[5, 2], [], [4], [1], [3], [1, 2]])
    first = FollowerCounts.of(TRAIN, NUM_ITEMS, order=1).after(histories)
    assert sorted(zip(*(a.tolist() for a in first))) == [
        (0, 3, 1.0), (0, 4, 3.0), (3, 2, 3.0), (4, 3, 1.0), (5, 3, 1.0), (5, 4, 3.0)]
    second = FollowerCounts.of(TRAIN, NUM_ITEMS, order=2).after(histories)
    assert sorted(zip(*(a.tolist() for a in second))) == [(5, 4, 2.0)]


@pytest.mark.parametrize("max_elements", [None, 3 * 4])  # the whole matrix, or blocks of 4 ids
def test_top_k_adds_the_term_to_single_scores(max_elements):
    torch.manual_seed(0)
    hidden, table, bias = torch.randn(3, 4), torch.randn(NUM_ITEMS + 2, 4), torch.randn(NUM_ITEMS + 2)
    histories = Sequences.from_lists([[5, 2], [4], [1, 2]])
    term = TransitionTerm((2.0, 0.5), TransitionTerm.count(TRAIN, NUM_ITEMS).counts)
    ids, scores = top_k(hidden, table, NUM_ITEMS, NUM_ITEMS, None, max_elements, bias, term.additions(histories, "cpu"))
    expected = hidden @ table.T + bias  # (users, ids)
    expected[[0, 2], 4] += 2 * np.log(4)
    expected[[0, 2], 3] += 2 * np.log(2)
    expected[2, 4] += 0.5 * np.log(3)
    expected[:, 0] = expected[:, NUM_ITEMS + 1] = float("-inf")
    best = torch.topk(expected, NUM_ITEMS, dim=1)
    assert torch.equal(ids, best.indices) and torch.allclose(scores, best.values)
    assert TransitionTerm((0.0, 0.0), term.counts).additions(histories, "cpu") is None


def successor_split(root):
    write_successor_dataset(root, num_users=300, num_items=120, val_users=64)
    return read_dataset("successor", root)


def test_the_weight_chosen_on_validation_is_the_best_one_there(tmp_path):
    dataset = successor_split(tmp_path)
    config = make_config(dataset_name="successor", sequence_length=16, embedding_dim=16, num_heads=1,
                         num_blocks=1, filter_rated=False)
    torch.manual_seed(0)
    model = GSASRec.from_config(config, dataset.num_items)  # untrained: its scores are noise
    counted = TransitionTerm.count(dataset.train, dataset.num_items)
    term, figures = choose_transition_weights(model, dataset.val, config, counted)
    assert set(figures) == set(itertools.product(WEIGHTS, WEIGHTS)) and figures[term.weights] == max(figures.values())
    # Each item's successor follows it 90% of the time here: the counts rank it first, noise does not.
    assert term.active and figures[term.weights] > 0.5 > figures[(0.0, 0.0)]
    # Ties go to the smallest weights: histories with no counts at all score the same with any.
    nothing = Split(inputs=Sequences.from_lists([[]] * 4), targets=np.array([1, 2, 3, 4]))
    assert choose_transition_weights(model, nothing, config, counted)[0].weights == (0.0, 0.0)


def test_a_checkpoint_keeps_its_term_and_a_damaged_one_is_one_line(tmp_path):
    config = make_config(dataset_name="tiny", sequence_length=8, embedding_dim=8, num_heads=1, num_blocks=1)
    model = GSASRec.from_config(config, NUM_ITEMS)
    model.transition_term = TransitionTerm((4.0, 1.0), TransitionTerm.count(TRAIN, NUM_ITEMS).counts)
    path = tmp_path / "model.pt"
    save_checkpoint(path, model, config, {"num_items": NUM_ITEMS})
    loaded = load_model(path)[0].transition_term
    assert loaded.weights == (4.0, 1.0)
    assert all(np.array_equal(a.contexts, b.contexts) and np.array_equal(a.counts, b.counts)
               for a, b in zip(loaded.counts, model.transition_term.counts))
    store_transition_term(path, TransitionTerm((0.5, 0.0), loaded.counts))
    assert load_model(path)[0].transition_term.weights == (0.5, 0.0)
    good = torch.load(path, weights_only=True)

    def damaged(change) -> str:
        payload = {**good, "transition_term": {k: list(v) for k, v in good["transition_term"].items()}}
        change(payload["transition_term"])
        torch.save(payload, path)
        with pytest.raises(GSASRecError) as error:
            load_model(path)
        return str(error.value)

    assert "model.pt: transition_term does not fit a catalogue of 5 items" in damaged(
        lambda term: term["followed"].__setitem__(1, term["followed"][1] + NUM_ITEMS + 9))  # ids outside it
    assert "does not fit" in damaged(lambda term: term["contexts"].__setitem__(0, term["contexts"][0].flip(0)))
    assert "finite numbers" in damaged(lambda term: term["weights"].__setitem__(0, float("nan")))
    assert "one length" in damaged(lambda term: term["counts"].__setitem__(0, term["counts"][0][:1]))


def test_a_run_with_the_term_stores_it_and_every_command_uses_it(tmp_path, capsys):
    successor_split(tmp_path / "datasets")
    config = write_config(tmp_path / "successor.py", dataset_name="successor", transition_term=True,
                          filter_rated=False, max_epochs=2)
    run = tmp_path / "run"
    assert main(["train", "--config", str(config), "--datasets-dir", str(tmp_path / "datasets"), "--output-dir",
                 str(run), "--seed", "0", "--no-progress", "--device", "cpu"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("transition term: weights"))
    weights = tuple(float(w.rstrip(",")) for w in line.split()[3:5])
    for name in ("best.pt", "last.pt"):
        assert load_model(run / name)[0].transition_term is not None
    # evaluate on the validation users gives the figure the run chose the weight by
    evaluation = evaluate_checkpoint(run / "last.pt", split="val", progress=False)
    assert f"validation nDCG@10 {evaluation.metrics['nDCG@10']:.4f}" in line
    assert evaluation.model.transition_term.weights == weights
    # recommend: the item that followed the last one most often is first when its weight is large
    recommender = Recommender.from_checkpoint(run / "last.pt", device="cpu")
    recommender.model.transition_term.weights = (100.0, 0.0)
    counts = recommender.model.transition_term.counts[0]
    row = counts.contexts == 7
    most = int(counts.followed[row][np.argmax(counts.counts[row])])
    assert recommender.recommend([3, 7], k=3, exclude_seen=False).items[0]["item"] == most
    assert main(["evaluate", "--checkpoint", str(run / "last.pt"), "--split", "val", "--json"]) == 0
    printed = capsys.readouterr()
    assert json.loads(printed.out.strip().splitlines()[-1])["nDCG@10"] == pytest.approx(evaluation.metrics["nDCG@10"])
    assert evaluation.model.transition_term.active and "transition term " in printed.err
    # --no-transition-term: the network alone, the figure the run printed beside the chosen one
    assert main(["evaluate", "--checkpoint", str(run / "last.pt"), "--split", "val", "--json",
                 "--no-transition-term"]) == 0
    alone = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["nDCG@10"]
    assert f"(the model alone {alone:.4f})" in line

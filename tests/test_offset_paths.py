"""The logit offset is part of every score: training, evaluation, recommend, serve, calibration and the
exported ONNX and TorchScript scorers all add it, and agree with h . E + b."""

import json

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from gsasrec.calibration import scored_pairs
from gsasrec.checkpoint import load_model, read_checkpoint
from gsasrec.cli import main
from gsasrec.data.folder import Sequences, read_dataset
from gsasrec.evaluation import predict_top
from gsasrec.export import export_scorer
from gsasrec.recommender import Recommender
from gsasrec.serve import create_app

HISTORY = [10, 11, 12]


@pytest.fixture(scope="module")
def biased(pattern_run, tmp_path_factory):
    """The pattern model with a large random per-item bias, so that the bias decides the ranking: a path
    that forgot it would recommend the pattern's next item instead. (checkpoint path, model)."""
    _, _, run_dir = pattern_run
    payload = read_checkpoint(run_dir / "best.pt")
    generator = torch.Generator().manual_seed(0)
    bias = payload["state_dict"]["output_bias"]
    payload["state_dict"]["output_bias"] = bias + 40 * torch.randn(bias.shape, generator=generator)
    path = tmp_path_factory.mktemp("biased") / "biased.pt"
    torch.save(payload, path)
    model, _, _ = load_model(path)
    return path, model


def expected_scores(model, history) -> np.ndarray:
    """(num_items + 2,) h . E + b, written out here rather than taken from the library."""
    inputs = torch.tensor([history])
    with torch.no_grad():
        hidden = model(inputs)[0, -1]
        return (model.output_embedding.weight @ hidden + model.output_bias).numpy()


def expected_top(model, history, k) -> tuple[list[int], np.ndarray]:
    scores = expected_scores(model, history)
    scores[0] = scores[model.padding_id] = -np.inf
    scores[history] = -np.inf
    order = np.argsort(-scores)[:k]
    return order.tolist(), scores[order]


def test_bias_changes_the_ranking(biased):
    _, model = biased
    items, _ = expected_top(model, HISTORY, 1)
    assert items != [13]  # without the bias the pattern's next item, 13, would be first


def test_evaluation_and_recommender_add_the_bias(biased):
    path, model = biased
    items, scores = expected_top(model, HISTORY, 5)
    top_items, top_scores = predict_top(model, Sequences.from_lists([HISTORY]), 5, filter_rated=True)
    assert top_items[0].tolist() == items
    np.testing.assert_allclose(top_scores[0], scores, atol=1e-4)
    result = Recommender.from_checkpoint(path, device="cpu").recommend(HISTORY, k=5)
    assert [r["item"] for r in result.items] == items
    np.testing.assert_allclose([r["score"] for r in result.items], scores, atol=1e-4)


def test_recommend_command_and_http_service_add_the_bias(biased, capsys):
    path, model = biased
    items, scores = expected_top(model, HISTORY, 4)
    capsys.readouterr()
    assert main(["recommend", "--checkpoint", str(path), "--history", "10 11 12", "-k", "4", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)["items"]
    assert [r["item"] for r in printed] == items
    with TestClient(create_app(Recommender.from_checkpoint(path, device="cpu"))) as client:
        response = client.post("/recommend", json={"history": HISTORY, "k": 4})
    assert response.status_code == 200
    served = response.json()["items"]
    assert [r["item"] for r in served] == items
    np.testing.assert_allclose([r["score"] for r in served], scores, atol=1e-4)


def test_calibration_adds_the_bias(biased, pattern_run):
    _, model = biased
    root = pattern_run[0]
    test = read_dataset("cycle", root / "datasets").test
    probabilities, labels, _ = scored_pairs(model, test, negatives=5)
    history = test.inputs[0].tolist()[-model.sequence_length:]
    expected = 1 / (1 + np.exp(-expected_scores(model, history)[test.targets[0]]))
    assert labels[0] == 1 and probabilities[0] == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_exported_scorers_add_the_bias(biased, tmp_path, fmt):
    _, model = biased
    output = export_scorer(model, tmp_path / f"scorer.{fmt}", fmt)
    history = torch.full((1, model.sequence_length), model.padding_id)
    history[0, -3:] = torch.tensor(HISTORY)
    if fmt == "onnx":
        import onnxruntime

        actual = onnxruntime.InferenceSession(str(output)).run(None, {"history": history.numpy()})[0][0]
    else:
        actual = torch.jit.load(str(output))(history)[0].detach().numpy()
    np.testing.assert_allclose(actual, expected_scores(model, HISTORY), atol=1e-4)

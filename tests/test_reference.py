"""The model and loss reproduce the reference implementation's own outputs (../shared/reference)."""

import json

import numpy as np
import pytest
import torch

from gsasrec.data.folder import Sequences
from gsasrec.evaluation import predict_top
from gsasrec.loss import gbce_beta, gbce_loss
from gsasrec.model import GSASRec


@pytest.fixture
def cases(reference_dir):
    return json.loads((reference_dir / "cases.json").read_text())


def load_tiny(reference_dir, cases, name):
    c = cases["models"][name]["config"]
    model = GSASRec(cases["num_items"], cases["sequence_length"], c["embedding_dim"], c["num_heads"],
                    c["num_blocks"], c["dropout_rate"], c["reuse_item_embeddings"])
    state_dict = torch.load(reference_dir / f"{name}.pt", weights_only=True)
    model.load_state_dict(state_dict)
    return model.eval(), state_dict


@pytest.mark.parametrize("name", ["tiny_gsasrec", "tiny_reuse"])
def test_tiny_models_reproduce_reference_outputs(reference_dir, cases, name):
    model, state_dict = load_tiny(reference_dir, cases, name)
    expected = cases["models"][name]
    assert list(state_dict) == expected["state_dict_keys"]
    assert list(model.state_dict()) == expected["state_dict_keys"]
    inputs = torch.tensor(cases["inputs"])
    with torch.no_grad():
        hidden = model(inputs)[:, -1]
        scores = model.last_scores(inputs)
    np.testing.assert_allclose(hidden.numpy(), expected["last_hidden"], atol=1e-5)
    np.testing.assert_allclose(scores.numpy(), expected["full_scores_last"], atol=1e-5)
    padding = cases["padding_value"]
    histories = Sequences.from_lists([[i for i in row if i != padding] for row in cases["inputs"]])
    assert [sorted(set(histories[u].tolist())) for u in range(len(histories))] == cases["rated"]
    for filter_rated, suffix in ((False, ""), (True, "_filtered")):
        items, top_scores = predict_top(model, histories, 5, filter_rated)
        assert items.tolist() == expected["top5_items" + suffix]
        np.testing.assert_allclose(top_scores, expected["top5_scores" + suffix], atol=1e-5)


def test_reuse_item_embeddings_switches_the_output_table(reference_dir, cases):
    separate, _ = load_tiny(reference_dir, cases, "tiny_gsasrec")
    shared, _ = load_tiny(reference_dir, cases, "tiny_reuse")
    assert separate.output_table is separate.output_embedding.weight
    assert shared.output_table is shared.item_embedding.weight
    assert not hasattr(shared, "output_embedding")


def test_gbce_matches_reference_losses(cases):
    assert len(cases["gbce"]) >= 4
    for case in cases["gbce"]:
        logits = torch.tensor(case["logits"], dtype=torch.float32)
        mask = torch.tensor(case["mask"])
        for expected in case["by_t"]:
            beta = gbce_beta(case["num_items"], case["negs_per_pos"], expected["t"])
            assert beta == pytest.approx(expected["beta"], rel=1e-12)
            loss = gbce_loss(logits, beta, mask)
            assert loss.dtype == torch.float32
            assert loss.item() == pytest.approx(expected["loss"], rel=1e-6)

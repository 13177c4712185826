"""The reference's ML-1M checkpoints give the reference's test metrics (../shared/reference/README.md)."""

import json
import re

import pytest
from conftest import REPO

from gsasrec.checkpoint import load_model
from gsasrec.cli import main
from gsasrec.config import load_config
from gsasrec.data.folder import read_dataset
from gsasrec.evaluation import predict_top
from gsasrec.metrics import compute_metrics, ir_measures_metrics

CONFIGS = {"ml1m_gsasrec_step1008.pt": "ml1m_gsasrec.py", "ml1m_sasrec_step1344.pt": "ml1m_sasrec.py"}


def reference_table(reference_dir):
    """{file: {measure: value}} from the table in the reference README."""
    table = {}
    for line in (reference_dir / "README.md").read_text().splitlines():
        match = re.match(r"\| `(ml1m_\w+\.pt)` \|.*\| (\d+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|", line)
        if match:
            table[match.group(1)] = dict(zip(["R@1", "R@10", "nDCG@10"], map(float, match.group(3, 4, 5))))
    assert len(table) == 2
    return table


@pytest.mark.parametrize("checkpoint", sorted(CONFIGS))
def test_reference_checkpoints_reproduce_reference_metrics(reference_dir, shared_datasets, checkpoint, capsys):
    expected = reference_table(reference_dir)[checkpoint]
    code = main(["evaluate", f"--config={REPO / 'configs' / CONFIGS[checkpoint]}",
                 "--checkpoint", str(reference_dir / checkpoint), "--datasets-dir", str(shared_datasets),
                 "--json", "--device", "cpu"])
    assert code == 0
    values = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for name, value in expected.items():
        assert values[name] == pytest.approx(value, abs=1e-6), name


def test_fast_metrics_equal_ir_measures_on_ml1m(reference_dir, shared_datasets):
    config = load_config(REPO / "configs" / "ml1m_gsasrec.py")
    model, _, _ = load_model(reference_dir / "ml1m_gsasrec_step1008.pt", config)
    split = read_dataset("ml1m", shared_datasets).test
    top, _ = predict_top(model, split.inputs, 10, True)
    names = ["nDCG@10", "R@1", "R@10", "RR", "P@5"]
    fast, slow = compute_metrics(names, top, split.targets), ir_measures_metrics(names, top, split.targets)
    for name in names:
        assert fast[name] == pytest.approx(slow[name], abs=1e-12), name

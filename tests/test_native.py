"""The C gBCE kernel (gsasrec.native, native_gbce.c) against torch's path: the same loss and gradients up to
float rounding, and torch's path wherever the kernel is off or cannot be built. The same bits for any thread
count: tests/test_fast_paths.py, for both paths."""

from __future__ import annotations

import pytest
import torch

from gsasrec import native
from gsasrec.scoring import bagged_gbce_loss, native_kernel

needs_kernel = pytest.mark.skipif(native.library() is None, reason="no C compiler here: the kernel cannot be built")


def loss_and_gradients(monkeypatch, switch: str, hidden, table, candidates, bias, beta, scale=1.0):
    monkeypatch.setenv(native.ENVIRONMENT_SWITCH, switch)
    inputs = [x for x in (hidden, table, bias) if x is not None]
    loss = bagged_gbce_loss(hidden, table, candidates, bias, beta)
    return (loss, *torch.autograd.grad(scale * loss, inputs))


@needs_kernel
@pytest.mark.parametrize("positions, dim, items, width", [(1, 16, 50, 2), (300, 20, 700, 33), (1400, 128, 3418, 257)])
def test_kernel_matches_torch_path(monkeypatch, positions, dim, items, width):
    generator = torch.Generator().manual_seed(positions)
    table = torch.randn(items, dim, generator=generator).mul(0.3).requires_grad_()
    bias = torch.randn(items, generator=generator).sub(4).requires_grad_()
    hidden = torch.randn(positions, dim, generator=generator).mul(0.3).requires_grad_()
    candidates = torch.randint(1, items - 1, (positions, width), generator=generator)
    candidates[0, -1] = candidates[0, 0]  # a negative that is the positive: both terms count
    for b in (bias, None):
        kernel = loss_and_gradients(monkeypatch, "1", hidden, table, candidates, b, 0.2, scale=3.0)
        torch_path = loss_and_gradients(monkeypatch, "0", hidden, table, candidates, b, 0.2, scale=3.0)
        for a, e in zip(kernel, torch_path):
            assert a.dtype == e.dtype
            torch.testing.assert_close(a, e, rtol=2e-5, atol=1e-9)


def test_switch_and_inputs_the_kernel_does_not_serve(monkeypatch):
    monkeypatch.setenv(native.ENVIRONMENT_SWITCH, "0")
    assert native.library() is None
    monkeypatch.setenv(native.ENVIRONMENT_SWITCH, "1")
    h, e = torch.zeros(3, 8), torch.zeros(10, 8)
    candidates = torch.zeros(3, 4, dtype=torch.int64)
    assert native_kernel(h.double(), e.double(), candidates) is None  # float64: torch's path
    assert native_kernel(h, e, candidates.int()) is None
    assert native_kernel(h[:0], e, candidates[:0]) is None


def test_no_compiler_means_torch_path(monkeypatch, tmp_path):
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert native._build_and_load() is None


@needs_kernel
def test_build_is_cached_under_the_cpu_and_source_key(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert native._build_and_load() is not None
    (built,) = (tmp_path / "gsasrec" / "native").iterdir()
    assert built.name.startswith("gbce-") and built.suffix == ".so"
    stamp = built.stat().st_mtime_ns
    assert native._build_and_load() is not None
    assert [p.name for p in built.parent.iterdir()] == [built.name] and built.stat().st_mtime_ns == stamp


@needs_kernel
def test_loading_the_kernel_keeps_subnormal_numbers():
    # Linked with -ffast-math, the shared object would switch the CPU to flush subnormals to zero for the whole
    # process as it loads; these would then be 0.
    assert native.library() is not None
    tiny = 5e-324
    assert tiny * 1.0 > 0
    assert torch.tensor([1e-40]).mul(1.0).item() > 0


def test_training_through_the_kernel_repeats_and_resume_says_when_it_changes(monkeypatch, tmp_path, capsys):
    # A catalogue large enough for the sparse path (more items than 4 x (1 + negatives)): the kernel where it
    # can be built, torch's path elsewhere. Same seed, same bits; a resume that changes path says so.
    from synthetic import write_config, write_cycle_dataset

    from gsasrec.config import load_config
    from gsasrec.data.recipes import open_dataset
    from gsasrec.runs import read_records
    from gsasrec.training import RunOptions, resume, train

    write_cycle_dataset(tmp_path / "datasets", num_users=64, num_items=200, val_users=8)
    config = load_config(write_config(tmp_path / "c.py", max_epochs=3, max_batches_per_epoch=2))
    dataset = open_dataset("cycle", tmp_path / "datasets")
    losses = []
    for name in ("a", "b"):
        train(config, dataset, RunOptions(output_dir=tmp_path / name, seed=1, max_steps=3, progress=False))
        losses.append([r["loss"] for r in read_records(tmp_path / name)])
    assert losses[0] == losses[1]
    available = native.library() is not None
    monkeypatch.setenv(native.ENVIRONMENT_SWITCH, "1" if not available else "0")
    resume(tmp_path / "a", tmp_path / "datasets", progress=False, max_steps=4)
    said = capsys.readouterr().err
    if available:
        assert "was trained with the C gBCE kernel and resumes without it" in said


def test_a_bad_switch_is_one_line_and_nothing_runs(monkeypatch, capsys, tmp_path):
    from gsasrec.cli import main

    monkeypatch.setenv(native.ENVIRONMENT_SWITCH, "maybe")
    assert main(["train", "--dataset", "nothing", "--datasets-dir", str(tmp_path), "--output-dir",
                 str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.strip() == ("gsasrec: error: environment variable GSASREC_NATIVE must be 1 or 0 "
                                               "(true/false, on/off, yes/no), got 'maybe'")
    assert not (tmp_path / "run").exists()
    monkeypatch.setenv(native.ENVIRONMENT_SWITCH, " Off ")
    assert native.library() is None


@needs_kernel
def test_a_candidate_outside_the_table_is_refused_not_read(monkeypatch):
    # Torch's path raises on such an index; the kernel must not read past the table instead.
    monkeypatch.setenv(native.ENVIRONMENT_SWITCH, "1")
    table, hidden = torch.randn(50, 16, requires_grad=True), torch.randn(30, 16, requires_grad=True)
    for bad in (50, -1, 10**9):
        candidates = torch.randint(0, 50, (30, 9))
        candidates[17, 4] = bad
        with pytest.raises(ValueError, match="not a row of the output table"):
            bagged_gbce_loss(hidden, table, candidates, None, 0.5)

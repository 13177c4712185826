"""Dataset folders: reading, validation errors, the split, atomic writing, and ML-1M exactness."""

import json

import numpy as np
import pytest
from synthetic import write_cycle_dataset

from gsasrec.data.folder import (
    Sequences,
    parse_plain_digits,
    parse_sequences,
    read_dataset,
    read_sequences,
    resolve_datasets_dir,
)
from gsasrec.data.split import leave_one_out, reference_validation_users
from gsasrec.errors import GSASRecError


def test_read_synthetic_dataset(tmp_path):
    write_cycle_dataset(tmp_path, num_users=50, num_items=12, val_users=10)
    dataset = read_dataset("cycle", tmp_path)
    assert dataset.num_items == 12 and len(dataset.train) == 50
    assert len(dataset.val.inputs) == 10 and len(dataset.test.inputs) == 50
    # The test input is the whole sequence but the last item, which is its target.
    for u in range(50):
        full = np.append(dataset.test.inputs[u], dataset.test.targets[u])
        assert np.array_equal(np.diff(full) % 12, np.ones(len(full) - 1))


def test_datasets_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("GSASREC_DATASETS", str(tmp_path / "env"))
    assert resolve_datasets_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_datasets_dir() == tmp_path / "env"
    monkeypatch.delenv("GSASREC_DATASETS")
    assert str(resolve_datasets_dir()) == "datasets"


@pytest.mark.parametrize("relative, text, words", [
    ("train/input.txt", "1 2 x3\n", "train/input.txt:1: 'x3' is not an integer item id"),
    ("train/input.txt", "1 2 3\n4 0 5\n", "train/input.txt:2: item id 0 is outside 1..12"),
    ("test/input.txt", "1 2\n3 13\n", "test/input.txt:2: item id 13 is outside 1..12"),
    ("val/output.txt", "1\n", "val/output.txt: 1 lines, but"),
    ("test/output.txt", "", "test/output.txt: 0 lines, but"),
    ("dataset_stats.json", "{\"num_users\": 3}", "'num_items' must be a non-negative integer"),
    ("dataset_stats.json", "{oops", "dataset_stats.json:1: invalid JSON"),
])
def test_malformed_files_are_one_line_errors(tmp_path, relative, text, words):
    folder = write_cycle_dataset(tmp_path, num_users=20, num_items=12, val_users=4)
    (folder / relative).write_text(text)
    with pytest.raises(GSASRecError) as error:
        dataset = read_dataset("cycle", tmp_path)
        for split in ("train", "val", "test"):  # each split is read when first used
            getattr(dataset, split)
    assert words in str(error.value) and "\n" not in str(error.value)


def test_output_line_with_two_items_is_an_error(tmp_path):
    folder = write_cycle_dataset(tmp_path, num_users=20, num_items=12, val_users=4)
    lines = (folder / "val" / "output.txt").read_text().splitlines()
    lines[2] = "3 4"
    (folder / "val" / "output.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(GSASRecError, match="val/output.txt:3: expected exactly one item id, got 2"):
        read_dataset("cycle", tmp_path).split("val")


def test_missing_stats_and_missing_folder(tmp_path):
    folder = write_cycle_dataset(tmp_path, num_users=20, num_items=12, val_users=4)
    (folder / "dataset_stats.json").unlink()
    with pytest.raises(GSASRecError, match="dataset_stats.json: missing"):
        read_dataset("cycle", tmp_path)
    with pytest.raises(GSASRecError, match="dataset folder .*nothere not found"):
        read_dataset("nothere", tmp_path)


def test_writer_refuses_to_overwrite_without_force_and_leaves_no_temporaries(tmp_path):
    write_cycle_dataset(tmp_path, num_users=20, num_items=12, val_users=4)
    with pytest.raises(GSASRecError, match="already exists"):
        write_cycle_dataset(tmp_path, num_users=20, num_items=12, val_users=4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cycle"]


def test_leave_one_out_split():
    sequences = Sequences.from_lists([[1, 2, 3, 4], [5, 6, 7], [8, 9, 10, 11, 12]])
    train, val, test = leave_one_out(sequences, np.array([False, True, True]))
    assert [train[u].tolist() for u in range(3)] == [[1, 2], [], [8, 9]]
    assert [val.inputs[u].tolist() for u in range(2)] == [[5], [8, 9, 10]]
    assert val.targets.tolist() == [6, 11]
    assert [test.inputs[u].tolist() for u in range(3)] == [[1, 2, 3], [5, 6], [8, 9, 10, 11]]
    assert test.targets.tolist() == [4, 7, 12]


def test_ml1m_split_is_byte_identical_to_the_reference(shared_datasets):
    from gsasrec.data.folder import format_sequences

    root = shared_datasets / "ml1m"
    pairs = np.loadtxt(root / "ml-1m.txt", dtype=np.int64)
    counts = np.bincount(pairs[:, 0])[1:]
    sequences = Sequences(pairs[:, 1], np.concatenate([[0], np.cumsum(counts)]))
    train, val, test = leave_one_out(sequences, reference_validation_users(len(sequences), 512, 42))
    assert format_sequences(train) == (root / "train" / "input.txt").read_text()
    assert format_sequences(val.inputs) == (root / "val" / "input.txt").read_text()
    assert "".join(f"{t}\n" for t in test.targets) == (root / "test" / "output.txt").read_text()
    stats = json.loads((root / "dataset_stats.json").read_text())
    assert stats == {"num_users": 6040, "num_items": 3416, "num_interactions": len(pairs)}


def test_reading_ml1m(shared_datasets):
    dataset = read_dataset("ml1m", shared_datasets)
    assert len(dataset.train) == 6040 and len(dataset.val.inputs) == 512
    assert int(dataset.test.inputs.lengths.sum() + len(dataset.test.targets)) == 999_611


def test_fast_digit_parser_reads_what_the_line_parser_reads(tmp_path):
    # read_sequences takes plain files (digits, blanks, \n or \r\n) through array passes and hands every
    # other file to parse_sequences; either way the same sequences, or the same one-line error.
    rng = np.random.default_rng(0)
    pieces = ["1", "7", "12", "0", "13", "004", "1234567890123456789012", " ", "  ", "\t", "\n", "\r\n", "\r",
              "x", "-3", "2.5", "\u00a0", "\n\n"]
    path = tmp_path / "input.txt"
    fast_ones = 0
    for _ in range(400):
        text = "".join(rng.choice(pieces, size=int(rng.integers(0, 14))))
        path.write_bytes(text.encode())
        fast_ones += parse_plain_digits(text.encode()) is not None
        outcomes = []
        for fast in (True, False):
            try:
                sequences = read_sequences(path, 12) if fast else parse_sequences(text.splitlines(), 12, path)
                outcomes.append((sequences.items.tolist(), sequences.offsets.tolist()))
            except GSASRecError as error:
                outcomes.append(str(error))
        assert outcomes[0] == outcomes[1], repr(text)
    assert fast_ones > 50  # the fast path was taken, not only the fallback

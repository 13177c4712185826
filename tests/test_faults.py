"""Hostile input and faults: a one-line error, a non-zero exit, and nothing already there lost."""

import subprocess
import sys

import pytest


def gsasrec(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "gsasrec", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def assert_one_line_error(result, words):
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gsasrec: error:") and words in lines[0], result.stderr


@pytest.fixture
def datasets(tmp_path):
    """A datasets folder holding a precious file, a log to import, and a folder that is not a dataset."""
    root = tmp_path / "datasets"
    root.mkdir()
    (root / "precious.txt").write_text("keep me")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "notes.txt").write_text("keep me too")
    log = tmp_path / "log.csv"
    log.write_text("user_id,item_id\n" + "".join(f"u{u},i{(u + k) % 7}\n" for u in range(20) for k in range(4)))
    return root, log


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "/tmp"])
def test_import_refuses_a_dataset_name_that_is_not_one_plain_folder_name(datasets, tmp_path, name):
    root, log = datasets
    result = gsasrec("data", "import", "--interactions", log, "--name", name, "--datasets-dir", root, "--force")
    assert_one_line_error(result, "must be one plain folder name")
    assert (root / "precious.txt").read_text() == "keep me"
    assert sorted(p.name for p in root.iterdir()) == ["precious.txt"]


def test_force_replaces_only_a_dataset_folder(datasets, tmp_path):
    root, log = datasets
    (root / "notes").mkdir()
    (root / "notes" / "draft.txt").write_text("mine")
    result = gsasrec("data", "import", "--interactions", log, "--name", "notes", "--datasets-dir", root, "--force")
    assert_one_line_error(result, "is not a dataset folder")
    assert (root / "notes" / "draft.txt").read_text() == "mine"
    assert gsasrec("data", "import", "--interactions", log, "--name", "shop", "--datasets-dir", root).returncode == 0
    again = gsasrec("data", "import", "--interactions", log, "--name", "shop", "--datasets-dir", root, "--force")
    assert again.returncode == 0 and (root / "shop" / "dataset_stats.json").is_file()

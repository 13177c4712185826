"""The command line as a user meets it: help, one-line errors with a non-zero exit, no tracebacks."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from synthetic import write_config, write_cycle_dataset

from gsasrec.checkpoint import save_checkpoint
from gsasrec.config import load_config
from gsasrec.model import GSASRec


def gsasrec(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "gsasrec", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


@pytest.mark.parametrize("command", ["train", "tune", "evaluate", "data", "recommend", "serve", "export", "runs"])
def test_help_explains_every_option_with_an_example(command):
    result = gsasrec(command, "--help")
    assert result.returncode == 0
    assert "examples:" in result.stdout and f"gsasrec {command} " in result.stdout
    if command in ("train", "tune", "evaluate", "recommend", "serve"):  # export traces on the CPU, no dataset
        assert "--device" in result.stdout and "--datasets-dir" in result.stdout


@pytest.mark.parametrize("recipe", ["ml1m", "import", "stats", "steam", "gowalla"])
def test_each_data_command_describes_itself(recipe):
    """`data import --help` and the others open with a description of their own, not only the usage."""
    result = gsasrec("data", recipe, "--help")
    body = result.stdout.split("\n\n")[1]  # the paragraph after the usage lines
    assert result.returncode == 0 and not body.startswith(("options:", "positional arguments:"))
    assert len(body.split()) > 12


def assert_one_line_error(result, words):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gsasrec: error:"), result.stderr
    assert words in lines[0], lines[0]


@pytest.fixture
def setup(tmp_path):
    write_cycle_dataset(tmp_path / "datasets", num_users=40, num_items=20, val_users=8)
    config = write_config(tmp_path / "c.py")
    return tmp_path, config


def test_bad_config_value(setup):
    tmp_path, _ = setup
    config = write_config(tmp_path / "bad.py", negs_per_pos=0)
    result = gsasrec("train", "--config", config, "--datasets-dir", tmp_path / "datasets")
    assert_one_line_error(result, "'negs_per_pos' must be an integer >= 1")


def test_malformed_dataset(setup):
    tmp_path, config = setup
    (tmp_path / "datasets" / "cycle" / "train" / "input.txt").write_text("1 2 three\n")
    result = gsasrec("train", "--config", config, "--datasets-dir", tmp_path / "datasets")
    assert_one_line_error(result, "input.txt:1: 'three' is not an integer item id")


def checkpoint_for(tmp_path, name, num_items=20, **fields):
    config = load_config(write_config(tmp_path / f"{name}.py", **fields))
    model = GSASRec.from_config(config, num_items)
    path = tmp_path / f"{name}.pt"
    save_checkpoint(path, model, config, {"num_users": 40, "num_items": num_items, "num_interactions": 1})
    return path


@pytest.mark.parametrize("fields, num_items, words", [
    ({}, 30, "trained on num_items=30, but dataset"),
    ({"embedding_dim": 16}, 20, "trained with embedding_dim=16, but the config says embedding_dim=32"),
    ({"num_blocks": 3}, 20, "trained with num_blocks=3"),
])
def test_mismatched_checkpoint(setup, fields, num_items, words):
    tmp_path, config = setup
    checkpoint = checkpoint_for(tmp_path, "other", num_items, **fields)
    extra = () if num_items != 20 else ("--config", config)
    result = gsasrec("evaluate", "--checkpoint", checkpoint, "--datasets-dir", tmp_path / "datasets", *extra)
    assert_one_line_error(result, words)


def test_bare_state_dict_that_does_not_fit(setup):
    tmp_path, config = setup
    model = GSASRec(20, 16, embedding_dim=32, num_heads=2, num_blocks=1)
    path = tmp_path / "bare.pt"
    torch.save(model.state_dict(), path)
    result = gsasrec("evaluate", f"--config={config}", path, "--datasets-dir", tmp_path / "datasets")
    assert_one_line_error(result, "has num_blocks=1, but the config says num_blocks=2")
    result = gsasrec("evaluate", path, "--datasets-dir", tmp_path / "datasets")
    assert_one_line_error(result, "bare state_dict: pass --config")


def test_recommendation_limit_below_a_cutoff(setup):
    tmp_path, config = setup
    checkpoint = checkpoint_for(tmp_path, "ok")
    result = gsasrec("evaluate", checkpoint, "--datasets-dir", tmp_path / "datasets", "--metrics", "nDCG@20")
    assert_one_line_error(result, "must be >= the cutoff of every measure: nDCG@20 needs 20")
    assert "(set with --recommendation-limit)" in result.stderr


def test_missing_checkpoint_and_not_a_checkpoint(setup):
    tmp_path, config = setup
    assert_one_line_error(gsasrec("evaluate", tmp_path / "nope.pt"), "not found")
    junk = tmp_path / "junk.pt"
    junk.write_text("hello")
    assert_one_line_error(gsasrec("evaluate", junk), "cannot be read as weights-only")


def test_bad_flag_value_exits_non_zero(setup):
    result = gsasrec("train", "--config", "x.py", "--max-steps", "-3")
    assert result.returncode == 2 and "expected a whole number >= 1" in result.stderr


def test_the_readme_example_outputs_are_ignored_by_git():
    repo = Path(__file__).resolve().parents[1]
    if not (repo / ".git").exists():
        pytest.skip("not a git checkout")
    outputs = ["ml1m.onnx", "ml1m.pt", "ml1m_lengths.png", "best_calibration.png"]
    result = subprocess.run(["git", "check-ignore", *outputs], cwd=repo, capture_output=True, text=True)
    assert result.stdout.split() == outputs


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["train", "--max-steps", "zero"],
                                  ["tune", "--help"]])
def test_help_and_argument_errors_do_not_wait_for_torch(argv):
    probe = (f"import sys\nfrom gsasrec.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
             "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.parametrize("preset, expected", [(None, "20000"), ("300000", "300000")])
def test_torchs_thread_spinning_is_shortened_unless_the_user_set_it(preset, expected):
    """gsasrec sets GOMP_SPINCOUNT for libgomp before torch loads it (gsasrec/__init__.py), unless it is set."""
    env = {k: v for k, v in os.environ.items() if k != "GOMP_SPINCOUNT"}
    if preset is not None:
        env["GOMP_SPINCOUNT"] = preset
    probe = "import gsasrec, os\nimport torch\nprint(os.environ['GOMP_SPINCOUNT'])"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=env)
    assert result.stdout.split() == [expected]


def test_serve_names_each_model_once(tmp_path):
    result = gsasrec("serve", "--checkpoint", tmp_path / "a" / "best.pt", "--checkpoint", tmp_path / "b" / "best.pt")
    assert_one_line_error(result, "the name 'best' is taken; name each model: --checkpoint NAME=FILE")


def test_serve_without_the_extra_says_how_to_install_it(tmp_path):
    # fastapi made unimportable in that process only, as on a machine without the serve extra
    probe = ("import sys\nsys.modules['fastapi'] = None\nfrom gsasrec.cli import main\n"
             f"sys.exit(main(['serve', '--checkpoint', {str(tmp_path / 'x.pt')!r}]))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert_one_line_error(result, "pip install 'gsasrec[serve]' (in a checkout: pip install -e \".[serve]\")")
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "pip install 'gsasrec[serve]'" in readme and 'pip install -e ".[serve]"' in readme


def test_a_reader_that_stops_early_gets_no_traceback(tmp_path):
    """`gsasrec recommend ... | head -1`: 3,000 rows (more than a pipe holds) to a reader that closes the
    pipe after one line; the command ends quietly, with exit 0."""
    checkpoint = Path(__file__).resolve().parents[1] / "pretrained" / "ml1m_sasrec.pt"
    command = [sys.executable, "-m", "gsasrec", "recommend", "--checkpoint", str(checkpoint), "--datasets-dir",
               str(tmp_path), "--history", "1 2 3", "-k", "3000", "--device", "cpu"]
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert job.stdout.readline().split()[:2] == ["rank", "item"]
    job.stdout.close()
    error = job.stderr.read()
    assert job.wait(timeout=120) == 0
    assert "Traceback" not in error and "BrokenPipe" not in error, error


def test_the_precision_choices_of_the_commands_are_the_runtime_s():
    from gsasrec.cli import PRECISION_CHOICES
    from gsasrec.runtime import PRECISION_CHOICES as RUNTIME_CHOICES

    assert PRECISION_CHOICES == RUNTIME_CHOICES

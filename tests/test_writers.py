"""Writers that never lose data: concurrent imports, dataset names that look like temporary folders, and
config values of foreign numeric types, each through the real command or library path."""

import subprocess
import sys
from fractions import Fraction

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from synthetic import write_config, write_cycle_dataset
from test_faults import assert_one_line_error, gsasrec

from gsasrec.config import make_config
from gsasrec.errors import GSASRecError
from gsasrec.files import exclusive


def write_log(path, users, seed, items=300):
    rng = np.random.default_rng(seed)
    rows = "".join(f"u{u},i{int(rng.integers(items))}\n" for u in range(users) for _ in range(12))
    path.write_text("user_id,item_id\n" + rows)
    return path


def import_log(log, name, root):
    return gsasrec("data", "import", "--interactions", log, "--name", name, "--datasets-dir", root)


def start_import(log, name, root):
    return subprocess.Popen([sys.executable, "-m", "gsasrec", "data", "import", "--interactions", str(log),
                             "--name", name, "--datasets-dir", str(root)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_concurrent_imports_of_one_name_exactly_one_wins(tmp_path):
    root = tmp_path / "datasets"
    # Logs of one size, so that the two imports overlap from start to end; told apart by their catalogues.
    logs = [write_log(tmp_path / f"log{k}.csv", users=20_000, seed=k, items=300 + k) for k in range(2)]
    processes = [start_import(log, "shop", root) for log in logs]
    results = [(p.wait(timeout=300), *p.communicate()) for p in processes]
    winners = [k for k, (code, _, _) in enumerate(results) if code == 0]
    assert len(winners) == 1, results
    loser = results[1 - winners[0]]
    assert loser[0] == 2 and "Traceback" not in loser[2]
    assert "already exists" in loser[2] or "being written by another process" in loser[2], loser[2]
    # The folder is the winner's, whole.
    stats = (root / "shop" / "dataset_stats.json").read_text()
    assert f'"num_items": {300 + winners[0]}' in stats
    assert sorted(p.name for p in root.iterdir()) == ["shop"]


def test_an_import_is_refused_while_another_process_writes_that_dataset(tmp_path):
    root = tmp_path / "datasets"
    log = write_log(tmp_path / "log.csv", users=30, seed=0)
    with exclusive(root / "shop", "dataset folder"):  # this test process plays the other writer
        result = import_log(log, "shop", root)
        assert_one_line_error(result, "is being written by another process")
        assert not (root / "shop").exists()
    assert import_log(log, "shop", root).returncode == 0
    assert sorted(p.name for p in root.iterdir()) == ["shop"]  # the lock file went with its holder


def test_a_killed_writer_leaves_no_lock(tmp_path):
    root = tmp_path / "datasets"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from gsasrec.files import exclusive\n"
                               f"with exclusive(__import__('pathlib').Path({str(root / 'shop')!r}), 'x'):\n"
                               "    print('held', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait()
    log = write_log(tmp_path / "log.csv", users=30, seed=0)
    assert import_log(log, "shop", root).returncode == 0


def test_a_dataset_named_like_another_with_a_number_keeps_its_folders(tmp_path):
    root = tmp_path / "datasets"
    log = write_log(tmp_path / "log.csv", users=30, seed=0)
    assert import_log(log, "shop.2024", root).returncode == 0
    finished = (root / "shop.2024" / "dataset_stats.json").read_text()
    # A live writer of 'shop.2024' holds its lock and its temporary folder (2024 is no pid of ours).
    with exclusive(root / "shop.2024", "dataset folder"):
        in_progress = root / ".shop.2024.writing-abc123"
        (in_progress / "train").mkdir(parents=True)
        (in_progress / "train" / "input.txt").write_text("1 2 3\n")
        assert import_log(log, "shop", root).returncode == 0
        assert (in_progress / "train" / "input.txt").read_text() == "1 2 3\n"
    assert (root / "shop.2024" / "dataset_stats.json").read_text() == finished


def test_leftovers_of_a_killed_import_of_the_same_name_are_cleared(tmp_path):
    root = tmp_path / "datasets"
    for leftover in (".shop.writing-k1ll3d", ".shop.old-k1ll3d"):
        (root / leftover).mkdir(parents=True)
    log = write_log(tmp_path / "log.csv", users=30, seed=0)
    assert import_log(log, "shop", root).returncode == 0
    assert sorted(p.name for p in root.iterdir()) == ["shop"]


def test_hidden_dataset_names_are_refused(tmp_path):
    log = write_log(tmp_path / "log.csv", users=30, seed=0)
    result = gsasrec("data", "import", "--interactions", log, "--name", ".shop.writing-x", "--datasets-dir",
                     tmp_path / "d")
    assert_one_line_error(result, "must not start with '.'")


def test_numpy_values_in_a_config_file_give_checkpoints_that_load(tmp_path):
    write_cycle_dataset(tmp_path, num_users=80, num_items=12, val_users=16)
    config = write_config(tmp_path / "c.py", max_epochs=1, max_batches_per_epoch=2)
    config.write_text(config.read_text().replace("negs_per_pos=8,", ""))
    text = config.read_text().replace("from config", "import numpy as np\nfrom config")
    text = text.replace("dropout_rate=0.1", "dropout_rate=np.float64(0.1), learning_rate=np.float32(0.001), "
                        "negs_per_pos=np.int64(8), filter_rated=np.bool_(True), gbce_t=np.float16(0.75)")
    config.write_text(text)
    run = tmp_path / "run"
    trained = gsasrec("train", "--config", config, "--datasets-dir", tmp_path, "--output-dir", run, "--seed", 0,
                      "--max-steps", 1)
    assert trained.returncode == 0, trained.stderr
    for name in ("best.pt", "last.pt"):
        torch.load(run / name, weights_only=True)
    evaluated = gsasrec("evaluate", "--checkpoint", run / "best.pt", "--config", config, "--datasets-dir", tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    resumed = gsasrec("train", "--resume", run, "--datasets-dir", tmp_path, "--max-steps", 3)
    assert resumed.returncode == 0, resumed.stderr


FOREIGN_NUMBERS = st.one_of(
    st.integers(-3, 600).flatmap(lambda n: st.sampled_from([np.int64(n), np.int32(n), np.uint16(abs(n)), n,
                                                              np.float64(n), Fraction(n, 1)])),
    (st.floats(-1, 2) | st.sampled_from([float("nan"), float("inf")])).flatmap(
        lambda x: st.sampled_from([np.float64(x), np.float32(x), np.float16(x), x, Fraction(x).limit_denominator()
                                   if np.isfinite(x) else x])),
    st.sampled_from([np.bool_(True), np.bool_(False), True, None, "3", torch.tensor(0.5)]),
)
FIELDS = ("sequence_length", "embedding_dim", "num_heads", "dropout_rate", "negs_per_pos", "gbce_t",
          "learning_rate", "init_std", "lr_decay_steps", "filter_rated", "logit_offset", "recommendation_limit")


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(FIELDS), FOREIGN_NUMBERS, max_size=4))
def test_config_values_of_foreign_types_are_made_plain_or_refused(tmp_path_factory, values):
    try:
        config = make_config(dataset_name=np.str_("shop"), **values)
    except GSASRecError:
        return
    stored = config.to_dict()
    for name, value in stored.items():
        kinds = (list,) if name == "metrics" else (bool, int, float, str, type(None))
        assert type(value) in kinds, (name, type(value))
    path = tmp_path_factory.mktemp("c") / "config.pt"
    torch.save(stored, path)
    assert torch.load(path, weights_only=True) == stored
    for name, value in values.items():
        assert stored[name] is None if value is None else float(stored[name]) == float(value)

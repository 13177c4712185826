"""recommend --all: every user's top k in blocks, equal to `recommend --user`, resumable and shardable."""

import json
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import polars as pl
import pytest

from gsasrec.cli import main
from gsasrec.recommender import Recommender

USERS = 600


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """An imported log (the users' and items' own ids, item names) and a model trained on it briefly."""
    root = tmp_path_factory.mktemp("every-user")
    rng = np.random.default_rng(0)
    rows = [f"C{u:05d},i{int(item)},{t}" for u in range(USERS)
            for t, item in enumerate(rng.integers(0, 40, size=int(rng.integers(3, 12))))]
    (root / "log.csv").write_text("customer,item,t\n" + "\n".join(rows) + "\n")
    (root / "names.csv").write_text("item,title\n" + "\n".join(f"i{i},Item number {i}" for i in range(40)) + "\n")
    datasets = root / "d"
    assert main(["data", "import", "--interactions", str(root / "log.csv"), "--name", "shop", "--datasets-dir",
                 str(datasets), "--user-col", "customer", "--item-col", "item", "--time-col", "t",
                 "--item-names", str(root / "names.csv"), "--val-users", "50"]) == 0
    assert main(["train", "--dataset", "shop", "--datasets-dir", str(datasets), "--max-steps", "4", "--set",
                 "embedding_dim=16", "--output-dir", str(root / "run"), "--no-progress", "--device", "cpu"]) == 0
    return root, root / "run" / "best.pt", datasets


def every_user(shop, output, *extra):
    root, checkpoint, datasets = shop
    return main(["recommend", "--checkpoint", str(checkpoint), "--datasets-dir", str(datasets), "--all",
                 "--output", str(output), "--no-progress", *extra])


def test_rows_equal_recommend_for_sampled_users_in_every_format(shop, tmp_path):
    root, checkpoint, datasets = shop
    assert every_user(shop, tmp_path / "recs.parquet", "--block-users", "64", "-k", "5") == 0
    table = pl.read_parquet(tmp_path / "recs.parquet")  # the folder of parts, as one table
    assert table.columns == ["user", "rank", "item", "score", "probability", "name"]
    assert table.height == 5 * USERS and table["user"].n_unique() == USERS
    recommender = Recommender.from_checkpoint(checkpoint, device="cpu", datasets_dir=datasets)
    split = recommender.split("test")
    for line in (1, 2, 77, 300, USERS):
        user = recommender.dataset_user("test", line)["user"]
        history, _ = recommender.user_history(split, line)
        expected = recommender.recommend(history, 5).items
        rows = table.filter(pl.col("user") == user).sort("rank").to_dicts()
        assert [(r["rank"], r["item"], r["name"]) for r in rows] == \
            [(e["rank"], e["item"], e["name"]) for e in expected]
        assert [r["score"] for r in rows] == pytest.approx([e["score"] for e in expected], abs=1e-5)
        assert [r["probability"] for r in rows] == pytest.approx([e["probability"] for e in expected], abs=1e-5)
    for name in ("recs.csv", "recs.jsonl"):
        assert every_user(shop, tmp_path / name, "--block-users", "64", "-k", "5") == 0
        read = pl.read_csv if name.endswith(".csv") else pl.read_ndjson
        other = read(tmp_path / name, schema=table.schema)
        assert other["item"].to_list() == table["item"].to_list()
        assert other["user"].to_list() == table["user"].to_list()
        assert other["score"].to_list() == pytest.approx(table["score"].to_list(), abs=1e-6)
    assert not list(tmp_path.glob(".*"))  # no work folder left behind
    assert every_user(shop, tmp_path / "recs.parquet", "--force", "-k", "2") == 0  # a folder replaced whole
    assert pl.read_parquet(tmp_path / "recs.parquet").height == 2 * USERS


def test_full_history_users_file_and_splits(shop, tmp_path):
    root, checkpoint, datasets = shop
    (tmp_path / "vip.txt").write_text("C00003\n\nC00100\n")
    assert every_user(shop, tmp_path / "vip.jsonl", "--users", str(tmp_path / "vip.txt"), "--split", "full",
                      "-k", "3") == 0
    table = pl.read_ndjson(tmp_path / "vip.jsonl")
    assert sorted(set(table["user"])) == ["C00003", "C00100"]
    recommender = Recommender.from_checkpoint(checkpoint, device="cpu", datasets_dir=datasets)
    expected = recommender.recommend(recommender.known_history("C00100"), 3).items  # with the held-out item
    assert table.filter(pl.col("user") == "C00100")["item"].to_list() == [e["item"] for e in expected]
    assert every_user(shop, tmp_path / "train.csv", "--split", "train") == 0
    assert pl.read_csv(tmp_path / "train.csv")["user"].n_unique() == USERS


def test_an_interrupted_job_resumes_without_duplicates_or_gaps(shop, tmp_path):
    root, checkpoint, datasets = shop
    assert every_user(shop, tmp_path / "whole.parquet", "--block-users", "1") == 0
    command = [sys.executable, "-m", "gsasrec", "recommend", "--checkpoint", str(checkpoint), "--datasets-dir",
               str(datasets), "--all", "--output", str(tmp_path / "cut.parquet"), "--block-users", "1",
               "--no-progress"]
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    parts = tmp_path / ".cut.parquet.job" / "parts"
    while job.poll() is None and len(list(parts.glob("part-*"))) < 20:
        time.sleep(0.01)
    job.send_signal(signal.SIGTERM)
    output, _ = job.communicate(timeout=120)
    assert job.returncode == 130, output
    assert "run the same command again to continue" in output
    written = len(list(parts.glob("part-*")))
    assert 20 <= written < USERS and not (tmp_path / "cut.parquet").exists()
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{USERS - written} blocks written, {written} kept from an earlier run" in resumed.stdout
    assert pl.read_parquet(tmp_path / "cut.parquet").equals(pl.read_parquet(tmp_path / "whole.parquet"))


def test_an_unfinished_job_for_an_edited_users_file_is_refused(shop, tmp_path, capsys):
    root, checkpoint, datasets = shop
    users = tmp_path / "users.txt"
    users.write_text("".join(f"C{u:05d}\n" for u in range(0, USERS, 2)))
    command = [sys.executable, "-m", "gsasrec", "recommend", "--checkpoint", str(checkpoint), "--datasets-dir",
               str(datasets), "--all", "--output", str(tmp_path / "some.csv"), "--block-users", "1", "--users",
               str(users), "--no-progress"]
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    while job.poll() is None and len(list((tmp_path / ".some.csv.job" / "parts").glob("part-*"))) < 5:
        time.sleep(0.01)
    job.send_signal(signal.SIGTERM)
    assert job.wait(timeout=120) == 130
    users.write_text("C00001\n")  # the same file, other users: another job
    assert main(command[3:]) == 2
    assert "holds an unfinished job with other settings (users_digest differs)" in capsys.readouterr().err


def test_sharded_output_equals_unsharded(shop, tmp_path):
    assert every_user(shop, tmp_path / "one.csv", "--block-users", "100") == 0
    assert every_user(shop, tmp_path / "two.csv", "--block-users", "100", "--nproc", "2") == 0
    assert (tmp_path / "two.csv").read_text() == (tmp_path / "one.csv").read_text()


def test_bad_requests_are_one_line_errors(shop, tmp_path, capsys):
    root, checkpoint, datasets = shop
    (tmp_path / "who.txt").write_text("C00001\nnobody\n")
    cases = [
        (["--output", str(tmp_path / "r.txt")], "the name must end in .parquet, .csv, .jsonl"),
        (["--users", str(tmp_path / "who.txt"), "--output", str(tmp_path / "r.csv")],
         f"{tmp_path / 'who.txt'}:2: user 'nobody' is not a user of the dataset"),
    ]
    for extra, message in cases:
        assert main(["recommend", "--checkpoint", str(checkpoint), "--datasets-dir", str(datasets), "--all",
                     *extra]) == 2
        assert message in capsys.readouterr().err
    assert main(["recommend", "--checkpoint", str(checkpoint), "--all"]) == 2
    assert "--all needs --output FILE" in capsys.readouterr().err
    assert main(["recommend", "--checkpoint", str(checkpoint), "--user", "1", "--split", "full"]) == 2
    assert "--split full goes with --all" in capsys.readouterr().err
    assert every_user(shop, tmp_path / "r.csv") == 0
    assert every_user(shop, tmp_path / "r.csv") == 2
    assert "already exists; --force to replace it" in capsys.readouterr().err
    assert every_user(shop, tmp_path / "r.csv", "--force", "-k", "2") == 0
    assert pl.read_csv(tmp_path / "r.csv").height == 2 * USERS
    changed = tmp_path / "changed"
    shutil.copytree(datasets, changed)
    stats = json.loads((changed / "shop" / "dataset_stats.json").read_text())
    (changed / "shop" / "dataset_stats.json").write_text(json.dumps({**stats, "num_users": stats["num_users"] + 1}))
    assert main(["recommend", "--checkpoint", str(checkpoint), "--datasets-dir", str(changed), "--all",
                 "--output", str(tmp_path / "c.csv")]) == 2
    assert "changed since the model was trained" in capsys.readouterr().err

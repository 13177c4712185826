"""`gsasrec data ...`: the ML-1M recipe, user logs in every format, Steam and Gowalla, stats."""

import filecmp
import gzip
import json
import subprocess
import sys

import numpy as np
import pytest

from gsasrec.cli import main
from gsasrec.data.folder import read_dataset, read_id_table

EVENTS = """user,sku,ts
u1,A,2024-01-03
u1,B,2024-01-01
u2,A,2024-01-01
u1,C,2024-01-01
u2,C,2024-01-02
u3,B,2024-01-05
,B,2024-01-05
u2,D,2024-01-02
u3,A,2024-01-01
u3,D,2024-01-07
u4,A,2024-01-01
"""


def run(*args):
    return subprocess.run([sys.executable, "-m", "gsasrec", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_ml1m_recipe_is_byte_identical_to_the_reference_folder(shared_datasets, tmp_path):
    reference = shared_datasets / "ml1m"
    assert main(["data", "ml1m", "--source", str(reference / "ml-1m.txt"), "--extra", str(reference / "extra"),
                 "--datasets-dir", str(tmp_path)]) == 0
    built = tmp_path / "ml1m"
    compared = 0
    for path in reference.rglob("*"):
        if path.is_file() and path.name not in ("README.md", "SHA256SUMS"):
            assert filecmp.cmp(path, built / path.relative_to(reference), shallow=False), path
            compared += 1
    assert compared == 11
    names = (built / "item_names.tsv").read_text().splitlines()
    assert names[0] == "item_id\ttitle" and names[1] == "1\tRaiders of the Lost Ark (1981)"
    assert len(names) == 3417


def test_ml1m_recipe_rejects_a_different_file_and_explains_offline_use(tmp_path):
    fake = tmp_path / "ml-1m.txt"
    fake.write_text("1 1\n1 2\n")
    result = run("data", "ml1m", "--source", fake, "--datasets-dir", tmp_path / "d")
    assert result.returncode == 2 and "SHA-256 is" in result.stderr and "Traceback" not in result.stderr
    result = run("data", "ml1m", "--source", "http://127.0.0.1:9/ml-1m_sas.txt", "--datasets-dir", tmp_path / "d")
    assert result.returncode == 2
    assert "gsasrec data ml1m --source /path/to/ml-1m.txt" in result.stderr
    assert not (tmp_path / "d" / "ml1m").exists()


def test_train_builds_ml1m_when_missing(shared_datasets, tmp_path):
    downloads = tmp_path / "datasets" / ".downloads"
    downloads.mkdir(parents=True)
    # A verified copy in the download cache stands in for the network.
    (downloads / "ml-1m_sas.txt").write_bytes((shared_datasets / "ml1m" / "ml-1m.txt").read_bytes())
    config = tmp_path / "c.py"
    config.write_text("from config import GSASRecExperimentConfig\nconfig = GSASRecExperimentConfig("
                      "dataset_name='ml1m', sequence_length=8, embedding_dim=8, num_heads=1, num_blocks=1,"
                      " negs_per_pos=2)\n")
    assert main(["train", "--config", str(config), "--datasets-dir", str(tmp_path / "datasets"),
                 "--max-steps", "1", "--output-dir", str(tmp_path / "run")]) == 0
    built = tmp_path / "datasets" / "ml1m" / "train" / "input.txt"
    assert built.read_bytes() == (shared_datasets / "ml1m" / "train" / "input.txt").read_bytes()


def write_events(tmp_path, fmt):
    import polars as pl

    frame = pl.read_csv(EVENTS.encode(), schema_overrides={"user": pl.Utf8})
    path = tmp_path / f"events.{fmt}"
    if fmt == "csv":
        path.write_text(EVENTS)
    elif fmt == "tsv":
        frame.write_csv(path, separator="\t")
    elif fmt == "parquet":
        frame.write_parquet(path)
    else:
        frame.write_ndjson(path)
    return path


@pytest.mark.parametrize("fmt", ["csv", "tsv", "parquet", "jsonl"])
def test_import_every_format(tmp_path, fmt):
    path = write_events(tmp_path, fmt)
    assert main(["data", "import", "--interactions", str(path), "--name", "shop", "--user-col", "user",
                 "--item-col", "sku", "--time-col", "ts", "--val-users", "2",
                 "--datasets-dir", str(tmp_path / "d")]) == 0
    folder = tmp_path / "d" / "shop"
    dataset = read_dataset("shop", tmp_path / "d")
    # Items numbered by first appearance: A=1 B=2 C=3 D=4; users u1..u3 (u4 has one event: skipped,
    # the row without a user dropped). Each user's events in time order, ties in file order.
    assert read_id_table(folder / "item_ids.tsv") == ["A", "B", "C", "D"]
    assert read_id_table(folder / "user_ids.tsv") == ["u1", "u2", "u3"]
    full = [np.append(dataset.test.inputs[u], dataset.test.targets[u]).tolist() for u in range(3)]
    assert full == [[2, 3, 1], [1, 3, 4], [1, 2, 4]]
    stats = json.loads((folder / "dataset_stats.json").read_text())
    assert stats["num_interactions"] == 9
    assert stats["import"]["single_event_users_skipped"] == 1 and stats["import"]["missing_ids_dropped"] == 1
    assert stats["import"]["time_col"] == "ts" and stats["import"]["seed"] == 42
    assert len(dataset.val.inputs) == 2


def test_without_time_column_file_order_is_time_order(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text("user_id,item_id\n7,x\n7,y\n8,y\n7,z\n8,x\n")
    assert main(["data", "import", "--interactions", str(path), "--name", "n", "--datasets-dir",
                 str(tmp_path / "d"), "--val-users", "1"]) == 0
    dataset = read_dataset("n", tmp_path / "d")
    assert dataset.test.inputs[0].tolist() == [1, 2] and dataset.test.targets.tolist() == [3, 1]


def test_k_core_repeats_filters_until_stable(tmp_path):
    # min 2 events per item, 3 per user. One pass: y is rare -> c keeps 2 events -> c is dropped.
    # That leaves x with one event (d's), so the k-core goes on: x dropped -> d too short -> dropped.
    events = {"a": "pqr", "b": "pqr", "c": "rxy", "d": "xpq"}
    rows = ["user_id,item_id"] + [f"{user},{item}" for user, items in events.items() for item in items]
    path = tmp_path / "e.csv"
    path.write_text("\n".join(rows) + "\n")
    args = ["data", "import", "--interactions", str(path), "--datasets-dir", str(tmp_path / "d"),
            "--min-item-interactions", "2", "--min-user-interactions", "3"]
    assert main(args + ["--name", "once"]) == 0
    assert main(args + ["--name", "core", "--k-core"]) == 0
    once = json.loads((tmp_path / "d" / "once" / "dataset_stats.json").read_text())
    core = json.loads((tmp_path / "d" / "core" / "dataset_stats.json").read_text())
    assert (once["num_users"], once["num_interactions"]) == (3, 9)
    assert (core["num_users"], core["num_interactions"], core["num_items"]) == (2, 6, 3)


def test_item_names_are_kept(tmp_path):
    names = tmp_path / "names.csv"
    names.write_text("sku,title\nA,Apple\nB,Banana\nZ,Zucchini\n")
    path = write_events(tmp_path, "csv")
    assert main(["data", "import", "--interactions", str(path), "--name", "shop", "--user-col", "user",
                 "--item-col", "sku", "--item-names", str(names), "--datasets-dir", str(tmp_path / "d")]) == 0
    lines = (tmp_path / "d" / "shop" / "item_names.tsv").read_text().splitlines()
    assert lines == ["item_id\ttitle", "1\tApple", "2\tBanana"]


@pytest.mark.parametrize("content, extra, words", [
    ("user,sku\nu1,A\n", ["--item-col", "nope"], "missing column"),
    ("user,sku,ts\nu1,A,yesterday\n", ["--time-col", "ts"],
     "column 'ts', data row 1: 'yesterday' is not a timestamp (expected an ISO 8601 date"),
    ("user,sku,ts\nu1,A,2024-01-01\n", ["--time-col", "ts", "--split", "time"], "needs --test-start"),
    ("user,sku\nu1,A\n", ["--split", "time", "--test-start", "2024-01-01"], "needs the time column"),
    ("user,sku,ts\nu1,A,1\n", ["--time-col", "ts", "--split", "time", "--test-start", "soon"],
     "--test-start: cannot read 'soon' as a time"),
    ("user,sku,ts\nu1,A,1\n", ["--time-col", "ts", "--split", "time", "--test-start", "2024-01-01",
                                "--val-start", "2024-02-01"], "must come before --test-start"),
    ("user,sku\nu1,A\n", ["--test-start", "2024-01-01"], "go with --split time"),
    ("", [], "the file is empty"),
    ("user,sku\nu1,A\nu2,B\n", [], "no interactions left"),
    ("user,sku\nu1,A\nu1,B\n", ["--min-item-interactions", "5"], "no interactions left"),
])
def test_bad_input_is_a_one_line_error(tmp_path, content, extra, words):
    path = tmp_path / "e.csv"
    path.write_text(content)
    args = ["data", "import", "--interactions", path, "--name", "x", "--datasets-dir", tmp_path / "d",
            "--user-col", "user", "--item-col", "sku", *extra]
    if "--item-col" in extra:
        args = args[:-4] + extra  # the later --item-col wins; keep the command readable
    result = run(*args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and words in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "d" / "x").exists()


def test_existing_folder_needs_force(tmp_path):
    path = write_events(tmp_path, "csv")
    args = ["data", "import", "--interactions", str(path), "--name", "shop", "--user-col", "user",
            "--item-col", "sku", "--datasets-dir", str(tmp_path / "d")]
    assert main(args) == 0
    before = (tmp_path / "d" / "shop" / "train" / "input.txt").read_text()
    assert main(args + ["--val-users", "1"]) == 2
    assert (tmp_path / "d" / "shop" / "train" / "input.txt").read_text() == before
    assert main(args + ["--val-users", "1", "--force"]) == 0
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["shop"]


STEAM_LINE = ("{u'username': u'%s', u'hours': 0.1, u'products': 41, u'product_id': u'%s', u'page_order': 0, "
              "u'date': u'%s', u'text': u'it\\'s fine, \"really\"', u'early_access': False, u'page': 1}\n")


def test_steam_recipe_from_raw_reviews(tmp_path):
    lines = []
    for user in range(6):  # six users, each reviewing the same six games on consecutive days
        for game in range(6):
            lines.append(STEAM_LINE % (f"player {user}", f"{700 + game}", f"2017-12-{10 + (game + user) % 6:02d}"))
    lines.append(STEAM_LINE % ("loner", "999", "2017-12-01"))  # rare user and item: filtered
    lines.append("{u'username': u'broken line'}\n")
    source = tmp_path / "steam_reviews.json.gz"
    with gzip.open(source, "wt") as file:
        file.writelines(lines)
    assert main(["data", "steam", "--source", str(source), "--datasets-dir", str(tmp_path / "d"),
                 "--val-users", "2"]) == 0
    dataset = read_dataset("steam", tmp_path / "d")
    assert dataset.stats["num_users"] == 6 and dataset.num_items == 6 and dataset.stats["num_interactions"] == 36
    games = read_id_table(tmp_path / "d" / "steam" / "item_ids.tsv")
    # player 1's reviews ordered by date: game 5 (day 10), then 0, 1, 2, 3, 4.
    full = np.append(dataset.test.inputs[1], dataset.test.targets[1])
    assert [games[i - 1] for i in full] == ["705", "700", "701", "702", "703", "704"]


def test_gowalla_recipe_from_raw_checkins(tmp_path):
    rows = []
    for user in range(4):
        for step in range(6 if user < 3 else 3):  # user 3 has 3 check-ins: filtered (< 5)
            rows.append(f"{user}\t2010-10-{19 - step:02d}T23:55:27Z\t30.2\t-97.7\t{100 + step * (user + 1)}")
    source = tmp_path / "loc-gowalla_totalCheckins.txt.gz"
    with gzip.open(source, "wt") as file:
        file.write("\n".join(rows) + "\n")
    assert main(["data", "gowalla", "--source", str(source), "--datasets-dir", str(tmp_path / "d"),
                 "--val-users", "1"]) == 0
    dataset = read_dataset("gowalla", tmp_path / "d")
    assert dataset.stats["num_users"] == 3 and dataset.stats["num_interactions"] == 18
    places = read_id_table(tmp_path / "d" / "gowalla" / "item_ids.tsv")
    full = np.append(dataset.test.inputs[0], dataset.test.targets[0])  # file lists newest first
    assert [places[i - 1] for i in full] == ["105", "104", "103", "102", "101", "100"]


def test_gowalla_bad_time_is_an_error(tmp_path):
    source = tmp_path / "g.txt"
    source.write_text("0\tlast tuesday\t1\t2\t3\n")
    result = run("data", "gowalla", "--source", source, "--datasets-dir", tmp_path / "d")
    assert result.returncode == 2 and "line 1: cannot parse check-in time" in result.stderr


def test_stats_command(tmp_path, capsys):
    path = write_events(tmp_path, "csv")
    main(["data", "import", "--interactions", str(path), "--name", "shop", "--user-col", "user",
          "--item-col", "sku", "--datasets-dir", str(tmp_path / "d")])
    capsys.readouterr()
    histogram = tmp_path / "h.png"
    assert main(["data", "stats", "shop", "--datasets-dir", str(tmp_path / "d"), "--json",
                 "--histogram", str(histogram)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["users"], summary["items"], summary["interactions"]) == (3, 4, 9)
    assert summary["sequence_length"]["p50"] == 3 and summary["sequence_length"]["max"] == 3
    assert histogram.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

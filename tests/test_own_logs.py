"""What real logs hold: mixed timestamp forms, missing-value markers, bad rows, ids with spaces; a split at
a date; and users addressed by their own ids."""

import filecmp
import json
import subprocess
import sys
from datetime import datetime, timezone

import numpy as np
import polars as pl
import pytest

from gsasrec.cli import main
from gsasrec.data.folder import SPLIT_USERS, USER_IDS, Sequences, read_dataset, read_id_table
from gsasrec.data.split import time_split
from gsasrec.data.times import parse_time_column


def seconds(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=datetime.fromisoformat(text).tzinfo or timezone.utc).timestamp()


def test_every_timestamp_form_in_one_column():
    values = ["2024-05-02", "2024-05-02 10:00", "2024-05-02T10:00:00Z", "2024-05-02T10:00:00.250+02:00",
              "2024-05-02T10:00:00+0200", "2024/05/02", "1714557600", "1714557600000", " N/A ", "null", "",
              "NaN", None, "yesterday"]
    parsed = parse_time_column(pl.Series(values, dtype=pl.Utf8))
    expected = [seconds("2024-05-02"), seconds("2024-05-02T10:00"), seconds("2024-05-02T10:00:00+00:00"),
                seconds("2024-05-02T10:00:00.250+02:00"), seconds("2024-05-02T10:00:00+02:00"), seconds("2024-05-02"),
                1714557600.0, 1714557600.0] + [None] * 6
    assert parsed.seconds.to_list()[:8] == pytest.approx(expected[:8])
    assert parsed.seconds.to_list()[8:] == [None] * 6
    assert parsed.bad_rows == [13]  # missing markers are missing, not bad
    assert parsed.kinds == {"ISO dates/times": 6, "epoch seconds": 1, "epoch milliseconds": 1}
    numbers = parse_time_column(pl.Series([5.0, 2e12, float("nan")]))
    assert numbers.seconds.to_list() == [5.0, 2e9, None] and numbers.bad_rows == []
    assert numbers.kinds == {"epoch seconds": 1, "epoch milliseconds": 1}  # NaN is missing, not milliseconds


GARDEN = """customer,product,when
 cust_01 ,rake,2024-05-01
cust_01,hose,2024-05-02T09:00:00Z
cust_01,seeds,1714730400
cust_01,gloves,2024-05-04T10:00:00+02:00
cust_02,rake,N/A
cust_02,hose,2024-05-01
cust_02,seeds,2024-05-03 12:00
cust_02,pots,someday
cust_02,gloves,1714989600000
N/A,rake,2024-05-01
cust_03,rake,2024-05-01
cust_03,hose,2024-05-02
cust_03,pots,2024-05-03
"""


def import_garden(tmp_path, *extra, capsys=None):
    log = tmp_path / "garden.csv"
    log.write_text(GARDEN)
    return main(["data", "import", "--interactions", str(log), "--name", "garden", "--datasets-dir",
                 str(tmp_path / "d"), "--user-col", "customer", "--item-col", "product", "--time-col", "when",
                 "--val-users", "1", *extra])


def test_a_bad_timestamp_fails_naming_its_row_or_is_dropped_and_counted(tmp_path, capsys):
    assert import_garden(tmp_path) == 2
    err = capsys.readouterr().err
    assert "column 'when', data row 8: 'someday' is not a timestamp" in err and "--on-bad-rows drop" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "d" / "garden").exists()
    assert import_garden(tmp_path, "--on-bad-rows", "drop") == 0
    out = capsys.readouterr().out.splitlines()
    assert "1 bad rows dropped (--on-bad-rows drop)" in out
    assert "1 rows with a bad timestamp dropped (data row 8: 'someday')" in out
    assert "1 user ids had surrounding whitespace: trimmed" in out
    assert "1 rows with a missing id dropped" in out and "1 rows with a missing timestamp dropped" in out
    assert out[-2] == "3 users, 5 items, 10 interactions" and out[-1].startswith("wrote ")  # summary last
    folder = tmp_path / "d" / "garden"
    users = read_id_table(folder / USER_IDS)
    assert users == ["cust_01", "cust_02", "cust_03"]  # ' cust_01 ' is cust_01, not a new user
    dataset = read_dataset("garden", tmp_path / "d")
    items = read_id_table(folder / "item_ids.tsv")
    # cust_02: hose (05-01), seeds (05-03 12:00), gloves (epoch ms: 2024-05-06 10:00 UTC)
    history = [items[i - 1] for i in dataset.test.inputs[1].tolist()] + [items[dataset.test.targets[1] - 1]]
    assert history == ["hose", "seeds", "gloves"]


def test_time_split_folders_by_hand(tmp_path, capsys):
    # In UTC: cust_01 rake 05-01, hose 05-02 09:00, seeds 05-03 10:00, gloves 05-04 08:00; cust_02 hose
    # 05-01, seeds 05-03 12:00, gloves 05-06 10:00; cust_03 rake 05-01, hose 05-02, pots 05-03.
    assert import_garden(tmp_path, "--on-bad-rows", "drop", "--split", "time", "--test-start", "2024-05-04",
                         "--val-start", "2024-05-02T12:00:00Z", "--val-users", "5") == 0
    out = capsys.readouterr().out
    assert "time split: 2 test users, 3 validation users, 4 training events of 2 users" in out
    folder = tmp_path / "d" / "garden"
    dataset = read_dataset("garden", tmp_path / "d")
    items = read_id_table(folder / "item_ids.tsv")
    name = lambda ids: [items[i - 1] for i in ids]  # noqa: E731

    def held_out(split):
        lines = (folder / split.name / SPLIT_USERS).read_text().split()
        data = getattr(dataset, split.name)
        return {u: (name(data.inputs[line].tolist()), items[data.targets[line] - 1]) for line, u in enumerate(lines)}

    # test: users active from 05-04 (cust_03 is not), on their first event from then, with all before it
    assert held_out(folder / "test") == {"1": (["rake", "hose", "seeds"], "gloves"), "2": (["hose", "seeds"], "gloves")}
    assert held_out(folder / "val") == {"1": (["rake", "hose"], "seeds"), "2": (["hose"], "seeds"),
                                        "3": (["rake", "hose"], "pots")}
    # training: only events before --val-start; cust_02's single one trains nothing
    assert [name(dataset.train[u].tolist()) for u in range(len(dataset.train))] == [["rake", "hose"]] * 2


def test_time_split_keeps_every_event_after_the_cut_out_of_training():
    rng = np.random.default_rng(0)
    lengths = rng.integers(2, 30, size=200)
    sequences = Sequences.from_lists([rng.integers(1, 50, size=n).tolist() for n in lengths])
    times = np.concatenate([np.sort(rng.uniform(0, 100, size=n)) for n in lengths])
    train, val, test, split = time_split(sequences, times, test_start=70.0, val_start=None, val_users=20, seed=0)
    starts = sequences.offsets[:-1]
    for line, user in enumerate(split["users"]["test"] - 1):
        user_times = times[starts[user]:starts[user] + lengths[user]]
        kept = int((user_times < 70).sum())
        assert test.inputs[line].tolist() == sequences[user][:kept].tolist()
        assert test.targets[line] == sequences[user][kept] and user_times[kept] >= 70
    assert len(test.targets) == sum(1 for n, u in zip(lengths, range(200))
                                    if 0 < (times[starts[u]:starts[u] + n] < 70).sum() < n)
    # training events are all before the cut, and no validation target is trained on
    trained_total = sum(int((times[starts[u]:starts[u] + lengths[u]] < 70).sum()) for u in range(200))
    assert int(train.lengths.sum()) <= trained_total - len(val.targets)
    for line, user in enumerate(split["users"]["val"] - 1):
        assert val.targets[line] == sequences[user][len(val.inputs[line])]
        assert times[starts[user] + len(val.inputs[line])] < 70


def test_recommend_takes_the_users_own_id(tmp_path, capsys):
    log = tmp_path / "log.csv"
    rows = [f"C{u:05d},i{(u + k) % 12},{k}" for u in range(40) for k in range(6)]
    log.write_text("customer,item,t\n" + "\n".join(rows) + "\n")
    datasets = tmp_path / "d"
    assert main(["data", "import", "--interactions", str(log), "--name", "shop", "--datasets-dir", str(datasets),
                 "--user-col", "customer", "--item-col", "item", "--time-col", "t", "--val-users", "4"]) == 0
    assert main(["train", "--dataset", "shop", "--datasets-dir", str(datasets), "--max-steps", "3",
                 "--set", "embedding_dim=16", "--output-dir", str(tmp_path / "run"), "--no-progress",
                 "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["recommend", "--checkpoint", str(tmp_path / "run" / "best.pt"), "--datasets-dir", str(datasets),
                 "--user", "C00007", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert result["history"] == [f"i{(7 + k) % 12}" for k in range(5)]
    assert main(["recommend", "--checkpoint", str(tmp_path / "run" / "best.pt"), "--datasets-dir", str(datasets),
                 "--user", "C99999"]) == 2
    assert "user 'C99999' is not in" in capsys.readouterr().err
    # A number that is no user id is the line number, as on datasets without user_ids.tsv.
    assert main(["recommend", "--checkpoint", str(tmp_path / "run" / "best.pt"), "--datasets-dir", str(datasets),
                 "--user", "8", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["history"] == [f"i{(7 + k) % 12}" for k in range(5)]
    # The HTTP API takes the user's id too: the recommendations for everything the dataset holds of them.
    from fastapi.testclient import TestClient

    from gsasrec.recommender import Recommender
    from gsasrec.serve import create_app

    recommender = Recommender.from_checkpoint(tmp_path / "run" / "best.pt", device="cpu")
    whole = [f"i{(7 + k) % 12}" for k in range(6)]
    assert recommender.known_history("C00007") == whole
    with TestClient(create_app(recommender)) as client:
        by_user = client.post("/recommend", json={"user": "C00007", "k": 3})
        by_history = client.post("/recommend", json={"history": whole, "k": 3})
        assert by_user.status_code == 200 and by_user.json() == by_history.json()
        assert client.post("/recommend", json={"user": "C99999"}).status_code == 422
        assert client.post("/recommend", json={"user": "C00007", "history": whole}).status_code == 422
        assert client.post("/recommend", json={"k": 3}).status_code == 422


def test_data_stats_draws_a_histogram_only_when_asked(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("user_id,item_id\n" + "".join(f"u{u},i{k}\n" for u in range(10) for k in range(4)))
    assert main(["data", "import", "--interactions", str(log), "--name", "s", "--datasets-dir",
                 str(tmp_path / "d"), "--val-users", "2"]) == 0
    result = subprocess.run([sys.executable, "-m", "gsasrec", "data", "stats", "s", "--datasets-dir",
                             str(tmp_path / "d")], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0 and "users" in result.stdout
    assert not list(tmp_path.glob("*.png"))


STREAMED_LOG = """u,i,t
 a ,x,2024-01-01
a,y,2024-01-02T10:00:00Z
a,z,1704200000
b,x,N/A
b,y,2024-01-01
b,z,2024-01-01
b,w,bad
c,x,2024-01-05
c,q,2024-01-03
c,z,1704300000000
d,x,2024-01-01
,y,2024-01-02
e,x,2024-01-01
e,y,2024-01-09
e,w,2024-01-04
"f\tg",x,2024-01-01
e,"y\ty",2024-01-05
"""


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("extra", [[], ["--split", "time", "--test-start", "2024-01-03"],
                                   ["--min-item-interactions", "2", "--k-core"]])
def test_streaming_import_writes_the_same_folder(tmp_path, fmt, extra, capsys):
    log = tmp_path / f"log.{fmt}"
    if fmt == "csv":
        log.write_text(STREAMED_LOG)
    else:
        import io

        pl.read_csv(io.StringIO(STREAMED_LOG), infer_schema=False).write_parquet(log)
    reports = []
    for name, streaming in (("memory", []), ("streamed", ["--streaming"])):
        assert main(["data", "import", "--interactions", str(log), "--name", name, "--datasets-dir",
                     str(tmp_path / "d"), "--user-col", "u", "--item-col", "i", "--time-col", "t",
                     "--on-bad-rows", "drop", "--val-users", "2", *extra, *streaming]) == 0
        reports.append(capsys.readouterr().out.splitlines()[:-1])  # all but "wrote <folder>"
    assert reports[0] == reports[1]
    compared = filecmp.dircmp(tmp_path / "d" / "memory", tmp_path / "d" / "streamed")
    assert compared.diff_files == [] and compared.left_only == [] and compared.right_only == []
    for sub in ("train", "val", "test"):
        memory, streamed = tmp_path / "d" / "memory" / sub, tmp_path / "d" / "streamed" / sub
        names = [p.name for p in memory.iterdir()]
        assert filecmp.cmpfiles(memory, streamed, names, shallow=False)[1:] == ([], [])
    stats = [json.loads((tmp_path / "d" / n / "dataset_stats.json").read_text()) for n in ("memory", "streamed")]
    assert stats[0]["num_interactions"] == stats[1]["num_interactions"]


def test_streaming_refuses_a_bad_timestamp_like_the_in_memory_import(tmp_path, capsys):
    log = tmp_path / "log.csv"
    log.write_text(STREAMED_LOG)
    assert main(["data", "import", "--interactions", str(log), "--name", "s", "--datasets-dir", str(tmp_path / "d"),
                 "--user-col", "u", "--item-col", "i", "--time-col", "t", "--streaming"]) == 2
    assert "column 't', data row 7: 'bad' is not a timestamp" in capsys.readouterr().err

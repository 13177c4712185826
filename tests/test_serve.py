"""The HTTP service, started for real on a free loopback port and called over HTTP."""

import json
import re
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from service import call, running_service


def rss_kb(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def server(pattern_run):
    _, _, run_dir = pattern_run
    with running_service("--checkpoint", str(run_dir / "best.pt"), "--max-k", "20", "--max-history", "500") as served:
        yield served


def fetch_text(url: str) -> tuple[str, str]:
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
        return response.headers["content-type"], response.read().decode(errors="replace")


def test_api_pages_are_swagger_and_redoc_served_offline(server):
    base, _ = server
    for page_path in ("/docs", "/redoc"):
        content_type, page = fetch_text(base + page_path)
        assert content_type.startswith("text/html")
        # Every script, style and icon the page loads comes from this server, and is there.
        references = re.findall(r"""(?:src|href)=["']([^"']+)["']|_url: ?["']([^"']+)["']|url: ?'([^']+)'""", page)
        loaded = [next(part for part in found if part) for found in references]
        assert loaded and not [url for url in loaded if "//" in url], (page_path, loaded)
        for url in loaded:
            fetch_text(base + url)
    assert "SwaggerUIBundle" in fetch_text(base + "/docs")[1]


def test_openapi_examples_use_the_served_ids_and_are_answered(server):
    base, _ = server
    schema = call(base, "/openapi.json")[1]
    components = schema["components"]["schemas"]
    recommend_example = components["RecommendRequest"]["examples"][0]
    assert recommend_example["history"] == [1, 2, 3]  # this dataset's first items
    assert call(base, "/recommend", recommend_example)[0] == 200
    assert call(base, "/recommend/batch", components["BatchRequest"]["examples"][0])[0] == 200
    described = components["RecommendRequest"]["properties"]
    assert {"k", "exclude_seen", "model", "target"} <= described.keys()
    assert all(described[name].get("description") for name in ("k", "exclude_seen", "model", "target"))
    assert all(field.get("description") for field in components["Item"]["properties"].values())
    item_parameter = schema["paths"]["/items/{item_id}"]["get"]["parameters"][0]
    assert call(base, "/items/" + item_parameter["examples"][0])[0] == 200 if "examples" in item_parameter \
        else call(base, "/items/" + item_parameter["schema"]["examples"][0])[0] == 200


def test_recommend_planted_pattern(server):
    base, _ = server
    status, body = call(base, "/recommend", {"history": [10, 11, "12", "unknown-item"], "k": 3})
    assert status == 200
    assert body["items"][0]["item"] == 13 and len(body["items"]) == 3
    assert body["unknown_items"] == ["unknown-item"]
    assert 0 < body["items"][0]["probability"] < 1
    status, body = call(base, "/recommend/batch", {"histories": [[10, 11, 12], [30, 31, 32, 33, 34, 35, 36]], "k": 1})
    assert status == 200 and [r["items"][0]["item"] for r in body["results"]] == [13, 37]


def test_concurrent_requests_are_all_answered_correctly(server):
    base, _ = server
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _: call(base, "/recommend", {"history": [10, 11, 12], "k": 1}), range(64)))
    assert all(status == 200 and body["items"][0]["item"] == 13 for status, body in answers)


@pytest.mark.parametrize("body, raw, status", [
    ({"history": []}, None, 422),
    ({"history": ["nope", 999]}, None, 422),
    ({"history": "1 2 3"}, None, 422),
    ({"history": [1.5, 2]}, None, 422),
    ({"history": [1, 2], "k": 21}, None, 422),
    ({"history": [1, 2], "k": 0}, None, 422),
    ({"history": [1, 2], "k": True}, None, 422),
    ({"history": [1, 2], "k": "5"}, None, 422),
    ({"history": [1, 2], "k": 5.0}, None, 422),
    ({"history": [1, 2], "exclude_seen": "false"}, None, 422),
    ({"histories": [[1, 2]], "k": "3"}, None, 422),
    ({"history": [1] * 501}, None, 422),
    ({"histories": [[1], ["nope"]]}, None, 422),
    (None, b'{"history": [1, 2', 422),
    (None, b"not json at all", 422),
], ids=["empty", "all-unknown", "string", "float", "k-too-big", "k-zero", "k-true", "k-text", "k-float",
        "exclude-seen-text", "batch-k-text", "history-too-long", "batch-unknown", "truncated-json", "not-json"])
def test_bad_requests_are_refused_cleanly(server, body, raw, status):
    base, _ = server
    path = "/recommend/batch" if body and "histories" in body else "/recommend"
    got, answer = call(base, path, body, raw)
    assert got == status, answer
    assert "detail" in answer


def test_oversized_bodies_get_413(server):
    import http.client
    from urllib.parse import urlparse

    address = urlparse(server[0])
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    connection.putrequest("POST", "/recommend")
    connection.putheader("content-type", "application/json")
    connection.putheader("content-length", str(5 << 20))  # declared 5 MB, over the 1 MB limit
    connection.endheaders()
    connection.send(b'{"history": [1, 2, 3')  # the server answers before the rest arrives
    response = connection.getresponse()
    assert response.status == 413 and json.loads(response.read())["detail"] == "request body too large"
    connection.close()


def test_a_thousand_bad_requests_do_not_crash_or_grow_the_server(server):
    base, process = server
    call(base, "/recommend", {"history": [1, 2, 3]})
    before = rss_kb(process.pid)
    bad = [b'{"history": [1, 2', b'{"history": "x"}', b'{"history": [], "k": 5}', b'{"k": 99999}',
           json.dumps({"history": ["nope"] * 400}).encode()]
    for index in range(1000):
        assert call(base, "/recommend", raw=bad[index % len(bad)])[0] == 422
    assert process.poll() is None
    assert call(base, "/recommend", {"history": [10, 11, 12], "k": 1})[1]["items"][0]["item"] == 13
    grown_mb = (rss_kb(process.pid) - before) / 1024
    assert grown_mb < 30, f"server grew by {grown_mb:.1f} MB"


def test_a_lone_surrogate_in_a_history_is_a_422_and_the_server_goes_on(server):
    base, _ = server
    for path, body in (("/recommend", b'{"history": [10, 11, "\\ud800"], "k": 3}'),
                       ("/recommend/batch", b'{"histories": [[10, 11, "\\ud800"]], "k": 3}')):
        status, detail = call(base, path, raw=body)
        assert status == 422 and "Unicode" in json.dumps(detail)
    status, result = call(base, "/recommend", {"history": [10, 11, 12], "k": 1})
    assert status == 200 and result["items"][0]["item"] == 13


def test_an_oversized_chunked_body_gets_413(server):
    import http.client
    from urllib.parse import urlparse

    address = urlparse(server[0])
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
    chunks = (b'{"history": [' + b"1, " * 200_000 for _ in range(4))  # 2.4 MB, no content-length
    connection.request("POST", "/recommend", body=chunks, encode_chunked=True,
                       headers={"content-type": "application/json", "transfer-encoding": "chunked"})
    response = connection.getresponse()
    assert response.status == 413 and json.loads(response.read())["detail"] == "request body too large"
    connection.close()
    status, result = call(server[0], "/recommend", {"history": [10, 11, 12], "k": 1})
    assert status == 200 and result["items"][0]["item"] == 13


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                    max_leaves=12)
# Bodies near the schema (the right keys, random values) reach the validators and the model; random JSON
# and random bytes test the parsing in front of them.
BODIES = st.one_of(
    st.fixed_dictionaries({"history": JSON}, optional={"k": JSON, "exclude_seen": JSON}).map(json.dumps),
    st.fixed_dictionaries({"history": st.lists(st.integers(-5, 60) | st.text(max_size=3), max_size=6)},
                          optional={"k": st.integers(-3, 200)}).map(json.dumps),
    st.fixed_dictionaries({"histories": JSON}, optional={"k": JSON}).map(json.dumps),
    JSON.map(json.dumps),
    st.binary(max_size=64).map(lambda raw: raw.decode("latin-1")),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(["/recommend", "/recommend/batch"]), body=BODIES)
def test_fuzzed_requests_get_4xx_never_5xx(server, path, body):
    base, process = server
    request = urllib.request.Request(base + path, data=body.encode("utf-8", "surrogatepass"),
                                     headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    assert status < 500, (path, body)
    assert process.poll() is None


def test_the_server_answers_correctly_after_the_fuzzing(server):
    # runs after the fuzz test (file order): the planted pattern is still recommended
    base, _ = server
    status, body = call(base, "/recommend", {"history": [10, 11, 12], "k": 1})
    assert status == 200 and body["items"][0]["item"] == 13


def test_explorer_api_models_search_users_and_target_rank(server):
    base, _ = server
    status, listed = call(base, "/models")
    assert status == 200 and [m["name"] for m in listed["models"]] == ["best"]
    card = listed["models"][0]
    assert card["config"]["dataset_name"] == "cycle" and card["num_items"] == 50 and card["steps"] > 0
    assert card["splits"]["test"] == 400 and card["calibrated"] is False and "command" in card
    # search: the exact id first, then ids that start with the query; bounded and paged
    status, found = call(base, "/items?query=1&limit=3")
    assert status == 200 and found["total"] == 11 and [i["item"] for i in found["items"]] == [1, 10, 11]
    assert [i["item"] for i in call(base, "/items?query=1&limit=3&offset=9")[1]["items"]] == [18, 19]
    for bad in ("query=", "query=1&limit=0", "query=1&limit=101", "query=1&offset=-1", "query=" + "x" * 201, ""):
        assert call(base, "/items?" + bad)[0] == 422, bad
    # a dataset user, and the held-out item's rank among all recommendations
    assert call(base, "/users/test") == (200, {"split": "test", "count": 400})
    status, user = call(base, "/users/test/7")
    assert status == 200 and user["number"] == 7 and user["user"] is None and user["sequence_length"] == 20
    history = [item["item"] for item in user["history"]]
    status, answer = call(base, "/recommend", {"history": history, "k": 3, "target": user["held_out"]["item"]})
    ranks = call(base, "/recommend", {"history": history, "k": 20})[1]["items"]
    expected = next((r["rank"] for r in ranks if r["item"] == user["held_out"]["item"]), None)
    assert status == 200 and answer["target_rank"] is not None
    assert expected is None or answer["target_rank"] == expected
    assert 1 <= call(base, "/users/val/random")[1]["number"] <= 64
    for bad in ("/users/test/0", "/users/test/401", "/users/test/abc", "/users/train/1", "/users/test/-1"):
        assert call(base, bad)[0] == 422, bad
    # the model by name, and an unknown one
    assert call(base, "/recommend", {"history": [1, 2], "model": "best"})[0] == 200
    status, body = call(base, "/recommend", {"history": [1, 2], "model": "nope"})
    assert status == 422 and "unknown model 'nope'; loaded: best" in body["detail"]


def test_page_and_plain_messages(server):
    base, _ = server
    content_type, page = fetch_text(base + "/")
    assert content_type.startswith("text/html") and 'src="explorer/explorer.js"' in page
    request = urllib.request.Request(base + "/recommend", data=b'{"history": [1, 2]}',
                                     headers={"content-type": "text/plain"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 415
    assert "content-type: application/json" in json.loads(refused.value.read())["detail"]
    status, body = call(base, "/recommend", {"history": ["Toy Story (1995)"]})
    assert status == 422 and "'Toy Story (1995)'" in body["detail"] and "/items?query=" in body["detail"]


def test_several_models_with_their_own_ids(pattern_run, tmp_path):
    """The cycle model (ids 1..50) beside one trained on an imported log of string ids, in one service."""
    from gsasrec.cli import main

    root, _, run_dir = pattern_run
    log = tmp_path / "log.csv"
    rows = [(f"u{u}", f"sku-{(u + t) % 30 + 1}", t) for u in range(120) for t in range(8)]
    log.write_text("user,item,time\n" + "".join(f"{u},{i},{t}\n" for u, i, t in rows))
    datasets = tmp_path / "datasets"
    assert main(["data", "import", "--interactions", str(log), "--name", "shop", "--datasets-dir", str(datasets),
                 "--user-col", "user", "--item-col", "item", "--time-col", "time", "--val-users", "20"]) == 0
    assert main(["train", "--dataset", "shop", "--datasets-dir", str(datasets), "--max-steps", "5",
                 "--output-dir", str(tmp_path / "shop_run"), "--device", "cpu", "--no-progress"]) == 0
    with running_service("--checkpoint", f"cycle={run_dir / 'best.pt'}",
                         "--checkpoint", f"shop={tmp_path / 'shop_run' / 'last.pt'}") as (base, _):
        assert [m["name"] for m in call(base, "/models")[1]["models"]] == ["cycle", "shop"]
        assert call(base, "/recommend", {"history": [10, 11, 12], "k": 1})[1]["items"][0]["item"] == 13
        status, body = call(base, "/recommend", {"history": ["sku-3", "sku-4"], "k": 2, "model": "shop"})
        assert status == 200 and all(str(row["item"]).startswith("sku-") for row in body["items"])
        assert call(base, "/recommend", {"history": ["sku-3"], "model": "cycle"})[0] == 422  # not its ids
        assert call(base, "/items/sku-3?model=shop")[1]["item"] == "sku-3"
        assert call(base, "/items/sku-3")[0] == 404  # the first model's catalogue
        assert [i["item"] for i in call(base, "/items?query=sku-1&limit=2&model=shop")[1]["items"]] == \
            ["sku-1", "sku-10"]
        user = call(base, "/users/test/1?model=shop")[1]
        assert user["user"].startswith("u") and str(user["held_out"]["item"]).startswith("sku-")


def test_head_health_and_a_huge_unknown_id_is_not_echoed(server):
    base, _ = server
    with urllib.request.urlopen(urllib.request.Request(base + "/health", method="HEAD"), timeout=30) as response:
        assert response.status == 200
    status, body = call(base, "/items/" + "x" * 100_000)
    assert status == 404 and len(body["detail"]) < 200 and "100,002 characters" in body["detail"]

"""The HTTP service, started for real on a free loopback port and called over HTTP."""

import json
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, path, body=None, raw=None):
    """(status, parsed JSON) of a GET, or a POST of `body` (JSON) or `raw` bytes."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(base + path, data=data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def rss_kb(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def server(pattern_run):
    _, _, run_dir = pattern_run
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "gsasrec", "serve", "--checkpoint", str(run_dir / "best.pt"),
                                "--port", str(port), "--max-k", "20", "--max-history", "500"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            if call(base, "/health")[0] == 200:
                break
        except (urllib.error.URLError, ConnectionError):
            pass
        if time.time() > deadline or process.poll() is not None:
            process.kill()
            raise AssertionError("server did not start")
        time.sleep(0.2)
    yield base, process
    process.terminate()
    process.wait(timeout=30)


def test_health_items_and_docs(server):
    base, _ = server
    status, health = call(base, "/health")
    assert status == 200 and health["status"] == "ok" and health["num_items"] == 50
    assert call(base, "/items/13") == (200, {"internal_id": 13, "item": 13, "name": None})
    assert call(base, "/items/999")[0] == 404
    assert call(base, "/openapi.json")[1]["paths"].keys() >= {"/recommend", "/recommend/batch", "/health"}


def test_docs_page_works_offline_and_its_examples_are_answered(server):
    base, _ = server
    with urllib.request.urlopen(base + "/docs", timeout=30) as response:
        assert response.status == 200 and response.headers["content-type"].startswith("text/html")
        page = response.read().decode()
    # Nothing fetched from elsewhere: every script, style and link is in the page or on this server.
    assert "http://" not in page and "https://" not in page and "cdn" not in page.lower()
    assert 'fetch("openapi.json")' in page
    examples = json.loads(re.search(r"const EXAMPLES = (.*);", page).group(1))
    assert set(examples) == {"post /recommend", "post /recommend/batch", "get /health", "get /items/{item_id}"}
    for operation, example in examples.items():
        method, _ = operation.split(" ", 1)
        status, _ = call(base, example) if method == "get" else call(base, operation.split(" ", 1)[1],
                                                                     raw=example.encode())
        assert status == 200, operation


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
    ({"history": [1] * 501}, None, 422),
    ({"histories": [[1], ["nope"]]}, None, 422),
    (None, b'{"history": [1, 2', 422),
    (None, b"not json at all", 422),
], ids=["empty", "all-unknown", "string", "float", "k-too-big", "k-zero", "history-too-long",
        "batch-unknown", "truncated-json", "not-json"])
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

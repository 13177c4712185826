"""A real `gsasrec serve` process on a free loopback port, for the tests that call it over HTTP."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request


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


@contextlib.contextmanager
def running_service(*arguments: str, timeout: float = 90):
    """(base URL, process) of `gsasrec serve ARGUMENTS --port P`, stopped on exit."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "gsasrec", "serve", *arguments, "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while True:
        try:
            if call(base, "/health")[0] == 200:
                break
        except (urllib.error.URLError, ConnectionError):
            pass
        if time.time() > deadline or process.poll() is not None:
            process.kill()
            raise AssertionError(f"server did not start: {process.stderr.read()[-2000:]}")
        time.sleep(0.2)
    try:
        yield base, process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)

"""docs/walkthrough.md works as written: every bash and python block in it runs, in order, in a fresh
folder, on a smaller log and budget (SMALLER) than the page's, and prints what the page shows."""

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "walkthrough.md"
# the page's sizes -> the test's: the same commands, seconds instead of minutes
SMALLER = {"--customers 3000": "--customers 300", "--max-steps 600": "--max-steps 30",
           "--val-users 300": "--val-users 30"}


def blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of each fenced bash or python block, in page order."""
    return [(m.group(1), m.group(2)) for m in re.finditer(r"```(bash|python)\n(.*?)```", text, re.S)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_every_block_of_the_walkthrough_runs(tmp_path):
    text = PAGE.read_text()
    for name in ("configs", "scripts"):
        shutil.copytree(REPO / name, tmp_path / name)
    port = str(free_port())
    # the gsasrec command of this interpreter's environment first on PATH
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    outputs = []
    for language, code in blocks(text):
        for page_value, test_value in SMALLER.items():
            code = code.replace(page_value, test_value)
        code = code.replace("8000", port)
        command = ["bash", "-euo", "pipefail", "-c", code] if language == "bash" else [sys.executable, "-c", code]
        result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"{code}\n{result.stdout}\n{result.stderr}"
        outputs.append(result.stdout)
    printed = "\n".join(outputs)
    # what the page promises along the way: titles in the recommendations, the held-out item, a served answer
    assert re.search(r"vol\. \d+", printed) and "held-out item" in printed and '"probability"' in printed
    assert (tmp_path / "runs" / "shop" / "curve.png").exists()

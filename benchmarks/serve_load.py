"""Load test of `gsasrec serve` on loopback with an ML-1M-sized model (3416 items, the seed's gSASRec
architecture, random weights: speed does not depend on them).

    python benchmarks/serve_load.py                    # 8 clients, 250 requests each, single + batched
    python benchmarks/serve_load.py --quick

Each client keeps one connection open and sends a bounded number of requests, then stops. Reports
recommendation lists per second and request latency percentiles for k=10.
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from gsasrec.checkpoint import save_checkpoint
from gsasrec.config import make_config
from gsasrec.model import GSASRec

NUM_ITEMS = 3416


def make_checkpoint(folder: Path) -> Path:
    config = make_config(dataset_name="ml1m_sized", sequence_length=200, embedding_dim=128, num_heads=1,
                         num_blocks=2, dropout_rate=0.5, negs_per_pos=256)
    path = folder / "model.pt"
    save_checkpoint(path, GSASRec.from_config(config, NUM_ITEMS), config,
                    {"num_users": 6040, "num_items": NUM_ITEMS, "num_interactions": 0})
    return path


def client(port: int, requests: int, batch: int, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    latencies = []
    for _ in range(requests):
        histories = [rng.integers(1, NUM_ITEMS + 1, rng.integers(20, 200)).tolist() for _ in range(batch)]
        path, body = (("/recommend", {"history": histories[0], "k": 10}) if batch == 1
                      else ("/recommend/batch", {"histories": histories, "k": 10}))
        started = time.perf_counter()
        connection.request("POST", path, json.dumps(body), {"content-type": "application/json"})
        response = connection.getresponse()
        response.read()
        latencies.append(time.perf_counter() - started)
        assert response.status == 200, response.status
    connection.close()
    return latencies


def run(port: int, clients: int, requests: int, batch: int) -> dict:
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(lambda c: client(port, requests, batch, c), range(clients)))
    seconds = time.perf_counter() - started
    latencies = sorted(x for r in results for x in r)
    return {"clients": clients, "histories_per_request": batch, "requests": len(latencies),
            "recommendations_per_s": round(len(latencies) * batch / seconds, 1),
            "p50_ms": round(1000 * statistics.median(latencies), 1),
            "p99_ms": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=250, help="per client")
    parser.add_argument("--batch", type=int, default=16, help="histories per batched request")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.requests = 30
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = make_checkpoint(Path(folder))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen([sys.executable, "-m", "gsasrec", "serve", "--checkpoint", str(checkpoint),
                                   "--port", str(port), "--device", "cpu"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(300):
                try:
                    client(port, 1, 1, 0)
                    break
                except OSError:
                    time.sleep(0.2)
            client(port, 20, 1, 99)  # warm-up
            for batch in (1, args.batch):
                print(json.dumps(run(port, args.clients, args.requests, batch)))
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()

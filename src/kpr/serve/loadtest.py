"""A bounded load test of a running ``kpr serve``: requests/s and latency per client count.

``python -m kpr.serve.loadtest --url http://127.0.0.1:8000 --image crop.png [--keypoints k.json]``
sends ``POST /api/query`` from 1, 4 and 16 concurrent clients (threads, one keep-alive connection
each). Every level stops after ``--requests`` requests or ``--seconds`` seconds, whichever comes
first; only loopback URLs are accepted.
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import json
import socket
import statistics
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit


@dataclass(frozen=True)
class LevelResult:
    clients: int
    requests: int
    refused: int  # 503: the bounded queue was full
    seconds: float
    p50_ms: float
    p95_ms: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def _multipart(image: bytes, prompt: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="crop.png"\r\n'
            f"Content-Type: image/png\r\n\r\n"
        ).encode()
        + image
        + (
            f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="prompt"\r\n\r\n{prompt}\r\n'
            f"--{boundary}--\r\n"
        ).encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def run_level(
    host: str, port: int, body: bytes, ctype: str, clients: int, requests: int, seconds: float
) -> LevelResult:
    """``requests`` POSTs shared by ``clients`` threads, stopping early after ``seconds``."""
    latencies: list[float] = []
    refused = 0
    lock = threading.Lock()
    left = [requests]
    deadline = time.monotonic() + seconds

    def client() -> None:
        nonlocal refused
        conn = http.client.HTTPConnection(host, port, timeout=60)
        while time.monotonic() < deadline:
            with lock:
                if left[0] <= 0:
                    break
                left[0] -= 1
            start = time.perf_counter()
            conn.request("POST", "/api/query", body, {"Content-Type": ctype})
            response = conn.getresponse()
            response.read()
            elapsed = time.perf_counter() - start
            with lock:
                if response.status == 503:
                    refused += 1
                elif response.status == 200:
                    latencies.append(elapsed)
                else:
                    raise RuntimeError(f"unexpected status {response.status}")
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    ms = sorted(1000 * x for x in latencies)
    p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))] if ms else float("nan")
    return LevelResult(
        clients, len(ms), refused, wall, statistics.median(ms) if ms else float("nan"), p95
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--image", required=True, type=Path)
    parser.add_argument(
        "--keypoints", type=Path, help="official keypoint JSON of the crop (the prompt)"
    )
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument(
        "--requests", type=int, default=200, help="requests per level (default 200)"
    )
    parser.add_argument(
        "--seconds", type=float, default=60.0, help="time limit per level (default 60)"
    )
    args = parser.parse_args(argv)
    url = urlsplit(args.url)
    address = socket.gethostbyname(url.hostname or "")
    if not ipaddress.ip_address(address).is_loopback:
        parser.error(f"--url {args.url}: only loopback servers are load-tested")
    prompt = json.dumps({"keypoints": None, "negatives": []})
    if args.keypoints:
        from kpr.keypoints.io import read_keypoints_file

        skeletons = read_keypoints_file(args.keypoints)
        prompt = json.dumps(
            {"keypoints": skeletons.target.tolist(), "negatives": skeletons.negatives.tolist()}
        )
    body, ctype = _multipart(args.image.read_bytes(), prompt)
    print("| clients | requests | 503 | requests/s | p50 (ms) | p95 (ms) |")
    print("|---|---|---|---|---|---|")
    for clients in (int(c) for c in args.clients.split(",")):
        r = run_level(address, url.port or 80, body, ctype, clients, args.requests, args.seconds)
        cells = (
            r.clients,
            r.requests,
            r.refused,
            f"{r.per_second:.1f}",
            f"{r.p50_ms:.0f}",
            f"{r.p95_ms:.0f}",
        )
        print("| " + " | ".join(str(c) for c in cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""How fast `digitrec serve` answers on loopback: one user drawing, and many clients at once.

    python bench/serve.py [--workers 2] [--requests 2000] [--clients 32]

Starts `digitrec serve --workers N` on a free loopback port and sends POST /v1/predict
with drawings as the page sends them: mouse-drawn digits (``gallery.mouse_shape``) on a
280x280 canvas, scaled to 64x64, as RGBA PNG in the multipart field ``image``. Each request
is a different drawing, so nothing can be answered from a cache.

1. sequential: one client, one keep-alive connection, request after request, as a user
   drawing (the page keeps one request in flight): latency p50/p90/p99;
2. concurrent: ``--clients`` connections sharing ``--requests`` requests: errors, req/s.

The clients run in this process (asyncio over raw sockets, a few tens of microseconds a
request) and share the machine's cores with the server. Prints JSON and writes
bench/results/serve-<date>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from machine import header, write_result
from PIL import Image

from digitrec.gallery import mouse_shape

BOUNDARY = b"digitrecbench"
SEND_SIDE = 64  # the page's SEND_SIDE


def drawings(n: int, seed: int = 0) -> list[tuple[int, bytes]]:
    """``n`` (digit, PNG) pairs: mouse strokes, thin and thick, as the page sends them."""
    rng = np.random.default_rng(seed)
    made = []
    for index in range(n):
        digit = index % 10
        ink = mouse_shape(digit, rng, "thick" if index % 3 else "thin")
        paper = Image.fromarray(np.rint((1 - ink) * 255).astype(np.uint8)).convert("RGBA")
        small = paper.resize((SEND_SIDE, SEND_SIDE), Image.Resampling.BOX)
        buffer = io.BytesIO()
        small.save(buffer, "PNG")
        made.append((digit, buffer.getvalue()))
    return made


def request_bytes(png: bytes, port: int) -> bytes:
    body = (
        b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="image"; '
        b'filename="drawing.png"\r\nContent-Type: image/png\r\n\r\n'
        + png
        + b"\r\n--"
        + BOUNDARY
        + b"--\r\n"
    )
    head = (
        f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY.decode()}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def exchange(reader, writer, request: bytes) -> tuple[int, dict]:
    """Send one request on a keep-alive connection; (status, JSON answer)."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, json.loads(await reader.readexactly(length))


async def sequential(port: int, requests: list[tuple[int, bytes]], n: int) -> dict:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    times, right, errors = [], 0, 0
    for index in range(n):
        digit, request = requests[index % len(requests)]
        start = time.perf_counter()
        status, answer = await exchange(reader, writer, request)
        times.append(time.perf_counter() - start)
        errors += status != 200
        right += answer.get("digit") == digit
    writer.close()
    ms = np.array(times) * 1000
    return {
        "requests": n,
        "errors": errors,
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p90_ms": round(float(np.percentile(ms, 90)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "mean_ms": round(float(ms.mean()), 2),
        "digits_right": round(right / n, 4),
    }


async def concurrent(port: int, requests: list[tuple[int, bytes]], n: int, clients: int) -> dict:
    queue = iter(range(n))
    times, errors = [], []

    async def client():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError as error:
            errors.append(f"connect: {error}")
            return
        for index in queue:
            start = time.perf_counter()
            try:
                status, answer = await exchange(reader, writer, requests[index % len(requests)][1])
            except (OSError, asyncio.IncompleteReadError, ValueError) as error:
                errors.append(f"{type(error).__name__}: {error}")
                return
            times.append(time.perf_counter() - start)
            if status != 200:
                errors.append(f"HTTP {status}: {answer.get('error')}")
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - start
    ms = np.array(times) * 1000
    return {
        "clients": clients,
        "requests": n,
        "answered": len(times),
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:5],
        "seconds": round(elapsed, 2),
        "requests_per_s": round(len(times) / elapsed, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2) if len(ms) else None,
        "p99_ms": round(float(np.percentile(ms, 99)), 2) if len(ms) else None,
    }


def cpu_seconds(pid: int) -> float | None:
    """CPU time used so far by a process and all its children (Linux /proc), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += cpu_seconds(int(child)) or 0.0
        return total
    except (OSError, ValueError):
        return None


def measured(phase, server_pid: int, n: int) -> dict:
    """Run ``phase`` and add the CPU time that the server and these clients spent per request:
    on a shared machine these say more than wall time."""
    server_before, client_before = cpu_seconds(server_pid), time.process_time()
    result = asyncio.run(phase)
    server_after, client_after = cpu_seconds(server_pid), time.process_time()
    if server_before is not None and server_after is not None:
        result["server_cpu_ms_per_request"] = round((server_after - server_before) * 1000 / n, 2)
    result["client_cpu_ms_per_request"] = round((client_after - client_before) * 1000 / n, 3)
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int, workers: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "digitrec.cli", "serve", "--port", str(port)]
    server = subprocess.Popen([*command, "--workers", str(workers)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("digitrec serve did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="server processes (default 2)")
    parser.add_argument("--requests", type=int, default=2000, help="concurrent phase total")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--sequential", type=int, default=1000, help="sequential requests")
    parser.add_argument("--output", type=Path, help="JSON file to write")
    args = parser.parse_args()

    load_before = [round(x, 2) for x in os.getloadavg()]  # others' work on this machine
    port = free_port()
    made = drawings(300)
    requests = [(digit, request_bytes(png, port)) for digit, png in made]
    server = start_server(port, args.workers)
    try:
        asyncio.run(concurrent(port, requests, 200, args.clients))  # warm every worker up
        one = measured(sequential(port, requests, args.sequential), server.pid, args.sequential)
        many = measured(
            concurrent(port, requests, args.requests, args.clients), server.pid, args.requests
        )
    finally:
        server.terminate()
        server.wait(30)
    result = header("serve.py")
    result["machine"]["load_average_before"] = load_before
    result |= {
        "server": {"workers": args.workers, "onnxruntime_threads_per_worker": 1},
        "request": {
            "route": "POST /v1/predict, multipart field image",
            "png_bytes_median": statistics.median(len(png) for _, png in made),
            "picture": f"{SEND_SIDE}x{SEND_SIDE} RGBA PNG of a mouse-drawn digit",
        },
        "sequential": one,
        "concurrent": many,
        "targets": {"p50_ms": 5, "p99_ms": 15, "errors": 0, "requests_per_s": 800},
    }
    write_result(result, "serve", args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())

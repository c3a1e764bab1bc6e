"""The HTTP side of the leaderboard benchmark: gunicorn in its own process group, and a closed-loop aiohttp
load of concurrent clients (latencies of the 2xx/304 answers)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """gunicorn in its own process group; stop() terminates the group, then kills what is left."""

    def __init__(self, env: dict, log_path: Path, workers: int, threads: int):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.log = open(log_path, "wb")
        cmd = [sys.executable, "-m", "gunicorn", "webapp.wsgi", "-b", f"127.0.0.1:{self.port}",
               "-w", str(workers), "-k", "gthread", "--threads", str(threads), "--keep-alive", "30",
               "--backlog", "256", "--timeout", "60", "--log-level", "warning"]
        self.process = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)

    def wait_ready(self, timeout: float = 120) -> None:
        import urllib.error
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"gunicorn exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(self.url + "/api/v1/version/", timeout=30).read()
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.3)
        raise SystemExit("gunicorn did not answer within the timeout")

    def stop(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                continue
        self.log.close()


async def load(base: str, make_path, seconds: float, clients: int) -> dict:
    """`clients` connections in a closed loop for `seconds`; latencies of 2xx/304 answers only."""
    import aiohttp

    latencies, failures = [], {}
    connector = aiohttp.TCPConnector(limit=clients, force_close=False)
    async with aiohttp.ClientSession(base, connector=connector, auto_decompress=False) as session:
        deadline = time.perf_counter() + seconds

        async def client():
            while time.perf_counter() < deadline:
                path = make_path()
                started = time.perf_counter()
                async with session.get(path) as response:
                    await response.read()
                    if response.status >= 300:
                        failures[response.status] = failures.get(response.status, 0) + 1
                        continue
                latencies.append((time.perf_counter() - started) * 1000)

        began = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    count = len(latencies)
    return {
        "requests": count, "failures": failures, "rps": count / elapsed,
        "p50": latencies[count // 2] if count else float("nan"),
        "p95": latencies[min(count - 1, int(count * 0.95))] if count else float("nan"),
    }

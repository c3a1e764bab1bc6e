"""A 1 GiB file through the chunked upload API vs `cp` of the same file on the same disk.

    .venv/bin/python bench/upload.py [--size-mib 1024] [--chunk-mib 64] [--repeats 2] [--dir /some/tmp]

One temporary folder on one disk holds the source file, the `cp` copy and the server's var dir
(SQLite database, upload part files, media). `cp` is ``shutil.copyfile`` (sendfile) plus an
fsync of the copy; the server fsyncs each chunk before it records the new offset, so both
numbers include getting the bytes to disk. The server is gunicorn with one sync worker, as the
test fixture starts it, on a fresh SQLite database; the client is ``webapp.client``'s upload code.
The upload is timed from POST /api/v1/uploads/ to the answer of .../complete/ (the server stores
the archive; the validation job checks its SHA-256 later, off the upload's path); the client's own
SHA-256 pass comes before the upload (the protocol declares the hash up front) and is printed
separately. cp and upload alternate, and each
is the best of --repeats (the machine may be shared), after one untimed copy: in a VM the first
writes into never-touched memory are slow, so both sides should write into recycled page cache
(each stored upload is deleted again for the same reason). Each upload changes the file's first
bytes so that it is a new archive, not a duplicate. Memory is the gunicorn worker's RSS from /proc:
before the first upload, after the last, and its peak (VmHWM, reset first where the kernel allows,
and sampled every 20 ms). No Celery worker runs, so the queued validation jobs just wait.
Targets: upload/cp throughput ratio >= 0.5, worker RSS growth < 100 MB (MB = 10^6 bytes).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from webapp.client.api import Api  # noqa: E402
from webapp.client.upload import file_sha256, upload_archive  # noqa: E402

MB = 1e6
RATIO_TARGET = 0.5
RSS_GROWTH_TARGET_MB = 100


def write_file(path: Path, size: int) -> None:
    block = 8 * 1024**2
    with open(path, "wb") as handle:
        for start in range(0, size, block):
            handle.write(os.urandom(min(block, size - start)))
        handle.flush()
        os.fsync(handle.fileno())


def timed_cp(source: Path, dest: Path) -> float:
    start = time.perf_counter()
    shutil.copyfile(source, dest)
    with open(dest, "rb") as handle:
        os.fsync(handle.fileno())
    elapsed = time.perf_counter() - start
    dest.unlink()
    return elapsed


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manage(env: dict, *args: str) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout.strip()


def proc_status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def gunicorn_worker_pid(master: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.1)
    raise SystemExit("gunicorn started no worker process")


class RssSampler(threading.Thread):
    """Peak RSS by sampling, for kernels that refuse to reset VmHWM."""

    def __init__(self, pid: int, interval: float = 0.02):
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak_kib = pid, interval, 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.peak_kib = max(self.peak_kib, proc_status_kib(self.pid, "VmRSS"))
            time.sleep(self.interval)


def start_server(env: dict, log_path: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "gunicorn", "webapp.wsgi", "-b", f"127.0.0.1:{port}", "-w", "1", "--timeout", "60"]
    log = open(log_path, "wb")
    server = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    import requests

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited:\n{log_path.read_text()[-3000:]}")
        try:
            requests.get(url + "/healthz", timeout=10)  # any answer will do, 503 included
            return server, url
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.2)
    raise SystemExit("gunicorn did not answer within 60 s")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="file size in MiB")
    parser.add_argument("--chunk-mib", type=int, default=64, help="upload chunk size in MiB")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many cp and uploads, interleaved")
    parser.add_argument("--dir", default=None, help="where to make the temporary folder (default: the system's)")
    args = parser.parse_args()
    size = args.size_mib * 1024**2

    with tempfile.TemporaryDirectory(prefix="frontier-bench-upload-", dir=args.dir) as work:
        work = Path(work)
        source = work / "bench.tar"  # an archive name, so the upload is accepted; validation never runs
        write_file(source, size)
        var = work / "var"
        env = {key: value for key, value in os.environ.items()
               if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "MEDIA_ROOT", "S3_BUCKET")}
        env.update(FRONTIER_VAR_DIR=str(var), DJANGO_SETTINGS_MODULE="webapp.settings",
                   FRONTIER_UPLOAD_MAX_BYTES=str(size), FRONTIER_THROTTLE_USER="100000/hour")
        manage(env, "migrate", "--noinput", "-v", "0")
        manage(env, "createsuperuser", "--noinput", "--username", "bench", "--email", "bench@example.org")
        token = manage(env, "createapitoken", "bench", "--name", "bench/upload.py")
        server, url = start_server(env, work / "gunicorn.log")
        try:
            api = Api(url, token)
            api.get("/api/v1/whoami/")  # the worker has loaded Django and answered once
            worker = gunicorn_worker_pid(server.pid)
            rss_before = proc_status_kib(worker, "VmRSS")
            try:
                Path(f"/proc/{worker}/clear_refs").write_text("5")  # reset VmHWM to the current RSS
            except OSError:
                pass
            sampler = RssSampler(worker)
            sampler.start()
            # A VM's first writes into never-touched memory are slow (the host maps the pages);
            # an untimed copy first, and deleting what each round stored, keep both sides on
            # recycled page-cache memory.
            timed_cp(source, work / "copy.tar")
            cp_times, hash_times, upload_times = [], [], []
            for repeat in range(args.repeats):  # interleaved, so a busy moment hits both sides alike
                cp_times.append(timed_cp(source, work / "copy.tar"))
                with open(source, "r+b") as handle:  # a new archive each time, not a duplicate
                    handle.write(repeat.to_bytes(8, "little"))
                started = time.perf_counter()
                sha256 = file_sha256(source)
                hash_times.append(time.perf_counter() - started)
                started = time.perf_counter()
                checkpoint, created = upload_archive(
                    api, source, sha256=sha256, name=f"bench {repeat}", suites=[],
                    chunk_size=args.chunk_mib * 1024**2, progress=False,
                )
                upload_times.append(time.perf_counter() - started)
                if not created or checkpoint["size_bytes"] != size:
                    raise SystemExit(f"the upload did not store the file: {checkpoint}")
                api.request("DELETE", f"/api/v1/checkpoints/{checkpoint['id']}/")
            sampler.stopped.set()
            sampler.join()
            rss_after = proc_status_kib(worker, "VmRSS")
            rss_peak = max(proc_status_kib(worker, "VmHWM"), sampler.peak_kib)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)

    cp_seconds, hash_seconds, upload_seconds = min(cp_times), min(hash_times), min(upload_times)
    cp_rate, upload_rate = size / cp_seconds / MB, size / upload_seconds / MB
    ratio = upload_rate / cp_rate
    growth_mb = (rss_peak - rss_before) * 1024 / MB
    print(f"file {args.size_mib} MiB, upload chunks {args.chunk_mib} MiB, gunicorn 1 sync worker, SQLite, local disk; "
          f"best of {args.repeats}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end")
    print(f"cp (copyfile + fsync)          {cp_rate:8.1f} MB/s  ({cp_seconds:.2f} s)")
    print(f"client sha256 (before upload)  {size / hash_seconds / MB:8.1f} MB/s  ({hash_seconds:.2f} s)")
    print(f"upload (start -> complete)     {upload_rate:8.1f} MB/s  ({upload_seconds:.2f} s)")
    print("each round (s):                cp " + " ".join(f"{t:.2f}" for t in cp_times)
          + " | upload " + " ".join(f"{t:.2f}" for t in upload_times))
    print(f"ratio upload / cp              {ratio:8.2f}   target >= {RATIO_TARGET}  {verdict(ratio >= RATIO_TARGET)}")
    print(f"web worker RSS before {rss_before * 1024 / MB:.1f} MB, after {rss_after * 1024 / MB:.1f} MB, "
          f"peak {rss_peak * 1024 / MB:.1f} MB")
    print(f"RSS growth (peak - before)     {growth_mb:8.1f} MB  target < {RSS_GROWTH_TARGET_MB} MB  "
          f"{verdict(growth_mb < RSS_GROWTH_TARGET_MB)}")
    return 0 if ratio >= RATIO_TARGET and growth_mb < RSS_GROWTH_TARGET_MB else 1


if __name__ == "__main__":
    sys.exit(main())

"""Chaos: N checkpoint submissions through real workers while K workers are SIGKILLed and the database goes away.

    .venv/bin/python bench/chaos.py [--submissions 20] [--kills 5] [--db-outage-seconds 3] [--seed 0]

Needs PostgreSQL and RabbitMQ (DATABASE_URL's server, default postgres://postgres@127.0.0.1:5432, and
CELERY_BROKER_URL's, default amqp://guest:guest@127.0.0.1:5672). It makes its own database
(``frontier_chaos``, dropped and created again), its own RabbitMQ vhost (``frontier_chaos``, with
``rabbitmqctl``: workers and tests on the same broker would take its messages) and its own folders, and starts three
Celery workers: ``eval1`` and ``eval2`` (gpu-eval) and ``cpu`` (cpu, with beat running the reaper), each
its own process group, with the production-like timing of issue #15 (lease 15 s, heartbeat 3 s,
reaper every 5 s). Each submission is a distinct tiny checkpoint registered by path with the synthetic
suite (2 benchmarks, FRONTIER_AUTO_EVAL_LIMIT items each): validation, then two evaluations, then refits.

While they run, at random moments, --kills workers that are running a job are SIGKILLed (the whole
group, pool child included) and started again at once under the same name, and once the database is made
unreachable for --db-outage-seconds (connections refused and every open one ended, as a restart does:
``ALTER DATABASE ... ALLOW_CONNECTIONS false`` + ``pg_terminate_backend``; only this bench's database).

It then waits for every job to end and prints the tally: results per (checkpoint, benchmark) (must be
exactly 1), checkpoints by status, jobs still queued or running (must be 0), attempts and jobs by failure
class (no job may fail as internal_error), and the time from each kill to the job's takeover. Exit status
0 when every check passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DATABASE = "frontier_chaos"
TIMING = {"FRONTIER_JOB_LEASE_SECONDS": "15", "FRONTIER_JOB_HEARTBEAT_SECONDS": "3",
          "FRONTIER_REAPER_INTERVAL_SECONDS": "5"}
WORKERS = {"eval1": "gpu-eval", "eval2": "gpu-eval", "cpu": "cpu"}


def psql(server_url: str, *statements: str) -> None:
    parts = urlsplit(server_url)
    admin = urlunsplit((parts.scheme, parts.netloc, "/postgres", "", ""))
    args = ["psql", admin, "-v", "ON_ERROR_STOP=1", "-q"]
    for statement in statements:
        args += ["-c", statement]
    subprocess.run(args, check=True, capture_output=True, text=True)


class Worker:
    """One `celery worker` in its own session (SIGKILL reaches its pool child too)."""

    def __init__(self, name: str, queues: str, env: dict, logs: Path):
        self.name, self.queues, self.env, self.logs = name, queues, env, logs
        self.starts = 0
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.starts += 1
        cmd = [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "-Q", self.queues, "-c", "1",
               "-n", f"{self.name}@%h", "-l", "info", "--without-gossip", "--without-mingle"]
        if self.queues == "cpu":
            cmd += ["-B", "-s", str(self.logs / f"beat-{self.name}-{self.starts}")]
        log = open(self.logs / f"{self.name}-{self.starts}.log", "wb")
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def pids(self) -> set[int]:
        """The worker's main process and its pool child."""
        pids = {self.proc.pid}
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        if children.exists():
            pids |= {int(pid) for pid in children.read_text().split()}
        return pids

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_for_workers(app, names: list[str], timeout: float = 120) -> None:
    hostnames = [f"{name}@{socket.gethostname()}" for name in names]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answered = {host for reply in app.control.ping(destination=hostnames, timeout=1.0) for host in reply}
        if answered >= set(hostnames):
            return
    raise SystemExit(f"workers {hostnames} did not answer within {timeout:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=20)
    parser.add_argument("--kills", type=int, default=5, help="worker SIGKILLs, each while the worker runs a job")
    parser.add_argument("--db-outage-seconds", type=float, default=3.0, help="0: no database outage")
    parser.add_argument("--eval-limit", type=int, default=24, help="items per benchmark")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=1200, help="seconds to wait for every job to end")
    args = parser.parse_args()
    rng = random.Random(args.seed)

    server = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    broker = urlsplit(os.environ.get("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//"))
    for command in (["add_vhost", DATABASE], ["set_permissions", "-p", DATABASE, broker.username or "guest",
                                              ".*", ".*", ".*"]):
        done = subprocess.run(["rabbitmqctl", *command], capture_output=True, text=True)
        if done.returncode != 0 and "already exists" not in done.stdout + done.stderr:
            raise SystemExit(f"rabbitmqctl {' '.join(command)} failed: {done.stderr.strip()}")
    broker = urlunsplit((broker.scheme, broker.netloc, f"/{DATABASE}", "", ""))
    parts = urlsplit(server)
    database_url = urlunsplit((parts.scheme, parts.netloc, f"/{DATABASE}", "", ""))
    psql(server, f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)", f"CREATE DATABASE {DATABASE}")

    work = Path(tempfile.mkdtemp(prefix="frontier-chaos-"))
    shared, logs = work / "shared", work / "logs"
    shared.mkdir()
    logs.mkdir()
    env = {**os.environ, **TIMING, "DATABASE_URL": database_url, "CELERY_BROKER_URL": broker,
           "FRONTIER_VAR_DIR": str(work / "var"), "FRONTIER_REFERENCE_ROOTS": str(shared),
           "FRONTIER_AUTO_EVAL_LIMIT": str(args.eval_limit), "FRONTIER_QUOTA_CONCURRENT_RUNS": "1000",
           "FRONTIER_QUOTA_RUNS_PER_DAY": "1000", "FRONTIER_FIT_BOOTSTRAP_RESAMPLES": "20",
           "DJANGO_SETTINGS_MODULE": "webapp.settings", "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
    os.environ.update(env)
    subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=REPO, env=env, check=True)

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection

    from evaluation.tiny import make_tiny_checkpoint
    from webapp.jobs.models import Job, JobAttempt
    from webapp.registry.models import Checkpoint, HarnessOutput
    from webapp.registry.services import checkpoint_register_reference
    from workers.celery_app import app

    print(f"chaos: {args.submissions} submissions, {args.kills} worker SIGKILLs, "
          f"a {args.db_outage_seconds:g} s database outage; lease 15 s, heartbeat 3 s, reaper 5 s; logs in {logs}")
    folders = [make_tiny_checkpoint(shared / f"c{i}", compressor="avgpool", tokens=4, seed=i)
               for i in range(args.submissions)]
    app.control.purge()
    workers = {name: Worker(name, queues, env, logs) for name, queues in WORKERS.items()}
    wait_for_workers(app, list(workers))

    owner = get_user_model().objects.create_user("chaos")
    started = time.monotonic()
    for i, folder in enumerate(folders):
        checkpoint_register_reference(owner=owner, name=f"chaos {i}", reference={"path": str(folder)},
                                      suites=["synthetic"])
    connection.close()

    kills: list[dict] = []
    outage = {}

    def running_attempts() -> list[JobAttempt]:
        return list(JobAttempt.objects.filter(outcome="running").select_related("job"))

    def chaos() -> None:
        outage_after = rng.randint(1, max(1, args.kills))
        for number in range(1, args.kills + 1):
            time.sleep(rng.uniform(3, 12))
            for _ in range(100):  # a worker that is running a job
                by_pid = {attempt.worker_pid: attempt for attempt in running_attempts()}
                candidates = [(w, by_pid[pid]) for w in workers.values() for pid in w.pids() if pid in by_pid]
                if candidates:
                    worker, attempt = rng.choice(candidates)
                    worker.kill()
                    kills.append({"at": time.time(), "job": attempt.job_id, "attempt": attempt.number,
                                  "worker": worker.name, "task": attempt.job.task_name.rsplit(".", 1)[-1]})
                    worker.start()
                    break
                time.sleep(0.2)
            connection.close()
            if number == outage_after and args.db_outage_seconds > 0:
                time.sleep(rng.uniform(1, 4))
                outage["at"] = time.time()
                psql(server, f"ALTER DATABASE {DATABASE} ALLOW_CONNECTIONS false",
                     f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{DATABASE}'")
                time.sleep(args.db_outage_seconds)
                psql(server, f"ALTER DATABASE {DATABASE} ALLOW_CONNECTIONS true")

    chaos_thread = threading.Thread(target=chaos, daemon=True)
    chaos_thread.start()
    deadline = time.monotonic() + args.timeout
    while True:
        time.sleep(2)
        try:
            open_jobs = Job.objects.filter(state__in=["queued", "running"]).count()
            undecided = Checkpoint.objects.filter(status__in=["uploaded", "validating"]).count()
        except Exception:  # noqa: BLE001 (the outage: ask again)
            connection.close()
            continue
        if not chaos_thread.is_alive() and open_jobs == 0 and undecided == 0:
            break
        if time.monotonic() > deadline:
            print(f"timed out after {args.timeout:.0f} s with {open_jobs} jobs open")
            break
    elapsed = time.monotonic() - started
    for worker in workers.values():
        worker.stop()

    outputs = collections.Counter(HarnessOutput.objects.values_list("run__checkpoint_id", "benchmark__key"))
    checkpoints = list(Checkpoint.objects.filter(owner=owner))
    statuses = collections.Counter(c.status for c in checkpoints)
    ready = [c for c in checkpoints if c.status == "ready"]
    expected = {(c.pk, key) for c in ready for key in ("shapes", "glyphs")}
    per_pair = collections.Counter(outputs.get(pair, 0) for pair in expected)
    stuck = list(Job.objects.filter(state__in=["queued", "running"]).values_list("pk", "task_name", "state"))
    attempt_classes = collections.Counter(JobAttempt.objects.exclude(outcome__in=["succeeded", "running"])
                                          .values_list("failure_class", flat=True))
    job_states = collections.Counter(Job.objects.values_list("state", flat=True))
    failed = collections.Counter(Job.objects.filter(state="failed").values_list("failure_class", flat=True))
    takeovers = [(kill, JobAttempt.objects.filter(job_id=kill["job"], number=kill["attempt"] + 1).first())
                 for kill in kills]
    print(f"\nall jobs ended after {elapsed:.0f} s" if not stuck else f"\n{len(stuck)} jobs still open")
    print(f"worker SIGKILLs: {len(kills)}; database outage: "
          f"{'yes, ' + format(args.db_outage_seconds, 'g') + ' s' if outage else 'no'}")
    for kill, successor in takeovers:
        where = (f"taken over by attempt {successor.number} on {successor.worker_hostname.split('@')[0]} "
                 f"{successor.started_at.timestamp() - kill['at']:.1f} s after the kill") if successor else (
            "no later attempt")
        print(f"  killed {kill['worker']} running {kill['task']} job {kill['job']} attempt {kill['attempt']}: {where}")
    print(f"checkpoints: {dict(statuses)}")
    print(f"results per (checkpoint, benchmark) over {len(expected)} pairs: "
          f"{', '.join(f'{n} result(s): {count}' for n, count in sorted(per_pair.items()))}")
    print(f"jobs by state: {dict(job_states)}; failed jobs by class: {dict(failed) or 'none'}")
    print(f"attempts that did not succeed, by class: {dict(attempt_classes) or 'none'}")
    checks = {
        "every submission ready": statuses.get("ready", 0) == args.submissions,
        "every result exactly once": set(per_pair) == {1},
        "nothing stuck": not stuck,
        "no internal_error": "internal_error" not in failed and "internal_error" not in attempt_classes,
        "no failed job": not failed,
        f"{args.kills} kills landed": len(kills) == args.kills,
    }
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

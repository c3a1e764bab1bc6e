"""`make run`: web, one Celery worker per pool of queues and beat, as child processes; Ctrl-C stops all.

The pools are settings.FRONTIER_WORKER_POOLS, as docker-compose's worker-gpu and worker-cpu: `gpu@host`
on gpu-eval + gpu-train, `cpu@host` on cpu, so a validation or refit (seconds) never waits behind a
training or an evaluation (minutes to hours). With --demo (the default) it also loads the paper's
published table, prints a demo login and API token, and submits a tiny training sweep through the REST
API once everything is up."""

import argparse
import os
import signal
import socket
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from webapp.stack.demo import DEMO_SUITE, DemoError, demo_account, demo_sweep_submit, published_table_load
from webapp.stack.health import system_health


class Command(BaseCommand):
    help = "Start gunicorn, a Celery worker for the GPU queues, one for the cpu queue, and celery beat; stop them all on Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("FRONTIER_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("FRONTIER_PORT", "8000")))
        parser.add_argument("--gpu-concurrency", "--concurrency", dest="gpu_concurrency", type=int, default=2,
                            help="pool processes of the worker on the gpu-eval and gpu-train queues (default 2)")
        parser.add_argument("--cpu-concurrency", type=int, default=2,
                            help="pool processes of the worker on the cpu queue: validation, refit, reaper (default 2)")
        parser.add_argument("--demo", action=argparse.BooleanOptionalAction, default=True,
                            help="load published data, create the demo user and submit the demo sweep")
        parser.add_argument("--demo-user", default="demo")
        parser.add_argument("--demo-password", default=os.environ.get("FRONTIER_DEMO_PASSWORD", "frontier-demo"))

    def handle(self, *args, host, port, gpu_concurrency, cpu_concurrency, demo, demo_user, demo_password, **options):
        python = sys.executable
        concurrency = {"gpu": gpu_concurrency, "cpu": cpu_concurrency}
        commands = {
            "web": [python, "-m", "gunicorn", "webapp.wsgi", "-b", f"{host}:{port}", "-w", "2", "--timeout", "120"],
            **{
                # Gossip and mingle would have the workers exchange messages through broker files for nothing.
                f"worker-{pool}": [
                    python, "-m", "celery", "-A", "workers.celery_app", "worker", "-Q", ",".join(queues),
                    "-c", str(concurrency.get(pool, 1)), "-n", f"{pool}@%h", "-l", "info",
                    "--without-gossip", "--without-mingle",
                ]
                for pool, queues in settings.FRONTIER_WORKER_POOLS.items()
            },
            "beat": [
                python, "-m", "celery", "-A", "workers.celery_app", "beat", "-l", "info",
                "-s", settings.CELERY_BEAT_SCHEDULE_FILENAME,
            ],
        }
        url = f"http://{host if host != '0.0.0.0' else '127.0.0.1'}:{port}/"
        self.stdout.write(self.style.SUCCESS(f"Frontier: {url}  (health: {url}healthz, admin: {url}admin/)"))
        self.stdout.write(f"Database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}, "
                          f"broker: {settings.CELERY_BROKER_URL.split('@')[-1]}, var: {settings.VAR_DIR}")
        token = None
        if demo:
            published = published_table_load()
            token = demo_account(demo_user, demo_password)
            self.stdout.write(self.style.SUCCESS(
                f"Demo login: {demo_user} / {demo_password} at {url}accounts/login/   "
                f"API token: {token}   ({published} published entries loaded)"
            ))
            self.stdout.write(f"  e.g. FRONTIER_URL={url} FRONTIER_TOKEN={token} python -m webapp.client status 1")
        self.stdout.write(f"Workers: {self._workers_line(concurrency)}. Ctrl-C stops web, workers and beat.")
        children = {
            name: subprocess.Popen(cmd, start_new_session=True, env=self._environment(name, concurrency))
            for name, cmd in commands.items()
        }
        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        all_up = False
        try:
            while not stopping:
                exited = {name: child.returncode for name, child in children.items() if child.poll() is not None}
                if exited:
                    self.stderr.write(f"Stopping everything: {exited} exited.")
                    break
                # "degraded" (jobs from an earlier run waiting long) must not hold the start back.
                if not all_up and system_health()["status"] != "fail":
                    self.stdout.write(self.style.SUCCESS(f"Database, broker and workers are up: {url}healthz"))
                    all_up = True
                    if token:
                        self._submit_demo_sweep(url, token)
                time.sleep(1)
        finally:
            for child in children.values():
                if child.poll() is None:
                    os.killpg(child.pid, signal.SIGTERM)
            deadline = time.monotonic() + 20
            for child in children.values():
                try:
                    child.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    os.killpg(child.pid, signal.SIGKILL)
                    child.wait()
            self.stdout.write("Stopped web, workers and beat.")

    @staticmethod
    def _environment(name: str, concurrency: dict) -> dict:
        """The GPU-queue worker's processes share the cores: torch in each uses cores / processes threads
        (unless OMP_NUM_THREADS is set), so two trainings on two cores do not fight over four threads."""
        environment = dict(os.environ)
        if name == "worker-gpu" and "OMP_NUM_THREADS" not in environment:
            environment["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // max(1, concurrency["gpu"])))
        return environment

    @staticmethod
    def _workers_line(concurrency: dict) -> str:
        host = socket.gethostname()
        return ", ".join(f"{pool}@{host} on {', '.join(queues)} ({concurrency.get(pool, 1)} processes)"
                         for pool, queues in settings.FRONTIER_WORKER_POOLS.items())

    def _submit_demo_sweep(self, url: str, token: str) -> None:
        try:
            sweep = demo_sweep_submit(url, token)
        except (DemoError, OSError) as error:
            self.stderr.write(f"The demo sweep was not submitted: {error}")
            return
        self.stdout.write(self.style.SUCCESS(
            f"Demo sweep submitted ({sweep}): watch {url}queue/, {url}leaderboard/?suite={DEMO_SUITE} "
            f"and {url}frontier/?suite={DEMO_SUITE} fill in."
        ))

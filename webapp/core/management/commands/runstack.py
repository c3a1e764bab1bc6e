"""`make run`: web, one worker on every queue, and beat, as child processes; Ctrl-C stops all.
With --demo (the default) it also loads the paper's published table, prints a demo login and API
token, and submits a tiny training sweep through the REST API once everything is up."""

import argparse
import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from webapp.core.demo import DemoError, demo_account, demo_sweep_submit, published_table_load
from webapp.core.health import system_health


class Command(BaseCommand):
    help = "Start gunicorn, a Celery worker consuming every queue, and celery beat; stop them all on Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("FRONTIER_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("FRONTIER_PORT", "8000")))
        parser.add_argument("--concurrency", type=int, default=2, help="worker pool processes")
        parser.add_argument("--demo", action=argparse.BooleanOptionalAction, default=True,
                            help="load published data, create the demo user and submit the demo sweep")
        parser.add_argument("--demo-user", default="demo")
        parser.add_argument("--demo-password", default=os.environ.get("FRONTIER_DEMO_PASSWORD", "frontier-demo"))

    def handle(self, *args, host, port, concurrency, demo, demo_user, demo_password, **options):
        python = sys.executable
        queues = ",".join(settings.FRONTIER_QUEUES)
        commands = {
            "web": [python, "-m", "gunicorn", "webapp.wsgi", "-b", f"{host}:{port}", "-w", "2", "--timeout", "120"],
            "worker": [
                python, "-m", "celery", "-A", "workers.celery_app", "worker", "-Q", queues,
                "-c", str(concurrency), "-n", "frontier@%h", "-l", "info",
            ],
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
        self.stdout.write("Ctrl-C stops web, worker and beat.")
        children = {name: subprocess.Popen(cmd, start_new_session=True) for name, cmd in commands.items()}
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
                if not all_up and system_health()["status"] == "ok":
                    self.stdout.write(self.style.SUCCESS(f"Database, broker and worker are up: {url}healthz"))
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
            self.stdout.write("Stopped web, worker and beat.")

    def _submit_demo_sweep(self, url: str, token: str) -> None:
        try:
            sweep = demo_sweep_submit(url, token)
        except (DemoError, OSError) as error:
            self.stderr.write(f"The demo sweep was not submitted: {error}")
            return
        self.stdout.write(self.style.SUCCESS(
            f"Demo sweep submitted ({sweep}): watch {url}queue/, {url}leaderboard/?suite=synthetic "
            f"and {url}frontier/?suite=synthetic fill in."
        ))

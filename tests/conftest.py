"""Fixtures that start real processes: Celery workers and a gunicorn web server.

They talk to the same database and broker as the tests: PostgreSQL + RabbitMQ when
DATABASE_URL / CELERY_BROKER_URL are set (CI), else the embedded default under FRONTIER_VAR_DIR.
"""

import os
import socket
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection
from frontier_processes import REPO, ProcessGroup, free_port, wait_for

TESTS = Path(__file__).resolve().parent
# Tiers (pytest.ini's markers): a test is marked by its directory and by the processes it starts, so a new
# test lands in the right tier without anyone remembering to mark it. `make test-fast` leaves these out.
TIER_BY_DIRECTORY = {"integration": "integration", "faults": "integration", "browser": "browser"}
PROCESS_FIXTURES = {"start_worker": "integration", "start_web": "integration", "live_server_url": "integration"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        directory = Path(str(item.fspath)).resolve().relative_to(TESTS).parts[0]
        markers = {TIER_BY_DIRECTORY[directory]} if directory in TIER_BY_DIRECTORY else set()
        markers |= {marker for fixture, marker in PROCESS_FIXTURES.items() if fixture in item.fixturenames}
        for marker in sorted(markers - {mark.name for mark in item.iter_markers()}):
            item.add_marker(marker)


# Short lease and heartbeat so crash recovery takes seconds, not minutes.
FAST_JOB_TIMING = {
    "FRONTIER_JOB_HEARTBEAT_SECONDS": "0.5",
    "FRONTIER_JOB_LEASE_SECONDS": "3",
    "FRONTIER_REAPER_INTERVAL_SECONDS": "1",
}


def database_url_of_test_db() -> str:
    """The URL of the database the tests are using (pytest-django's test database)."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user = quote(db.get("USER") or "")
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


@pytest.fixture
def process_env(transactional_db, tmp_path):
    """Environment for child processes: same database (the test one), broker and var dir."""
    env = dict(os.environ)
    env.update(FAST_JOB_TIMING)
    env["DATABASE_URL"] = database_url_of_test_db()
    env["DJANGO_SETTINGS_MODULE"] = "webapp.settings"
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def start_worker(process_env, tmp_path):
    """Start `celery worker` processes; each is stopped (or already killed) at teardown."""
    from workers.celery_app import app

    app.control.purge()  # messages left by earlier tests refer to rows that no longer exist
    started: list[ProcessGroup] = []

    def start(name: str = "w1", queues: str = "gpu-eval,gpu-train,cpu", beat: bool = False, env=None, cwd=None):
        """``cwd``: the worker's working directory (default the repository), where code that writes relative
        paths (lmms-eval's ./submissions/) writes; the repository stays importable (PYTHONPATH)."""
        env = env or process_env
        if cwd is not None:
            env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, (str(REPO), env.get("PYTHONPATH"))))}
        cmd = [
            sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker",
            "-Q", queues, "-c", "1", "-n", f"{name}@%h", "-l", "info",
            "--without-gossip", "--without-mingle",
        ]
        if beat:
            cmd += ["-B", "-s", str(tmp_path / f"beat-{name}")]
        worker = ProcessGroup(name, cmd, env, tmp_path / f"worker-{name}.log", cwd=cwd or REPO)
        started.append(worker)
        hostname = f"{name}@{socket.gethostname()}"
        try:
            wait_for(
                lambda: worker.proc.poll() is not None or app.control.ping(destination=[hostname], timeout=0.5),
                timeout=90, message=f"worker {hostname} to answer a ping",
            )
        except AssertionError:
            raise AssertionError(f"worker {name} did not start:\n{worker.output()[-3000:]}") from None
        assert worker.proc.poll() is None, f"worker {name} exited:\n{worker.output()[-3000:]}"
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def start_web(process_env, tmp_path):
    """Start gunicorn on a free port; returns its base URL."""
    started: list[ProcessGroup] = []

    def start(env_overrides: dict | None = None, gunicorn_args: tuple[str, ...] = ()) -> str:
        import requests

        port = free_port()
        env = {**process_env, **(env_overrides or {})}
        cmd = [sys.executable, "-m", "gunicorn", "webapp.wsgi", "-b", f"127.0.0.1:{port}", "-w", "1", "--timeout", "60",
               *gunicorn_args]
        web = ProcessGroup("web", cmd, env, tmp_path / f"web-{port}.log")
        started.append(web)
        url = f"http://127.0.0.1:{port}"

        def answers():
            if web.proc.poll() is not None:
                raise AssertionError(f"gunicorn exited:\n{web.output()[-3000:]}")
            try:
                return requests.get(url + "/healthz", timeout=10) is not None
            except (requests.ConnectionError, requests.Timeout):  # a cold first request may be slow
                return False

        wait_for(answers, timeout=60, message="gunicorn to answer")
        return url

    yield start
    for web in started:
        web.stop()


@pytest.fixture
def shared_root(tmp_path, settings):
    """A folder that stands for the workers' shared storage, allowed for registration by path; pass it to
    workers as FRONTIER_REFERENCE_ROOTS."""
    root = tmp_path / "shared"
    root.mkdir()
    settings.FRONTIER_REFERENCE_ROOTS = [str(root)]
    return root


@pytest.fixture
def local_media(settings, tmp_path):
    """Default storage on a fresh folder under tmp_path (returned); pass it to workers as MEDIA_ROOT."""
    media = tmp_path / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(media)}},
    }
    return media


@pytest.fixture
def client_for():
    """client_for(user) → an APIClient authenticated with a fresh API token of that user."""
    from rest_framework.test import APIClient

    from webapp.accounts.services import api_token_create

    def client_for(user):
        _, token = api_token_create(user=user)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        return client

    return client_for

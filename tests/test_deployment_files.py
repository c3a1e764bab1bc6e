"""docker-compose.yml and the Dockerfile agree with the settings and the Celery routing.
No Docker engine runs here, so the files are read and cross-checked."""

import os
import re
import shlex
from pathlib import Path

import pytest
import yaml
from django.conf import settings

REPO = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def command_of(service: str) -> list[str]:
    command = SERVICES[service]["command"]
    return command if isinstance(command, list) else shlex.split(command)


def queues_of(service: str) -> set[str]:
    command = command_of(service)
    return set(command[command.index("-Q") + 1].split(","))


def env_names_read_by_settings() -> set[str]:
    source = (REPO / "webapp" / "settings.py").read_text()
    return set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z][A-Z0-9_]+)"', source))


def test_compose_has_every_service():
    assert set(SERVICES) >= {
        "postgres", "rabbitmq", "minio", "migrate", "web", "worker-gpu", "worker-cpu", "beat", "flower"
    }


@pytest.mark.parametrize("service", ["postgres", "rabbitmq", "minio", "web", "worker-gpu", "worker-cpu"])
def test_long_running_services_have_healthchecks(service):
    assert SERVICES[service]["healthcheck"]["test"]


def test_postgres_keeps_its_data_in_a_volume():
    assert any(v.endswith(":/var/lib/postgresql/data") for v in SERVICES["postgres"]["volumes"])
    assert "postgres-data" in COMPOSE["volumes"]


def test_workers_consume_exactly_the_queues_the_settings_route_to():
    consumed = queues_of("worker-gpu") | queues_of("worker-cpu")
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    assert consumed == set(settings.FRONTIER_QUEUES) == {"gpu-eval", "gpu-train", "cpu"}
    assert routed <= consumed
    assert queues_of("worker-gpu") == {"gpu-eval", "gpu-train"}
    assert queues_of("worker-cpu") == {"cpu"}


def test_compose_starts_the_worker_pools_make_run_starts():
    """One worker per pool of settings.FRONTIER_WORKER_POOLS (what runstack starts), named after it."""
    for pool, queues in settings.FRONTIER_WORKER_POOLS.items():
        command = command_of(f"worker-{pool}")
        assert queues_of(f"worker-{pool}") == set(queues)
        assert command[command.index("-n") + 1] == f"{pool}@%h"


def test_the_gpu_worker_reserves_nvidia_devices_and_uses_the_gpu_image():
    devices = SERVICES["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert SERVICES["worker-gpu"]["build"]["target"] == "gpu"


def test_app_services_run_the_real_entry_points():
    assert command_of("web")[:2] == ["gunicorn", "webapp.wsgi"]
    for service in ("worker-gpu", "worker-cpu", "beat", "flower"):
        command = command_of(service)
        assert command[:3] == ["celery", "-A", "workers.celery_app"], service
    assert command_of("beat")[3] == "beat" and command_of("flower")[3] == "flower"
    assert command_of("migrate")[-2:] == ["migrate", "--noinput"]


def test_app_environment_names_are_ones_the_settings_read():
    known = env_names_read_by_settings()
    for service in ("web", "worker-gpu", "worker-cpu", "beat", "flower", "migrate"):
        names = set(SERVICES[service]["environment"])
        assert names <= known, f"{service} sets variables the settings never read: {names - known}"
        assert {"DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY"} <= names
    env = SERVICES["web"]["environment"]
    assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in env["DATABASE_URL"]
    assert env["CELERY_BROKER_URL"].startswith("amqp://") and "@rabbitmq:5672/" in env["CELERY_BROKER_URL"]
    assert env["S3_ENDPOINT_URL"] == "http://minio:9000"


def test_app_services_wait_for_healthy_dependencies():
    for service in ("web", "worker-gpu", "worker-cpu", "beat"):
        depends = SERVICES[service]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["rabbitmq"]["condition"] == "service_healthy"
        assert depends["migrate"]["condition"] == "service_completed_successfully"


def test_rabbitmq_consumer_timeout_outlasts_the_longest_task():
    args = SERVICES["rabbitmq"]["environment"]["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"]
    timeout_ms = int(re.search(r"consumer_timeout (\d+)", args).group(1))
    assert timeout_ms >= 24 * 3600 * 1000


def docker_stage(name: str) -> str:
    dockerfile = (REPO / "Dockerfile").read_text()
    return dockerfile.split(f" AS {name}\n", 1)[1].split("\nFROM ", 1)[0]


def test_dockerfile_targets_match_compose():
    dockerfile = (REPO / "Dockerfile").read_text()
    targets = set(re.findall(r"^FROM \S+ AS (\w+)$", dockerfile, flags=re.MULTILINE))
    assert {"cpu", "gpu"} <= targets
    built = {SERVICES[service]["build"]["target"] for service in SERVICES if "build" in SERVICES[service]}
    assert built == {"cpu", "gpu"}


@pytest.mark.parametrize(("stage", "lock"), [("cpu", "requirements.txt"), ("gpu", "requirements-gpu.txt")])
def test_each_image_installs_exactly_one_lock_with_hash_checking(stage, lock):
    base, own = docker_stage("base"), docker_stage(stage)
    assert "pip install --no-deps --require-hashes -r requirements-uv.txt" in base
    assert "UV_COMPILE_BYTECODE=1" in base
    assert re.search(rf"uv pip sync --require-hashes (--find-links \S+ )?{re.escape(lock)}$", own, flags=re.MULTILINE)
    installs = re.findall(r"(?:pip install|uv pip \w+)[^\n&]*", base + own)
    assert len(installs) == 2, f"the {stage} image installs more than the lock: {installs}"
    assert ("whl/cpu" in own) == (stage == "cpu")


def test_docker_build_context_leaves_out_the_local_environment():
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".venv", "var", ".git"} <= set(ignored)


def test_runstack_gives_each_gpu_queue_process_its_share_of_the_cores(monkeypatch):
    from webapp.stack.management.commands.runstack import Command

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert Command._environment("worker-gpu", {"gpu": 2, "cpu": 2})["OMP_NUM_THREADS"] == "4"
    assert Command._environment("worker-gpu", {"gpu": 16, "cpu": 2})["OMP_NUM_THREADS"] == "1"
    assert "OMP_NUM_THREADS" not in Command._environment("worker-cpu", {"gpu": 2, "cpu": 2})
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's choice stands
    assert Command._environment("worker-gpu", {"gpu": 2, "cpu": 2})["OMP_NUM_THREADS"] == "3"

"""Settings come from the environment; production values pass Django's deploy checks."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": "x7#kq0-production-like-secret-" + "a1b2c3d4e5" * 5,
    "ALLOWED_HOSTS": "frontier.example.org",
    "FRONTIER_HTTPS": "true",
    "DATABASE_URL": "postgres://frontier:pw@db.internal:5432/frontier",
    "CELERY_BROKER_URL": "amqp://frontier:pw@mq.internal:5672//",
}


def run_manage(args, env_overrides, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "S3_BUCKET"}}
    env.update({"FRONTIER_VAR_DIR": str(tmp_path / "var"), "DJANGO_SETTINGS_MODULE": "webapp.settings"})
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_passes_with_production_settings(tmp_path):
    result = run_manage(["check", "--deploy", "--fail-level", "WARNING"], PRODUCTION_ENV, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_flags_the_embedded_default_for_production(tmp_path):
    result = run_manage(["check", "--deploy", "--fail-level", "WARNING"], {}, tmp_path)
    assert result.returncode != 0
    assert "SECURE_SSL_REDIRECT" in result.stderr or "security.W008" in result.stderr


def test_production_values_select_postgresql_and_rabbitmq(tmp_path):
    code = (
        "from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, s.DEBUG, s.SECURE_SSL_REDIRECT)"
    )
    result = run_manage(["shell", "-c", code], PRODUCTION_ENV, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-4:] == [
        "django.db.backends.postgresql", "amqp://frontier:pw@mq.internal:5672//", "False", "True",
    ]


def test_embedded_default_is_sqlite_in_wal_mode_and_the_filesystem_broker(tmp_path):
    code = (
        "from django.conf import settings as s; from django.db import connection;"
        "c = connection.cursor(); c.execute('PRAGMA journal_mode'); mode = c.fetchone()[0];"
        "print(connection.vendor, mode, s.CELERY_BROKER_URL, s.CELERY_BROKER_TRANSPORT_OPTIONS['data_folder_in'])"
    )
    result = run_manage(["shell", "-c", code], {}, tmp_path)
    assert result.returncode == 0, result.stderr
    vendor, mode, broker, folder = result.stdout.split()[-4:]
    assert (vendor, mode, broker) == ("sqlite", "wal", "filesystem://localhost//")
    assert folder == str(tmp_path / "var" / "broker" / "queue")
    assert (tmp_path / "var" / "frontier.sqlite3").exists()
    assert (tmp_path / "var" / "secret_key").stat().st_mode & 0o077 == 0

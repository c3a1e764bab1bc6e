"""The checkpoint page's reproduce command, pasted into a shell: it downloads the checkpoint's files
from a real gunicorn (curl | tar) and evaluates them with `python -m evaluation run`, printing the
results. Also: the .tar download streams from S3-compatible storage (moto's S3 server) as from disk."""

import io
import json
import os
import subprocess
import sys
import tarfile
from html import unescape
from pathlib import Path

import boto3
import pytest
import requests
from django.core.files import File
from django.core.files.storage import default_storage
from django.test import Client, override_settings
from frontier_processes import REPO, free_port

from webapp.leaderboard.services import benchmark_results_record
from webapp.registry.models import Benchmark, BenchmarkSuite, Checkpoint, CheckpointStatus, Compressor, LanguageModel
from webapp.registry.services import run_start

pytestmark = pytest.mark.integration

STAMP = {"device": "cpu", "device_name": "x86_64", "batch_size": 2, "model_args": {"checkpoint": "/worker/path"}}


def tiny_checkpoint_files(folder: Path) -> Path:
    subprocess.run([sys.executable, "-m", "evaluation", "make-tiny", "--out", str(folder), "--compressor", "avgpool",
                    "--tokens", "4"], cwd=REPO, check=True, capture_output=True, timeout=300)
    return folder


def stored_checkpoint(folder: Path) -> Checkpoint:
    """A public ready checkpoint with `folder`'s files in the default storage, evaluated (2 items per
    benchmark) on the synthetic suite as a worker records it."""
    llm, _ = LanguageModel.objects.get_or_create(name="tiny-qwen2", n_params=100_000, revision="",
                                                 defaults={"family": "qwen2"})
    compressor, _ = Compressor.objects.get_or_create(method="avgpool", version="1")
    checkpoint = Checkpoint.objects.create(name="tiny avgpool V=4", llm=llm, compressor=compressor, visual_tokens=4,
                                           status=CheckpointStatus.READY, visibility="public", sha256="ef" * 32)
    prefix = f"checkpoints/{checkpoint.pk}/files"
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        with open(path, "rb") as handle:
            default_storage.save(f"{prefix}/{path.relative_to(folder).as_posix()}", File(handle))
    Checkpoint.objects.filter(pk=checkpoint.pk).update(files_prefix=prefix)
    run = run_start(checkpoint=checkpoint, suite=BenchmarkSuite.objects.get(name="synthetic"), limit=2)
    for key in ("shapes", "glyphs"):
        benchmark_results_record(
            run=run, benchmark=Benchmark.objects.get(suite=run.suite, key=key),
            metrics=[{"metric": "exact_match", "value": 0.5, "stderr": 0.5, "n": 2}], raw={}, stamp=STAMP,
        )
    return checkpoint


def test_the_pasted_reproduce_command_downloads_and_evaluates_the_checkpoint(start_web, local_media, tmp_path):
    checkpoint = stored_checkpoint(tiny_checkpoint_files(tmp_path / "made"))
    url = start_web({"MEDIA_ROOT": str(local_media)})

    html = requests.get(f"{url}/checkpoints/{checkpoint.pk}/", timeout=30).text
    command = unescape(html.split('<code class="reproduce-command">')[1].split("</code>")[0])
    assert command.startswith(f"curl -fL {url}/api/v1/checkpoints/{checkpoint.pk}/archive/ | tar -x && ")

    # A user's shell in an empty folder, with Frontier's environment activated (its python first on PATH).
    work = tmp_path / "user"
    work.mkdir()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run(["bash", "-c", command], cwd=work, env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]

    unpacked = work / f"checkpoint-{checkpoint.pk}"
    assert sorted(p.name for p in unpacked.iterdir()) == sorted(p.name for p in (tmp_path / "made").iterdir())
    outcome = json.loads(done.stdout)
    assert outcome["tasks"] == ["glyphs", "shapes"]
    assert set(outcome["raw_results"]["results"]) == {"glyphs", "shapes"}
    assert outcome["stamp"]["batch_size"] == 2 and outcome["stamp"]["model_args"]["limit"] == 2
    assert {row["n"] for row in outcome["rows"]} == {2}  # the run's two items per benchmark


@pytest.fixture
def s3_storage():
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    credentials = {"aws_access_key_id": "frontier-test", "aws_secret_access_key": "frontier-test-secret"}
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **credentials).create_bucket(Bucket="ckpts")
    storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {"bucket_name": "ckpts", "endpoint_url": endpoint, "region_name": "us-east-1",
                    "access_key": credentials["aws_access_key_id"], "secret_key": credentials["aws_secret_access_key"],
                    "addressing_style": "path", "file_overwrite": False},
    }
    with override_settings(STORAGES={"default": storage,
                                     "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}):
        yield
    server.stop()


def test_the_archive_streams_from_s3_compatible_storage(transactional_db, s3_storage, tmp_path):
    folder = tmp_path / "files"
    (folder / "sub").mkdir(parents=True)
    files = {"config.json": b"{}", "model.safetensors": os.urandom(3 * 1024 * 1024 + 5), "sub/extra.txt": b"x"}
    for name, content in files.items():
        (folder / name).write_bytes(content)
    llm, _ = LanguageModel.objects.get_or_create(name="tiny", n_params=1000, revision="", defaults={"family": "t"})
    checkpoint = Checkpoint.objects.create(name="in s3", llm=llm, status=CheckpointStatus.READY, visibility="public")
    prefix = f"checkpoints/{checkpoint.pk}/files"
    for name in files:
        with open(folder / name, "rb") as handle:
            default_storage.save(f"{prefix}/{name}", File(handle))
    Checkpoint.objects.filter(pk=checkpoint.pk).update(files_prefix=prefix)

    response = Client().get(f"/api/v1/checkpoints/{checkpoint.pk}/archive/")
    body = b"".join(response.streaming_content)
    assert response.status_code == 200 and int(response["Content-Length"]) == len(body)
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        got = {member.name.split("/", 1)[1]: archive.extractfile(member).read() for member in archive.getmembers()}
    assert got == files
    one = Client().get(f"/api/v1/checkpoints/{checkpoint.pk}/files/model.safetensors")
    assert b"".join(one.streaming_content) == files["model.safetensors"]

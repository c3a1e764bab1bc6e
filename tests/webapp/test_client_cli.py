"""`python -m webapp.client` against a real gunicorn (and, for --wait, a real Celery worker).

The resume tests break real connections: a requests adapter cuts the second chunk's body half-way
(the server sees the connection drop) or loses the answer to a chunk the server stored."""

import csv
import io
import json
import os
import subprocess
import sys
import tarfile

import pytest
import requests
from django.contrib.auth import get_user_model
from frontier_processes import REPO
from requests.adapters import HTTPAdapter

from webapp.client.api import Api, error_message
from webapp.client.cli import main
from webapp.client.upload import file_sha256, pack_folder, upload_archive
from webapp.registry.models import Checkpoint

integration = pytest.mark.integration


def run_client(*args: str, url: str = "http://127.0.0.1:9", token: str | None = None, timeout: float = 300,
               input: str | None = None):
    env = {key: value for key, value in os.environ.items() if key not in ("FRONTIER_TOKEN", "FRONTIER_URL")}
    env["FRONTIER_URL"] = url
    if token is not None:
        env["FRONTIER_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "webapp.client", *args], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=timeout, input=input,
    )


@pytest.fixture
def tiny_folder(tmp_path):
    from evaluation.tiny import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path / "tiny-avgpool", compressor="avgpool", tokens=4, seed=0)


@pytest.fixture
def alice_token(transactional_db):
    from webapp.accounts.services import api_token_create

    _, token = api_token_create(user=get_user_model().objects.create_user("alice"))
    return token


@pytest.fixture
def web(start_web, local_media):
    return start_web({"MEDIA_ROOT": str(local_media)})


# --- without a server ------------------------------------------------------------------------


def test_the_client_imports_no_django():
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import webapp.client.cli, webapp.client.upload"],
        cwd=REPO, capture_output=True, text=True, check=True,
    )
    modules = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "requests" in modules and "tqdm" in modules
    assert not {name for name in modules if name.split(".")[0] in ("django", "rest_framework", "celery", "torch")}


def test_without_a_token_it_exits_2_and_says_how_to_give_one(monkeypatch, capsys):
    monkeypatch.delenv("FRONTIER_TOKEN", raising=False)
    assert main(["status", "1"]) == 2
    assert "set FRONTIER_TOKEN or pass --token" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["submit", "missing-folder", "--name", "x"], "does not exist"),
        (["submit", "README.md", "--name", "x"], "is not a checkpoint archive"),
        (["submit", "webapp", "--name", "x", "--limit", "4"], "--limit needs at least one --suite"),
        (["status", "1"], "Cannot reach the Frontier server at http://127.0.0.1:9"),
    ],
)
def test_usage_and_configuration_errors_exit_2_with_the_reason(args, message):
    done = run_client(*args, token="frt_unused")
    assert done.returncode == 2 and message in done.stderr, done.stderr


def test_a_folder_packs_to_the_same_archive_twice_with_links_followed(tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (tmp_path / "blob").write_bytes(b"weights")
    (folder / "model.safetensors").symlink_to(tmp_path / "blob")
    (folder / "config.json").write_text("{}")
    first = pack_folder(folder, tmp_path)
    digest = file_sha256(first)
    (tmp_path / "again").mkdir()
    assert file_sha256(pack_folder(folder, tmp_path / "again")) == digest
    with tarfile.open(first) as tar:
        member = tar.getmember("ckpt/model.safetensors")
        assert member.isfile() and tar.extractfile(member).read() == b"weights"


def test_error_messages_are_the_servers_own():
    def response(status: int, body: bytes, content_type: str) -> requests.Response:
        made = requests.Response()
        made.status_code, made._content, made.headers["Content-Type"] = status, body, content_type
        return made

    assert error_message(response(401, b'{"detail": "Invalid token."}', "application/json")) == "Invalid token."
    fields = error_message(response(400, b'{"name": ["This field is required."]}', "application/json"))
    assert fields == "name: This field is required."
    assert error_message(response(500, b"<html><title>Server Error (500)</title></html>", "text/html")) == (
        "Server Error (500)"
    )


# --- against gunicorn ------------------------------------------------------------------------


@integration
def test_submit_wait_prints_results_then_status_and_results_read_them(
    web, alice_token, start_worker, process_env, local_media, tiny_folder
):
    start_worker("w1", queues="cpu,gpu-eval", env={**process_env, "MEDIA_ROOT": str(local_media)})

    done = run_client("submit", str(tiny_folder), "--name", "tiny avgpool", "--suite", "synthetic", "--limit", "4",
                      "--wait", "--poll", "0.5", url=web, token=alice_token)

    assert done.returncode == 0, done.stdout + done.stderr
    first_line = done.stdout.splitlines()[0]
    assert first_line.startswith("uploaded as checkpoint ")
    checkpoint_id = int(first_line.split()[3])
    assert "V = 4 visual tokens, compressor avgpool" in done.stdout
    assert "synthetic (limit 4 per benchmark): succeeded, 8/8 items" in done.stdout
    table = done.stdout[done.stdout.index("benchmark"):]
    assert "shapes" in table and "glyphs" in table and "exact_match" in table

    as_csv = run_client("results", str(checkpoint_id), "--format", "csv", url=web, token=alice_token)
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert as_csv.returncode == 0 and {row["benchmark"] for row in rows} == {"shapes", "glyphs"}
    assert all(0.0 <= float(row["value"]) <= 1.0 and row["n"] == "4" for row in rows if row["metric"] == "exact_match")
    as_json = json.loads(run_client("results", str(checkpoint_id), "--format", "json", url=web, token=alice_token).stdout)
    assert sorted(row["id"] for row in as_json) == sorted(int(row["id"]) for row in rows)

    status = run_client("status", str(checkpoint_id), url=web, token=alice_token)
    assert status.returncode == 0 and f"checkpoint {checkpoint_id} 'tiny avgpool': ready" in status.stdout
    assert "synthetic (limit 4 per benchmark): succeeded" in status.stdout

    again = run_client("submit", str(tiny_folder), "--name", "same files", url=web, token=alice_token)
    assert again.returncode == 0
    assert f"already registered as checkpoint {checkpoint_id} ({web}/api/v1/checkpoints/{checkpoint_id}/)" in again.stdout


class BreaksTheSecondChunk(HTTPAdapter):
    """A real fault on the wire: the second PUT's body stops half-way and the connection drops
    ("cut"), or the chunk arrives whole and its answer is lost ("lost answer")."""

    def __init__(self, fault: str):
        super().__init__()
        self.fault = fault
        self.calls: list[str] = []

    def send(self, request, **kwargs):
        self.calls.append(request.method)
        if request.method == "PUT" and self.calls.count("PUT") == 2:
            if self.fault == "cut":
                request.body = HalfThenReset(request.body)
            else:
                super().send(request, **kwargs).close()
                raise requests.ConnectionError("the answer to this chunk was lost")
        return super().send(request, **kwargs)


class HalfThenReset:
    def __init__(self, body):
        self.body, self.half = body, len(body) // 2

    def __iter__(self):
        sent = 0
        for block in self.body:
            room = self.half - sent
            if room < len(block):
                yield block[:room]
                raise ConnectionResetError("connection dropped half-way through the chunk")
            yield block
            sent += len(block)


@integration
@pytest.mark.parametrize("fault, puts", [("cut", 5), ("lost answer", 4)])
def test_an_upload_resumes_from_the_servers_offset_after_a_dropped_connection(
    web, alice_token, local_media, tmp_path, fault, puts
):
    archive = tmp_path / "ckpt.tar"
    payload = os.urandom(4 * 64 * 1024 - 100)  # four chunks of 64 KiB, the last one short
    archive.write_bytes(payload)
    adapter = BreaksTheSecondChunk(fault)
    session = requests.Session()
    session.mount("http://", adapter)
    api = Api(web, alice_token, session=session, retry_delay=0.05)

    checkpoint, created = upload_archive(
        api, archive, sha256=file_sha256(archive), name="resumed", suites=[], chunk_size=64 * 1024, progress=False
    )

    assert created and checkpoint["size_bytes"] == len(payload)
    assert adapter.calls.count("PUT") == puts and adapter.calls.count("GET") == 1  # one offset query
    files_prefix = Checkpoint.objects.get(pk=checkpoint["id"]).files_prefix
    assert (local_media / files_prefix).read_bytes() == payload


@integration
def test_a_bad_token_is_refused_with_the_servers_message(web, alice_token, tiny_folder):
    status = run_client("status", "1", url=web, token="frt_not-a-real-token")
    assert status.returncode == 2 and "401" in status.stderr and "Invalid token." in status.stderr
    submit = run_client("submit", str(tiny_folder), "--name", "x", url=web, token="frt_not-a-real-token")
    assert submit.returncode == 2 and "Invalid token." in submit.stderr and "uploading" not in submit.stderr
    missing = run_client("status", "999999", url=web, token=alice_token)
    assert missing.returncode == 1 and "404" in missing.stderr



def test_spec_files_that_cannot_be_read_or_parsed_exit_2(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    for path, message in ((tmp_path / "missing.json", "cannot read the spec"), (broken, "is not JSON"),
                          (listed, "must be a JSON object")):
        result = run_client("train", str(path), token="frt_x")
        assert result.returncode == 2 and message in result.stderr, result.stderr


@integration
def test_train_and_sweep_queue_runs_and_bad_specs_get_the_servers_reasons(web, alice_token, tmp_path):
    from webapp.training.models import TrainingRun

    spec = {"name": "tiny avgpool V=4", "base": {"tiny": {"llm_hidden": 32, "llm_layers": 1}},
            "compressor": "avgpool", "tokens": 4, "dataset": {"kind": "synthetic-shapes", "count": 32},
            "hyperparameters": {"batch_size": 4, "max_steps": 3}, "suites": ["synthetic"], "eval_limit": 4}
    (tmp_path / "train.json").write_text(json.dumps(spec))
    trained = run_client("train", str(tmp_path / "train.json"), url=web, token=alice_token)
    assert trained.returncode == 0, trained.stderr
    run = TrainingRun.objects.get(name="tiny avgpool V=4")
    assert f"training {run.pk} queued" in trained.stderr and "queued, step 0/" in trained.stdout

    bad = {**spec, "compressor": "quecc", "tokens": 5}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    refused = run_client("train", str(tmp_path / "bad.json"), url=web, token=alice_token)
    assert refused.returncode == 1 and "400" in refused.stderr and "5" in refused.stderr, refused.stderr

    grid = {key: value for key, value in spec.items() if key not in ("compressor", "tokens", "base")}
    grid.update(name="grid", bases=[{"tiny": {"llm_hidden": 32, "llm_layers": 1}}], compressors=["avgpool"],
                tokens=[1, 4])
    swept = run_client("sweep", "-", url=web, token=alice_token, input=json.dumps(grid))
    assert swept.returncode == 0, swept.stderr
    assert "with 2 trainings" in swept.stderr and swept.stdout.count("queued, step 0/") == 2
    assert TrainingRun.objects.filter(sweep__name="grid").count() == 2

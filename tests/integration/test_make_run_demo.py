"""`make run`'s command (`manage.py runstack`) on a fresh var folder: it prints the URL and the demo
credentials first, starts web, a worker for the GPU queues, one for the cpu queue and beat, submits the
demo sweep through the REST API, validates an upload while the sweep's trainings run, and stops everything
on Ctrl-C."""

import re
import signal
import socket
import subprocess
import sys

import pytest
import requests
from django.db.models import Q
from frontier_processes import REPO, ProcessGroup, free_port, wait_for

from webapp.stack.demo import DEMO_SWEEP_NAME
from webapp.jobs.models import Job, JobState
from webapp.registry.models import Checkpoint, CheckpointStatus
from webapp.registry.services import VALIDATE_TASK
from webapp.training.models import Sweep
from webapp.training.services import TRAIN_TASK

pytestmark = pytest.mark.integration


def test_runstack_prints_credentials_and_submits_the_demo_sweep(process_env, tmp_path):
    port = free_port()
    env = {**process_env, "FRONTIER_VAR_DIR": str(tmp_path / "var"), "MEDIA_ROOT": str(tmp_path / "media")}
    stack = ProcessGroup(
        "runstack", [sys.executable, "manage.py", "runstack", "--port", str(port), "--concurrency", "1"],
        env, tmp_path / "runstack.log",
    )
    try:
        wait_for(lambda: "Demo sweep submitted" in stack.output() or stack.proc.poll() is not None,
                 timeout=300, interval=1, message="the demo sweep to be submitted")
        output = stack.output()
        assert "Demo sweep submitted" in output, output[-4000:]
        credentials = output.index("Demo login: demo / frontier-demo")
        assert output.index(f"http://127.0.0.1:{port}/") < credentials < output.index("Demo sweep submitted")
        token = re.search(r"API token: (frt_\S+)", output).group(1)

        assert Checkpoint.objects.filter(published=True).count() == 28
        sweep = Sweep.objects.get(name=DEMO_SWEEP_NAME)
        assert sweep.runs.count() == 3 * 2 * 4
        api = requests.get(f"http://127.0.0.1:{port}/api/v1/sweeps/", headers={"Authorization": f"Token {token}"},
                           timeout=30)
        assert api.status_code == 200 and DEMO_SWEEP_NAME in api.text
        login = requests.Session()
        page = login.get(f"http://127.0.0.1:{port}/accounts/login/", timeout=30)
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        answer = login.post(f"http://127.0.0.1:{port}/accounts/login/", timeout=30, allow_redirects=False,
                            data={"username": "demo", "password": "frontier-demo", "csrfmiddlewaretoken": csrf},
                            headers={"Referer": f"http://127.0.0.1:{port}/accounts/login/"})
        assert answer.status_code == 302, answer.text[:500]
        host = socket.gethostname()
        assert f"gpu@{host} ready." in output and f"cpu@{host} ready." in output, output[-4000:]

        validation = upload_while_trainings_run(f"http://127.0.0.1:{port}/", token, tmp_path, process_env)
        assert Checkpoint.objects.get(pk=validation.params["checkpoint_id"]).status == CheckpointStatus.READY
        started = validation.started_at
        trainings = Job.objects.filter(task_name=TRAIN_TASK)
        running_then = trainings.filter(started_at__lte=started).filter(Q(finished_at__isnull=True) | Q(finished_at__gt=started))
        waiting_then = trainings.filter(queued_at__lt=validation.queued_at).filter(
            Q(started_at__isnull=True) | Q(started_at__gt=started))
        assert running_then.exists(), "the validation started while no training ran"
        assert waiting_then.exists(), "the validation started only after every training queued before it"
    finally:
        stack.signal(signal.SIGINT)
        try:
            stack.proc.wait(timeout=60)
        finally:
            stack.stop()
    assert "Stopped web, workers and beat." in stack.log_path.read_text()


def upload_while_trainings_run(url: str, token: str, tmp_path, process_env) -> Job:
    """Once a training of the sweep runs (with others queued), upload a tiny checkpoint with the CLI and
    wait for its validation to succeed; returns the validation job."""
    from evaluation.tiny import make_tiny_checkpoint

    folder = make_tiny_checkpoint(tmp_path / "tiny", compressor="avgpool", tokens=4, seed=0)
    wait_for(lambda: Job.objects.filter(task_name=TRAIN_TASK, state=JobState.RUNNING).exists()
             and Job.objects.filter(task_name=TRAIN_TASK, state=JobState.QUEUED).exists(),
             timeout=300, interval=1, message="a training to run while others wait")
    cli = subprocess.run(
        [sys.executable, "-m", "webapp.client", "submit", str(folder), "--name", "uploaded beside the sweep", "--quiet"],
        env={**process_env, "FRONTIER_URL": url, "FRONTIER_TOKEN": token}, cwd=REPO,
        capture_output=True, text=True, timeout=300,
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    checkpoint = Checkpoint.objects.get(name="uploaded beside the sweep")
    validation = wait_for(
        lambda: Job.objects.filter(task_name=VALIDATE_TASK, params__checkpoint_id=checkpoint.pk,
                                   state=JobState.SUCCEEDED).first(),
        timeout=300, interval=1, message="the upload's validation to succeed",
    )
    return validation

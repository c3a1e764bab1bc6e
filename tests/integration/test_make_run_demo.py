"""`make run`'s command (`manage.py runstack`) on a fresh var folder: it prints the URL and the demo
credentials first, starts web + worker + beat, submits the demo sweep through the REST API, and
stops everything on Ctrl-C."""

import re
import signal
import sys

import pytest
import requests
from frontier_processes import ProcessGroup, free_port, wait_for

from webapp.core.demo import DEMO_SWEEP_NAME
from webapp.registry.models import Checkpoint
from webapp.training.models import Sweep

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
    finally:
        stack.signal(signal.SIGINT)
        try:
            stack.proc.wait(timeout=60)
        finally:
            stack.stop()
    assert "Stopped web, worker and beat." in stack.log_path.read_text()

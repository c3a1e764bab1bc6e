"""Public means public (issue #13): public checkpoint, evaluation, training and sweep pages, and their
API reads, open to anyone; private ones only to their owner (registry.selectors.visible_to_owner, the
one rule); a checkpoint's files download (one file or a streamed .tar) for whoever may see it; the
reproduce command downloads that .tar and names the run's settings; the sign-up page is off unless
FRONTIER_SIGNUP_ENABLED. Running the command for real: tests/integration/test_reproduce_command.py."""

import io
import json
import re
import shlex
import tarfile

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from rest_framework.test import APIClient
from test_pages_views import evaluated_checkpoint, logged_in, queued_training, text_of

from webapp.accounts.services import SignupClosed, user_sign_up
from webapp.registry.models import Checkpoint, CheckpointStatus, EvaluationRun, LanguageModel
from webapp.registry.selectors import visible_to_owner
from webapp.training.models import Sweep, TrainingRun

pytestmark = pytest.mark.django_db

FILES = {"config.json": b'{"model_type": "frontier_vlm"}', "model.safetensors": b"\x01\x02" * 40_000,
         "sub/tokenizer.json": b"{}"}


@pytest.fixture(autouse=True)
def fresh(settings, local_media):
    settings.FRONTIER_DATA_VERSION_MAX_AGE_SECONDS = 0
    cache.clear()
    yield
    cache.clear()


def with_files(checkpoint: Checkpoint) -> Checkpoint:
    """Store files for a checkpoint where validation leaves them (checkpoints/<id>/files/)."""
    prefix = f"checkpoints/{checkpoint.pk}/files"
    for name, content in FILES.items():
        default_storage.save(f"{prefix}/{name}", ContentFile(content))
    Checkpoint.objects.filter(pk=checkpoint.pk).update(files_prefix=prefix, sha256="cd" * 32)
    checkpoint.refresh_from_db()
    return checkpoint


def published_checkpoint() -> Checkpoint:
    llm, _ = LanguageModel.objects.get_or_create(name="paper-0.5b", n_params=500_000_000, revision="published",
                                                 defaults={"family": "qwen"})
    return Checkpoint.objects.create(name="paper entry", published=True, visibility="public", llm=llm,
                                     status=CheckpointStatus.READY, citation="Li et al.")


# --- The one visibility rule ----------------------------------------------------------------------


def test_the_visibility_rule_gives_anonymous_visitors_the_public_rows_only(alice, synthetic):
    from django.contrib.auth.models import AnonymousUser

    mine, _ = evaluated_checkpoint(synthetic, alice, name="private one")
    public, _ = evaluated_checkpoint(synthetic, alice, name="public one")
    hidden, _ = evaluated_checkpoint(synthetic, alice, name="hidden one")
    Checkpoint.objects.filter(pk=public.pk).update(visibility="public")
    Checkpoint.objects.filter(pk=hidden.pk).update(visibility="public", hidden=True)

    def names(user):
        return set(Checkpoint.objects.filter(visible_to_owner(user)).values_list("name", flat=True))

    assert names(AnonymousUser()) == {"public one"}
    assert names(alice) == {"private one", "public one", "hidden one"}


# --- Pages ------------------------------------------------------------------------------------------


def test_anonymous_visitors_read_public_pages_without_the_owners_buttons(alice, synthetic):
    checkpoint, run = evaluated_checkpoint(synthetic, alice, name="open tiny")
    Checkpoint.objects.filter(pk=checkpoint.pk).update(visibility="public")
    anonymous = Client()

    page = anonymous.get(f"/checkpoints/{checkpoint.pk}/")
    assert page.status_code == 200
    text = text_of(page)
    assert "open tiny" in text and "exact_match = 0.8" in text and "Cancel run" not in text and "Log in" in text
    evaluation = anonymous.get(f"/evaluations/{run.pk}/")
    assert evaluation.status_code == 200 and "Cancel run" not in text_of(evaluation)
    assert "Cancel run" in text_of(logged_in(alice).get(f"/evaluations/{run.pk}/"))


def test_an_owners_private_pages_send_anonymous_visitors_to_log_in_and_others_to_a_404(alice, bob, synthetic):
    checkpoint, run = evaluated_checkpoint(synthetic, alice)  # private
    training = queued_training(alice, "private run")
    sweep = Sweep.objects.create(owner=alice, name="private grid", grid={"visibility": "private"})
    paths = [f"/checkpoints/{checkpoint.pk}/", f"/evaluations/{run.pk}/", f"/trainings/{training.pk}/",
             f"/sweeps/{sweep.pk}/"]
    for path in [*paths, "/checkpoints/999999/"]:  # a missing one looks the same: nothing is given away
        response = Client().get(path)
        assert response.status_code == 302 and response["Location"] == f"/accounts/login/?next={path}", path
    for path in paths:
        assert logged_in(bob).get(path).status_code == 404, path
        assert logged_in(alice).get(path).status_code == 200, path


def test_public_training_and_sweep_pages_open_to_anyone_without_the_cancel_button(alice, synthetic):
    sweep = Sweep.objects.create(owner=alice, name="open grid", grid={"visibility": "public"})
    point = queued_training(alice, "open grid / point", sweep=sweep)
    TrainingRun.objects.filter(pk=point.pk).update(visibility="public")
    anonymous = Client()

    page = anonymous.get(f"/trainings/{point.pk}/").content.decode()
    assert "open grid / point" in page and 'id="cancel-training"' not in page
    assert 'id="cancel-training"' in logged_in(alice).get(f"/trainings/{point.pk}/").content.decode()
    sweep_page = anonymous.get(f"/sweeps/{sweep.pk}/").content.decode()
    assert f'<tr data-training-id="{point.pk}">' in sweep_page
    # The page's loss curve polls the API, which answers anonymous visitors too.
    assert APIClient().get(f"/api/v1/trainings/{point.pk}/").json()["name"] == "open grid / point"
    assert APIClient().get(f"/api/v1/sweeps/{sweep.pk}/").status_code == 200
    assert APIClient().post(f"/api/v1/trainings/{point.pk}/cancel/").status_code in (401, 403)
    assert APIClient().get("/api/v1/trainings/").status_code in (401, 403)  # lists are "your runs"


def test_nobody_but_staff_manages_an_ownerless_checkpoint(synthetic):
    """Published entries have no owner: an anonymous visitor (whose id is None too) is not it."""
    entry = published_checkpoint()
    run = EvaluationRun.objects.create(checkpoint=entry, suite=synthetic)
    assert "Cancel" not in text_of(Client().get(f"/evaluations/{run.pk}/"))
    assert Client().get(f"/checkpoints/{entry.pk}/").status_code == 200


# --- API reads -------------------------------------------------------------------------------------


def test_the_api_reads_follow_the_same_rule(alice, bob, synthetic, client_for):
    public, run = evaluated_checkpoint(synthetic, alice, name="open tiny")
    Checkpoint.objects.filter(pk=public.pk).update(visibility="public")
    private, private_run = evaluated_checkpoint(synthetic, alice, name="closed tiny")
    anonymous = APIClient()

    assert anonymous.get(f"/api/v1/checkpoints/{public.pk}/").json()["name"] == "open tiny"
    assert [row["name"] for row in anonymous.get("/api/v1/checkpoints/").json()["results"]] == ["open tiny"]
    assert anonymous.get(f"/api/v1/evaluations/{run.pk}/").status_code == 200
    assert {row["run"] for row in anonymous.get("/api/v1/results/").json()["results"]} == {run.pk}
    refused = anonymous.get(f"/api/v1/checkpoints/{private.pk}/")
    assert refused.status_code == 401 and "authenticate" in refused.json()["detail"]
    assert anonymous.get(f"/api/v1/evaluations/{private_run.pk}/").status_code == 401
    assert client_for(bob).get(f"/api/v1/checkpoints/{private.pk}/").status_code == 404
    assert anonymous.delete(f"/api/v1/checkpoints/{public.pk}/").status_code == 401  # writes still need a login
    assert anonymous.post("/api/v1/evaluations/", {"checkpoint": public.pk, "suite": "synthetic"}).status_code == 401


# --- Downloads --------------------------------------------------------------------------------------


def test_the_checkpoint_page_lists_its_files_and_the_archive_holds_them(alice, synthetic):
    checkpoint = with_files(evaluated_checkpoint(synthetic, alice, name="open tiny")[0])
    Checkpoint.objects.filter(pk=checkpoint.pk).update(visibility="public")

    html = Client().get(f"/checkpoints/{checkpoint.pk}/").content.decode()
    listed = re.findall(r'<li><a href="(/api/v1/checkpoints/\d+/files/[^"]+)" download>([^<]+)</a>', html)
    assert [name for _, name in listed] == ["config.json", "model.safetensors", "sub/tokenizer.json"]
    assert f'id="download-archive" href="/api/v1/checkpoints/{checkpoint.pk}/archive/"' in html
    assert "3 files, 78.2 KB" in text_of(Client().get(f"/checkpoints/{checkpoint.pk}/"))

    for href, name in listed:
        response = Client().get(href)
        assert response.status_code == 200 and b"".join(response.streaming_content) == FILES[name]
        assert response["Content-Length"] == str(len(FILES[name]))
        assert response["Content-Disposition"] == f'attachment; filename="{name.split("/")[-1]}"'

    archive_url = APIClient().get(f"/api/v1/checkpoints/{checkpoint.pk}/").json()["archive_url"]
    assert archive_url == f"http://testserver/api/v1/checkpoints/{checkpoint.pk}/archive/"
    response = Client().get(f"/api/v1/checkpoints/{checkpoint.pk}/archive/")
    body = b"".join(response.streaming_content)
    assert response.status_code == 200 and response["Content-Type"] == "application/x-tar"
    assert int(response["Content-Length"]) == len(body)
    assert response["Content-Disposition"] == f'attachment; filename="checkpoint-{checkpoint.pk}.tar"'
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:  # the standard library reads what we wrote
        members = {member.name: archive.extractfile(member).read() for member in archive.getmembers()}
    assert members == {f"checkpoint-{checkpoint.pk}/{name}": content for name, content in FILES.items()}


def test_files_download_only_for_those_who_may_see_the_checkpoint(alice, bob, synthetic, client_for):
    checkpoint = with_files(evaluated_checkpoint(synthetic, alice)[0])  # private
    archive = f"/api/v1/checkpoints/{checkpoint.pk}/archive/"
    one = f"/api/v1/checkpoints/{checkpoint.pk}/files/config.json"
    for path in (archive, one):
        assert APIClient().get(path).status_code == 401
        assert client_for(bob).get(path).status_code == 404
        assert client_for(alice).get(path).status_code == 200
    logged = logged_in(alice)  # the page's links use the session
    assert logged.get(one).status_code == 200
    unknown = client_for(alice).get(f"/api/v1/checkpoints/{checkpoint.pk}/files/../secret")
    assert unknown.status_code == 404 and "has no file" in unknown.json()["detail"]


def test_a_checkpoint_without_files_says_why_there_is_nothing_to_download(alice, synthetic, client_for):
    entry = published_checkpoint()
    response = APIClient().get(f"/api/v1/checkpoints/{entry.pk}/archive/")
    assert response.status_code == 404 and "a published result has no files" in response.json()["detail"]
    assert 'id="checkpoint-files"' not in Client().get(f"/checkpoints/{entry.pk}/").content.decode()
    waiting = Checkpoint.objects.create(owner=alice, name="uploaded", files_prefix="checkpoints/x/upload/a.tar")
    detail = client_for(alice).get(f"/api/v1/checkpoints/{waiting.pk}/archive/").json()["detail"]
    assert "it is uploaded: files are kept once a checkpoint is validated (ready)" in detail


# --- The reproduce command --------------------------------------------------------------------------


def reproduce_commands(html: str) -> list[str]:
    from html import unescape

    return [unescape(command) for command in re.findall(r'<code class="reproduce-command">([^<]+)</code>', html)]


def test_the_reproduce_command_downloads_the_checkpoint_and_runs_the_evaluation_with_the_runs_settings(
    alice, synthetic, tmp_path
):
    checkpoint, run = evaluated_checkpoint(synthetic, alice, name="open tiny")
    with_files(checkpoint)
    Checkpoint.objects.filter(pk=checkpoint.pk).update(visibility="public")
    EvaluationRun.objects.filter(pk=run.pk).update(limit=20)

    [command] = reproduce_commands(Client().get(f"/checkpoints/{checkpoint.pk}/").content.decode())
    download, evaluate = command.split(" && ")
    fetch, unpack = download.split(" | ")
    curl = shlex.split(fetch)
    assert curl[:2] == ["curl", "-fL"] and shlex.split(unpack) == ["tar", "-x"]
    assert curl[2] == f"http://testserver/api/v1/checkpoints/{checkpoint.pk}/archive/"
    # What curl would fetch, unpacked as tar -x would: the folder the evaluation is pointed at.
    body = b"".join(Client().get(curl[2].removeprefix("http://testserver")).streaming_content)
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        archive.extractall(tmp_path, filter="data")
    argv = shlex.split(evaluate)
    assert argv[:4] == ["python", "-m", "evaluation", "run"]
    folder = tmp_path / argv[4]
    assert json.loads((folder / "config.json").read_bytes()) == {"model_type": "frontier_vlm"}
    assert argv[5:] == ["--tasks", "glyphs,shapes", "--limit", "20", "--batch-size", "8", "--json"]


def test_a_private_checkpoints_command_sends_the_users_token(alice, synthetic):
    checkpoint, _ = evaluated_checkpoint(synthetic, alice)
    with_files(checkpoint)
    [command] = reproduce_commands(logged_in(alice).get(f"/checkpoints/{checkpoint.pk}/").content.decode())
    assert command.startswith('curl -fL -H "Authorization: Token $FRONTIER_TOKEN" http://testserver/api/v1/')
    assert shlex.split(command)[3] == "Authorization: Token $FRONTIER_TOKEN"  # one word for the shell, expanded by it
    assert "set FRONTIER_TOKEN to your API token first" in text_of(logged_in(alice).get(f"/checkpoints/{checkpoint.pk}/"))


# --- Sign-up ------------------------------------------------------------------------------------------


def test_sign_up_is_off_by_default(settings):
    settings.FRONTIER_SIGNUP_ENABLED = False
    response = Client().get("/accounts/signup/")
    assert response.status_code == 404 and "FRONTIER_SIGNUP_ENABLED=true" in response.content.decode()
    assert Client().post("/accounts/signup/", {"username": "eve", "password1": "x" * 12}).status_code == 404
    assert not get_user_model().objects.filter(username="eve").exists()
    assert "/accounts/signup/" not in Client().get("/accounts/login/").content.decode()
    with pytest.raises(SignupClosed):
        user_sign_up(username="eve", password="long enough pass 7")


def test_sign_up_when_enabled_creates_an_ordinary_user_and_logs_them_in(settings):
    settings.FRONTIER_SIGNUP_ENABLED = True
    client = Client()
    form = client.get("/accounts/signup/?next=/leaderboard/")
    assert form.status_code == 200 and 'name="password2"' in form.content.decode()
    assert 'href="/accounts/signup/' in client.get("/accounts/login/").content.decode()

    weak = client.post("/accounts/signup/", {"username": "carol", "password1": "12345678", "password2": "12345678"})
    assert weak.status_code == 400 and "This password is entirely numeric." in weak.content.decode()
    assert not get_user_model().objects.filter(username="carol").exists()

    done = client.post("/accounts/signup/", {"username": "carol", "password1": "tiny vlm frontier 7",
                                             "password2": "tiny vlm frontier 7", "next": "/leaderboard/"})
    assert done.status_code == 302 and done["Location"] == "/leaderboard/"
    carol = get_user_model().objects.get(username="carol")
    assert not carol.is_staff and not carol.is_superuser and carol.check_password("tiny vlm frontier 7")
    assert "carol" in client.get("/leaderboard/", {"suite": "synthetic"}).content.decode()  # logged in
    elsewhere = Client().post("/accounts/signup/", {"username": "dave", "password1": "tiny vlm frontier 8",
                                                    "password2": "tiny vlm frontier 8", "next": "https://evil.example/"})
    assert elsewhere["Location"] == "/"  # no redirect off the site



# --- Public objects leak nothing internal (issue #15 row 12) -----------------------------------------


INTERNALS = ("gpu@test", "pid 4", "s1", "evaluated 100 items", "CUDA out of memory")


def test_a_public_evaluation_shows_others_no_workers_pids_task_ids_errors_or_log_tails(alice, bob, synthetic):
    checkpoint, run = evaluated_checkpoint(synthetic, alice)
    Checkpoint.objects.filter(pk=checkpoint.pk).update(visibility="public")
    for client in (APIClient(), logged_in_api(bob)):
        body = json.dumps(client.get(f"/api/v1/evaluations/{run.pk}/").json())
        assert not [leak for leak in ("gpu@test", '"worker_pid"', '"task_id"', "evaluated 100 items",
                                      "CUDA out of memory", '"log_tail"') if leak in body], body
        assert '"failure_class"' in body and '"outcome": "retry"' in body  # what happened, still public
    for client in (Client(), logged_in(bob)):
        page = text_of(client.get(f"/evaluations/{run.pk}/"))
        assert not [leak for leak in INTERNALS if leak in page], page
    owner = json.dumps(logged_in_api(alice).get(f"/api/v1/evaluations/{run.pk}/").json())
    assert "gpu@test" in owner and "evaluated 100 items" in owner and "CUDA out of memory" in owner
    owner_page = text_of(logged_in(alice).get(f"/evaluations/{run.pk}/"))
    assert "gpu@test (pid 4)" in owner_page and "evaluated 100 items" in owner_page


def test_a_public_training_shows_others_no_worker_or_error_text(alice, bob):
    from webapp.jobs.models import AttemptOutcome
    from webapp.jobs.services import attempt_finish, job_claim

    run = queued_training(alice, "public run")
    TrainingRun.objects.filter(pk=run.pk).update(visibility="public")
    attempt_finish(job_claim(run.job_id, task_id="t1", hostname="gpu@secret-host", pid=9), AttemptOutcome.RETRY,
                   error_class="OSError", error_message="/var/lib/frontier/training/1: disk full")
    [attempt] = APIClient().get(f"/api/v1/trainings/{run.pk}/").json()["attempts"]
    assert attempt["worker"] is None and attempt["error"] is None and attempt["outcome"] == "retry"
    [own] = logged_in_api(alice).get(f"/api/v1/trainings/{run.pk}/").json()["attempts"]
    assert own["worker"] == "gpu@secret-host" and "disk full" in own["error"]


def test_the_validation_report_keeps_no_worker_path(alice):
    checkpoint = Checkpoint.objects.create(owner=alice, name="c", status=CheckpointStatus.READY, visibility="public",
                                           validation_report={"path": "/var/lib/frontier/tmp/tmpab12/extracted",
                                                              "llm_params": 5})
    report = APIClient().get(f"/api/v1/checkpoints/{checkpoint.pk}/").json()["validation_report"]
    assert report == {"llm_params": 5}


def test_a_duplicate_of_another_users_private_checkpoint_is_not_named(alice, bob, tmp_path):
    """Validation matches a duplicate only among checkpoints the owner may see, and names only those."""
    from types import SimpleNamespace

    from webapp.registry.services import checkpoint_validate, content_duplicate

    private = Checkpoint.objects.create(owner=bob, name="bob's secret", status=CheckpointStatus.READY,
                                        visibility="private", sha256="ab" * 32)
    mine = Checkpoint.objects.create(owner=alice, name="mine", status=CheckpointStatus.UPLOADED)
    assert content_duplicate(mine, "ab" * 32) is None  # bob's private copy is not alice's business
    Checkpoint.objects.filter(pk=private.pk).update(visibility="public")
    report = SimpleNamespace(checkpoint_sha256="ab" * 32)
    outcome = checkpoint_validate(mine, fetch=lambda: (tmp_path, report), invalid=())
    mine.refresh_from_db()
    assert outcome == {"status": "duplicate", "duplicate_of": private.pk} and mine.duplicate_of_id == private.pk
    assert mine.rejection_reason == f"The same files are already registered as checkpoint {private.pk} (bob's secret)."


def logged_in_api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client

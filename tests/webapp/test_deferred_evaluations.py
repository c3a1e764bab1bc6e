"""A validated upload whose owner is at the evaluation quota becomes ready; its requested evaluations
wait with the reason shown, and the periodic reaper starts them once the owner is under the limit."""

import json

import pytest

from evaluation.tiny import make_tiny_checkpoint
from evaluation.validation import validate_checkpoint_dir
from webapp.registry.models import BenchmarkSuite, Checkpoint, CheckpointStatus, EvaluationRun
from webapp.registry.services import checkpoint_accept, deferred_evaluations_start, run_cancel, run_start

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny"), compressor="avgpool", tokens=4, llm_hidden=32)


def _accept(owner, folder, name="upload"):
    checkpoint = Checkpoint.objects.create(
        owner=owner, name=name, status=CheckpointStatus.VALIDATING, suites_requested=["synthetic"]
    )
    report = validate_checkpoint_dir(folder).to_dict()
    config = json.loads((folder / "config.json").read_text())
    return checkpoint_accept(checkpoint, report=report, config=config, files_prefix=f"checkpoints/{checkpoint.pk}/files")


def test_at_the_quota_the_upload_is_ready_and_its_evaluation_waits_until_a_slot_frees(
    alice, settings, tiny_folder, client_for, client
):
    settings.FRONTIER_QUOTA_CONCURRENT_RUNS = 1
    busy = Checkpoint.objects.create(owner=alice, name="busy", status=CheckpointStatus.READY, visual_tokens=4)
    running = run_start(checkpoint=busy, suite=BenchmarkSuite.objects.get(name="synthetic"), created_by=alice)

    checkpoint = _accept(alice, tiny_folder)

    checkpoint.refresh_from_db()
    assert checkpoint.status == CheckpointStatus.READY
    assert not EvaluationRun.objects.filter(checkpoint=checkpoint).exists()
    assert "evaluation on synthetic waits" in checkpoint.evaluations_deferred
    assert "limit is 1" in checkpoint.evaluations_deferred and "starts by itself" in checkpoint.evaluations_deferred
    shown = client_for(alice).get(f"/api/v1/checkpoints/{checkpoint.pk}/").json()
    assert shown["status"] == "ready" and shown["evaluations_deferred"] == checkpoint.evaluations_deferred
    client.force_login(alice)
    page = client.get(f"/checkpoints/{checkpoint.pk}/").content.decode()
    assert 'id="evaluations-deferred"' in page and "starts by itself" in page

    assert deferred_evaluations_start() == 0  # still at the limit: nothing changes
    run_cancel(running, by=alice)
    assert deferred_evaluations_start() == 1

    checkpoint.refresh_from_db()
    assert checkpoint.evaluations_deferred == ""
    started = EvaluationRun.objects.get(checkpoint=checkpoint)
    assert started.suite.name == "synthetic" and started.created_by == alice
    assert deferred_evaluations_start() == 0  # started once, not again
    assert EvaluationRun.objects.filter(checkpoint=checkpoint).count() == 1


def test_under_the_quota_the_evaluation_starts_at_once(alice, tiny_folder):
    checkpoint = _accept(alice, tiny_folder)

    assert checkpoint.evaluations_deferred == ""
    assert EvaluationRun.objects.filter(checkpoint=checkpoint, suite__name="synthetic").count() == 1

"""Registration by reference → validation on the cpu queue by a real worker → ready or rejected."""

import pytest
from django.contrib.auth import get_user_model
from frontier_processes import wait_for

from webapp.registry.models import Checkpoint, CheckpointStatus

pytestmark = pytest.mark.integration


@pytest.fixture
def worker(start_worker, process_env, local_media, shared_root):
    env = {**process_env, "MEDIA_ROOT": str(local_media), "FRONTIER_REFERENCE_ROOTS": str(shared_root),
           "HF_HUB_OFFLINE": "1"}
    return start_worker("cpu", queues="cpu", env=env)


@pytest.fixture
def client(client_for):
    return client_for(get_user_model().objects.create_user("alice"))


def register(client, reference) -> Checkpoint:
    response = client.post(
        "/api/v1/checkpoints/", {"name": "by reference", "reference": reference, "suites": []}, format="json"
    )
    assert response.status_code == 201, response.json()
    checkpoint_id = response.json()["id"]
    wait_for(
        lambda: Checkpoint.objects.get(pk=checkpoint_id).status in (CheckpointStatus.READY, CheckpointStatus.REJECTED),
        timeout=90, message="validation to decide",
    )
    return Checkpoint.objects.get(pk=checkpoint_id)


def test_a_folder_on_the_shared_storage_is_validated_counted_and_stored(worker, client, shared_root, local_media):
    from evaluation.modeling import FrontierVLM
    from evaluation.tiny import make_tiny_checkpoint

    folder = make_tiny_checkpoint(shared_root / "tiny", compressor="quecc", tokens=16, seed=0)

    checkpoint = register(client, {"path": str(folder)})

    assert checkpoint.status == CheckpointStatus.READY, checkpoint.rejection_reason
    model = FrontierVLM.from_pretrained(folder)
    assert checkpoint.llm.n_params == model.llm_param_count
    assert checkpoint.compressor.method == "quecc" and checkpoint.visual_tokens == 16
    assert checkpoint.compressor_params == model.compressor_param_count
    stored = local_media / "checkpoints" / str(checkpoint.pk) / "files"
    assert checkpoint.files_prefix == f"checkpoints/{checkpoint.pk}/files"
    assert sorted(p.name for p in stored.iterdir()) == sorted(p.name for p in folder.iterdir())
    assert (stored / "model.safetensors").read_bytes() == (folder / "model.safetensors").read_bytes()
    assert checkpoint.size_bytes == sum(p.stat().st_size for p in folder.iterdir())

    again = register(client, {"path": str(folder)})
    assert again.status == CheckpointStatus.REJECTED and again.duplicate_of_id == checkpoint.pk


def test_a_path_that_does_not_exist_is_rejected_naming_the_path(worker, client, shared_root):
    missing = shared_root / "not-there"

    checkpoint = register(client, {"path": str(missing)})

    assert checkpoint.status == CheckpointStatus.REJECTED
    assert f"{missing} does not exist" in checkpoint.rejection_reason


def test_a_hub_reference_on_a_worker_without_network_is_rejected_with_the_reason(worker, client):
    checkpoint = register(client, {"hub": "frontier-tests/tiny-vlm", "revision": "main"})

    assert checkpoint.status == CheckpointStatus.REJECTED
    assert checkpoint.rejection_reason.startswith(
        "could not fetch frontier-tests/tiny-vlm@main from the Hugging Face hub: this worker has no network access"
    )
    assert "register it by path, or upload it" in checkpoint.rejection_reason

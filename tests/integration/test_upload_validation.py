"""Upload → validation on the cpu queue by a real worker → ready (or rejected with a reason)."""

import io
import tarfile

import pytest
from django.contrib.auth import get_user_model
from frontier_processes import wait_for

from webapp.registry.models import Checkpoint, CheckpointStatus

pytestmark = pytest.mark.integration


@pytest.fixture
def media(local_media):
    return local_media


def tar_of(folder) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder, arcname="checkpoint")
    buffer.seek(0)
    buffer.name = "checkpoint.tar.gz"
    return buffer


def submit(client, folder, name):
    response = client.post("/api/v1/checkpoints/", {"file": tar_of(folder), "name": name, "suites": []}, format="multipart")
    assert response.status_code == 201, response.json()
    checkpoint_id = response.json()["id"]
    wait_for(
        lambda: Checkpoint.objects.get(pk=checkpoint_id).status in (CheckpointStatus.READY, CheckpointStatus.REJECTED),
        timeout=90, message="validation to decide",
    )
    return Checkpoint.objects.get(pk=checkpoint_id)


def test_a_tiny_checkpoint_is_validated_and_counted(start_worker, process_env, media, tmp_path, client_for):
    from evaluation.modeling import FrontierVLM
    from evaluation.tiny import make_tiny_checkpoint

    folder = make_tiny_checkpoint(tmp_path / "tiny", compressor="quecc", tokens=16, seed=0)
    start_worker("cpu", queues="cpu", env={**process_env, "MEDIA_ROOT": str(media)})

    checkpoint = submit(client_for(get_user_model().objects.create_user("alice")), folder, "tiny quecc")

    assert checkpoint.status == CheckpointStatus.READY, checkpoint.rejection_reason
    model = FrontierVLM.from_pretrained(folder)
    assert checkpoint.llm.n_params == model.llm_param_count
    assert checkpoint.compressor.method == "quecc" and checkpoint.visual_tokens == 16
    assert checkpoint.compressor_params == model.compressor_param_count
    stored = sorted(p.name for p in (media / "checkpoints" / str(checkpoint.pk) / "files").iterdir())
    assert "config.json" in stored and "model.safetensors" in stored
    assert not (media / "checkpoints" / str(checkpoint.pk) / "upload").exists() or not any(
        (media / "checkpoints" / str(checkpoint.pk) / "upload").iterdir()
    )


def test_a_pickle_checkpoint_is_rejected_with_a_reason_and_its_files_removed(start_worker, process_env, media, tmp_path, client_for):
    from evaluation.tiny import make_tiny_checkpoint

    folder = make_tiny_checkpoint(tmp_path / "tiny", compressor="avgpool", tokens=4, seed=0)
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04\x95" + b"\x00" * 64)
    start_worker("cpu", queues="cpu", env={**process_env, "MEDIA_ROOT": str(media)})

    checkpoint = submit(client_for(get_user_model().objects.create_user("alice")), folder, "pickled")

    assert checkpoint.status == CheckpointStatus.REJECTED
    assert "pytorch_model.bin" in checkpoint.rejection_reason and "pickle" in checkpoint.rejection_reason
    assert not (media / "checkpoints" / str(checkpoint.pk)).exists()

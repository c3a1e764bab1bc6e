"""Submitting a checkpoint: an uploaded archive, or a reference to a folder on shared storage or a hub repo."""

import hashlib
import os
import re
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q

from webapp.core.storage import storage_delete_tree
from webapp.jobs.services import job_submit
from webapp.registry.hub import HUB_REPO_ID, HUB_REVISION
from webapp.registry.models import (
    BenchmarkSuite,
    Checkpoint,
    CheckpointStatus,
    Visibility,
)
from webapp.registry.selectors import visible_to_owner
from webapp.registry.services.common import ARCHIVE_SUFFIXES, HASH_CHUNK, VALIDATE_TASK, RegistryError


def _check_submission(*, owner, name: str, visibility: str, suites: list[str] | None) -> list[str]:
    """Check-then-do: everything about a submission that can be refused before bytes are stored."""
    if not name or not name.strip():
        raise RegistryError("Give the checkpoint a name.")
    if len(name) > 200:
        raise RegistryError("The name is longer than 200 characters.")
    if visibility not in Visibility.values:
        raise RegistryError(f"visibility must be one of {', '.join(Visibility.values)}, not {visibility!r}.")
    suites = settings.FRONTIER_DEFAULT_SUITES if suites is None else suites
    known = set(BenchmarkSuite.objects.values_list("name", flat=True))
    unknown = [suite for suite in suites if suite not in known]
    if unknown:
        raise RegistryError(f"Unknown suite(s) {', '.join(unknown)}; known suites: {', '.join(sorted(known))}.")
    return list(suites)


def check_archive_name(filename: str) -> None:
    if not filename.lower().endswith(ARCHIVE_SUFFIXES):
        raise RegistryError(
            f"{filename!r} is not a checkpoint archive: upload a .tar, .tar.gz or .zip of the checkpoint folder "
            f"(config.json, model.safetensors, tokenizer files)."
        )


def safe_filename(filename: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", Path(filename).name)[:200] or "checkpoint.tar"


def visible_duplicate(owner, archive_sha256: str) -> Checkpoint | None:
    """An existing, not rejected checkpoint with the same archive the owner can see; else, when the owner's
    earlier copy of this archive was rejected as a duplicate, the checkpoint it duplicated (if the owner may
    still see it), so resubmitting the same bytes is not stored and validated again each time."""
    visible = Checkpoint.objects.filter(visible_to_owner(owner))
    # Another user's checkpoint counts only once validation has checked its bytes against the hash: a chunked
    # upload's hash is the client's declaration until then, and declaring someone else's would squat it.
    verified = Q(status=CheckpointStatus.READY) if owner is None else Q(owner=owner) | Q(status=CheckpointStatus.READY)
    existing = (
        visible.filter(verified, archive_sha256=archive_sha256)
        .exclude(status=CheckpointStatus.REJECTED).order_by("id").first()
    )
    if existing is not None or owner is None:
        return existing
    rejected = (
        Checkpoint.objects.filter(owner=owner, archive_sha256=archive_sha256, status=CheckpointStatus.REJECTED)
        .exclude(duplicate_of=None).order_by("-id").first()
    )
    if rejected is None:
        return None
    return visible.filter(pk=rejected.duplicate_of_id).exclude(status=CheckpointStatus.REJECTED).first()


def checkpoint_submit(
    *, owner, name: str, archive, filename: str, visibility: str = Visibility.PRIVATE,
    suites: list[str] | None = None, archive_sha256: str | None = None,
) -> tuple[Checkpoint, bool]:
    """Store an uploaded archive and queue its validation (cpu queue).

    `archive` is a readable binary file (streamed, never read whole). Returns (checkpoint,
    created); an identical archive the owner can already see is returned instead of a copy."""
    suites = _check_submission(owner=owner, name=name, visibility=visibility, suites=suites)
    check_archive_name(filename)
    if archive_sha256 is None:
        digest = hashlib.sha256()
        archive.seek(0)
        for chunk in iter(lambda: archive.read(HASH_CHUNK), b""):
            digest.update(chunk)
        archive_sha256 = digest.hexdigest()
    existing = visible_duplicate(owner, archive_sha256)
    if existing is not None:
        return existing, False
    archive.seek(0)
    with transaction.atomic():
        checkpoint = Checkpoint.objects.create(
            owner=owner, name=name.strip(), visibility=visibility, archive_sha256=archive_sha256,
            suites_requested=suites, status=CheckpointStatus.UPLOADED,
        )
        # A File with a temporary_file_path (a large multipart upload, an assembled chunked upload)
        # is moved into local storage rather than copied; S3 streams it like any file.
        content = archive if isinstance(archive, File) else File(archive, name=filename)
        try:
            stored = default_storage.save(f"checkpoints/{checkpoint.pk}/upload/{safe_filename(filename)}", content)
        except OSError:  # e.g. a full disk: no half-written file stays behind (the row is rolled back)
            storage_delete_tree(f"checkpoints/{checkpoint.pk}")
            raise
        checkpoint.files_prefix = stored
        checkpoint.size_bytes = default_storage.size(stored)
        checkpoint.save(update_fields=["files_prefix", "size_bytes"])
        job_submit(task_name=VALIDATE_TASK, params={"checkpoint_id": checkpoint.pk}, created_by=owner)
    return checkpoint, True


# --- Registration by reference ------------------------------------------------------------------

REFERENCE_FORMS = "{\"path\": \"/absolute/path\"} or {\"hub\": \"org/name\", \"revision\": \"main or a commit SHA\"}"


def reference_path_resolve(path) -> str:
    """The real path a path reference points to, refused unless it is absolute, has no `..` and lies
    inside FRONTIER_REFERENCE_ROOTS once symbolic links are resolved.

    The web host checks the form (it may not see the shared storage, where nothing resolves); the
    worker calls it again where the files are, so a link out of the roots is caught there too."""
    roots = [Path(os.path.realpath(root)) for root in settings.FRONTIER_REFERENCE_ROOTS]
    if not roots:
        raise RegistryError(
            "Registration by path is disabled on this server: an administrator enables it by setting "
            "FRONTIER_REFERENCE_ROOTS to the shared-storage folders checkpoints may be registered from. "
            "Upload the checkpoint instead, or register it from the Hugging Face hub."
        )
    if not isinstance(path, str) or not path or "\x00" in path:
        raise RegistryError("reference.path must be an absolute path on the workers' shared storage.")
    if not os.path.isabs(path):
        raise RegistryError(f"reference.path {path!r} is relative; give an absolute path under {roots[0]}.")
    if ".." in PurePosixPath(path).parts:
        raise RegistryError(f"reference.path {path!r} contains '..'; give the path without it.")
    real = Path(os.path.realpath(path))
    if not any(real.is_relative_to(root) for root in roots):
        link = "" if str(real) == os.path.normpath(path) else f" (a symbolic link leads it to {real})"
        allowed = ", ".join(str(root) for root in roots)
        raise RegistryError(
            f"reference.path {path} is outside the folders checkpoints may be registered from{link}: {allowed} "
            f"(FRONTIER_REFERENCE_ROOTS)."
        )
    return str(real)


def _check_hub_reference(repo_id, revision) -> dict:
    if not isinstance(repo_id, str) or not HUB_REPO_ID.fullmatch(repo_id) or "--" in repo_id or ".." in repo_id:
        raise RegistryError(
            f"reference.hub {repo_id!r} is not a Hugging Face repo id; give it as org/name, "
            f"e.g. llava-hf/llava-1.5-7b-hf."
        )
    if not revision:
        raise RegistryError(
            "reference.revision is required with reference.hub: a branch, tag or commit SHA "
            "(a commit SHA pins exactly what is evaluated)."
        )
    if not isinstance(revision, str) or not HUB_REVISION.fullmatch(revision) or ".." in revision:
        raise RegistryError(f"reference.revision {revision!r} is not a branch, tag or commit SHA.")
    return {"hub": repo_id, "revision": revision}


def reference_check(reference) -> dict:
    """The reference in its stored form, or RegistryError saying what is wrong with it."""
    if not isinstance(reference, dict) or ("path" in reference) == ("hub" in reference):
        raise RegistryError(f"reference must be one of {REFERENCE_FORMS}.")
    if "path" in reference:
        if set(reference) != {"path"}:
            raise RegistryError(f"A path reference takes only a path: {REFERENCE_FORMS}.")
        reference_path_resolve(reference["path"])
        return {"path": os.path.normpath(reference["path"])}
    return _check_hub_reference(reference["hub"], reference.get("revision"))


def checkpoint_register_reference(
    *, owner, name: str, reference: dict, visibility: str = Visibility.PRIVATE, suites: list[str] | None = None
) -> Checkpoint:
    """Register a checkpoint on the workers' shared storage ({"path"}) or on the Hugging Face hub
    ({"hub", "revision"}) and queue its validation (cpu queue): the worker fetches, checks and
    stores its files as it does an upload's. Whether the path exists is for the worker to say."""
    suites = _check_submission(owner=owner, name=name, visibility=visibility, suites=suites)
    reference = reference_check(reference)
    with transaction.atomic():
        checkpoint = Checkpoint.objects.create(
            owner=owner, name=name.strip(), visibility=visibility, reference=reference,
            suites_requested=suites, status=CheckpointStatus.UPLOADED,
        )
        job_submit(task_name=VALIDATE_TASK, params={"checkpoint_id": checkpoint.pk}, created_by=owner)
    return checkpoint

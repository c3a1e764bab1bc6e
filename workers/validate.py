"""Validation glue for the cpu queue: get the checkpoint's files (an uploaded archive, a path on the
shared storage or a Hugging Face hub snapshot), check them with evaluation.validation (headers only,
nothing unpickled), store them under checkpoints/<pk>/files, accept or reject."""

import hashlib
import os
import shutil
import socket
import stat
from pathlib import Path

import httpx2
from django.conf import settings
from django.core.files.storage import default_storage
from huggingface_hub import constants as hub_constants
from huggingface_hub import snapshot_download
from huggingface_hub.errors import (
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from evaluation.archives import ArchiveError
from evaluation.validation import (
    CheckpointInvalid,
    CheckpointReport,
    checkpoint_root,
    validate_checkpoint_archive,
    validate_checkpoint_dir,
)
from webapp.jobs.models import Job, JobState
from webapp.registry.models import Checkpoint
from webapp.registry.services import (
    RegistryError,
    checkpoint_validate,
    reference_path_resolve,
)
from workers.transient import retry_transient_failures

# What a checkpoint is made of (see evaluation.validation); nothing else of a hub repo is fetched.
HUB_ALLOW_PATTERNS = ["*.json", "*.safetensors", "tokenizer.model", "vocab.txt", "merges.txt"]
COPY_CHUNK_BYTES = 1 << 20
# What the hub client raises when it cannot reach the hub (offline mode included) and has no cached copy.
NO_NETWORK_ERRORS = (
    LocalEntryNotFoundError, OfflineModeIsEnabled, ConnectionError, TimeoutError, httpx2.TransportError,
)


class ReferenceUnavailable(Exception):
    """The referenced checkpoint cannot be read from here; the message says why and what to do."""


def _extraction_limits() -> dict:
    return {
        "max_total_bytes": settings.FRONTIER_UPLOAD_MAX_BYTES * 4,
        "max_files": settings.FRONTIER_ARCHIVE_MAX_FILES,
        "max_ratio": settings.FRONTIER_ARCHIVE_MAX_RATIO,
    }


def _uploaded_archive(checkpoint: Checkpoint, work: Path) -> tuple[Path, CheckpointReport]:
    """Copy the stored archive here, checking the SHA-256 it was submitted under on the way (a
    chunked upload declares it and the web process does not re-read gigabytes to check it)."""
    archive = work / Path(checkpoint.files_prefix).name
    digest = hashlib.sha256()
    with default_storage.open(checkpoint.files_prefix, "rb") as source, open(archive, "wb") as local:
        for block in iter(lambda: source.read(COPY_CHUNK_BYTES), b""):
            digest.update(block)
            local.write(block)
    if checkpoint.archive_sha256 and digest.hexdigest() != checkpoint.archive_sha256:
        raise RegistryError(
            f"SHA-256 mismatch: the uploaded archive hashes to {digest.hexdigest()}, not the declared "
            f"{checkpoint.archive_sha256}. The bytes changed on the way (or the file changed during a resumed "
            f"upload); upload it again."
        )
    extracted = work / "extracted"
    report = validate_checkpoint_archive(archive, extracted, **_extraction_limits())
    return checkpoint_root(extracted), report


def _copy_folder(source: Path, dest: Path) -> None:
    """Copy the regular files of a referenced folder; links and special files are refused, never followed."""
    limits = _extraction_limits()
    problems, files, total = [], 0, 0
    for folder, subfolders, names in os.walk(source):
        for name in sorted(subfolders + names):
            path = Path(folder, name)
            relative = path.relative_to(source)
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                problems.append(f"{relative} is a symbolic link; put the file itself in the folder")
            elif stat.S_ISDIR(mode):
                (dest / relative).mkdir()
            elif not stat.S_ISREG(mode):
                problems.append(f"{relative} is not a regular file (device, FIFO or socket)")
            else:
                files += 1
                total += path.lstat().st_size
                if files > limits["max_files"] or total > limits["max_total_bytes"]:
                    raise CheckpointInvalid(source, [
                        f"the folder holds more than {limits['max_files']} files or "
                        f"{limits['max_total_bytes']} bytes, the limits of a checkpoint"
                    ], [])
                source_fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
                with open(source_fd, "rb") as source_file, open(dest / relative, "xb") as copy:
                    shutil.copyfileobj(source_file, copy, COPY_CHUNK_BYTES)
    if problems:
        raise CheckpointInvalid(source, problems, [])


def _path_reference(path: str, work: Path) -> tuple[Path, CheckpointReport]:
    """A folder is copied, an archive extracted safely, into `work`; both are validated there."""
    real = Path(reference_path_resolve(path))
    if not os.path.lexists(real):
        raise ReferenceUnavailable(
            f"{path} does not exist on the shared storage as worker {socket.gethostname()} sees it; check the path "
            f"and that the storage is mounted on the workers."
        )
    extracted = work / "extracted"
    try:
        mode = real.stat().st_mode
        if stat.S_ISDIR(mode):
            extracted.mkdir()
            _copy_folder(real, extracted)
            root = checkpoint_root(extracted)
            return root, validate_checkpoint_dir(root)
        if stat.S_ISREG(mode):
            report = validate_checkpoint_archive(real, extracted, **_extraction_limits())
            return checkpoint_root(extracted), report
    except PermissionError as error:
        raise ReferenceUnavailable(
            f"{path}: the workers may not read {error.filename}; make it readable to them."
        ) from error
    raise ReferenceUnavailable(f"{path} is neither a checkpoint folder nor an archive file.")


def _hub_reference(repo_id: str, revision: str, work: Path) -> tuple[Path, CheckpointReport]:
    """Download the checkpoint files of a hub snapshot into `work` and validate them there."""
    where = f"could not fetch {repo_id}@{revision} from the Hugging Face hub"
    dest = work / "hub"
    try:
        snapshot_download(repo_id, revision=revision, local_dir=dest, allow_patterns=HUB_ALLOW_PATTERNS)
    except NO_NETWORK_ERRORS as error:
        cause = "HF_HUB_OFFLINE=1 is set" if hub_constants.is_offline_mode() else str(error).splitlines()[0]
        raise ReferenceUnavailable(
            f"{where}: this worker has no network access ({cause}). Download it on a machine with network and "
            f"register it by path, or upload it."
        ) from error
    except RevisionNotFoundError as error:
        raise ReferenceUnavailable(f"{where}: the repository has no revision {revision!r}.") from error
    except RepositoryNotFoundError as error:
        raise ReferenceUnavailable(
            f"{where}: no such repository, or it is private or gated and this worker has no access to it."
        ) from error
    except HfHubHTTPError as error:
        raise ReferenceUnavailable(f"{where}: {str(error).splitlines()[0]}") from error
    shutil.rmtree(dest / ".cache", ignore_errors=True)  # the hub client's bookkeeping, not checkpoint files
    return dest, validate_checkpoint_dir(dest)


def _checkpoint_files(checkpoint: Checkpoint, work: Path) -> tuple[Path, CheckpointReport]:
    """The validated checkpoint folder under `work`, wherever the checkpoint came from."""
    reference = checkpoint.reference
    if "path" in reference:
        return _path_reference(reference["path"], work)
    if "hub" in reference:
        return _hub_reference(reference["hub"], reference["revision"], work)
    return _uploaded_archive(checkpoint, work)


WORK_FOLDER_PREFIX = "validate-job-"


def work_folder(job_id: int) -> Path:
    """The job's own extraction folder under var/tmp: whatever a killed earlier attempt left there is
    removed before this attempt starts, and the reaper removes it once the job has ended."""
    return settings.VAR_DIR / "tmp" / f"{WORK_FOLDER_PREFIX}{job_id}"


def work_folders_remove() -> list[str]:
    """Remove the extraction folders of validation jobs that are no longer queued or running (a worker
    killed mid-extraction leaves one, gigabytes each); returns their names."""
    root = settings.VAR_DIR / "tmp"
    folders = {}
    for folder in root.glob(f"{WORK_FOLDER_PREFIX}*") if root.is_dir() else []:
        job_id = folder.name.removeprefix(WORK_FOLDER_PREFIX)
        if job_id.isdigit():
            folders[int(job_id)] = folder
    live = set(Job.objects.filter(pk__in=folders, state__in=[JobState.QUEUED, JobState.RUNNING])
               .values_list("pk", flat=True))
    removed = []
    for job_id, folder in sorted(folders.items()):
        if job_id not in live:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    return removed


@retry_transient_failures
def validate_checkpoint_job(ctx) -> dict:
    """The I/O of validation (extract or copy or download, then store); the registry's service decides."""
    checkpoint = Checkpoint.objects.get(pk=ctx.params["checkpoint_id"])
    work = work_folder(ctx.job.pk)
    shutil.rmtree(work, ignore_errors=True)  # a killed earlier attempt's half-extracted archive
    work.mkdir(parents=True)
    try:
        outcome = checkpoint_validate(
            checkpoint,
            fetch=lambda: _checkpoint_files(checkpoint, work),
            invalid=(ArchiveError, CheckpointInvalid, RegistryError, ReferenceUnavailable),
            check=ctx.check,
            guard=ctx.fenced,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if outcome["status"] == "rejected":
        ctx.log.info("Checkpoint %s rejected: %s", checkpoint.pk, outcome["reason"])
    return outcome

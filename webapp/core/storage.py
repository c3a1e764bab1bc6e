"""Walking, deleting and streaming folders in the default storage, local disk or S3 alike."""

import errno
import hashlib
import shutil
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

from django.core.files import File
from django.core.files.storage import default_storage

READ_BYTES = 1 << 20
TAR_BLOCK = tarfile.BLOCKSIZE  # 512


def storage_files(prefix: str):
    """Every file name under `prefix`."""
    directories, files = default_storage.listdir(prefix)
    for name in files:
        yield f"{prefix}/{name}"
    for directory in directories:
        yield from storage_files(f"{prefix}/{directory}")


def storage_delete_tree(prefix: str) -> None:
    """Delete every stored file under `prefix` (and, on local disk, the folders)."""
    try:
        shutil.rmtree(default_storage.path(prefix), ignore_errors=True)
        return
    except NotImplementedError:  # object storage: no local path
        pass
    for name in list(storage_files(prefix)):
        default_storage.delete(name)


def storage_read(name: str) -> Iterator[bytes]:
    """A stored file's bytes in blocks of 1 MiB, read as they are sent (never whole)."""
    with default_storage.open(name, "rb") as handle:
        while block := handle.read(READ_BYTES):
            yield block


def storage_tar(prefix: str, files: list[tuple[str, int]], top: str, mtime: float) -> tuple[int, Iterator[bytes]]:
    """A tar archive of stored files, streamed: its exact length (for Content-Length) and its bytes.

    `files` are (name relative to `prefix`, size) pairs, stored under `top/` in the archive (POSIX
    pax headers, so long and non-ASCII names survive). The archive is written as it is read, one
    file block at a time, so a checkpoint of any size costs the web process a megabyte."""
    headers = []
    for name, size in files:
        info = tarfile.TarInfo(f"{top}/{name}")
        info.size, info.mode, info.mtime = size, 0o644, int(mtime)
        headers.append(info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="strict"))
    length = sum(len(header) + size + (-size % TAR_BLOCK) for header, (_, size) in zip(headers, files, strict=True))
    length += 2 * TAR_BLOCK  # the end-of-archive marker

    def stream() -> Iterator[bytes]:
        for header, (name, size) in zip(headers, files, strict=True):
            yield header
            sent = 0
            for block in storage_read(f"{prefix}/{name}"):
                sent += len(block)
                if sent > size:
                    break
                yield block
            if sent != size:  # changed since it was listed: cut the archive short rather than corrupt it silently
                raise OSError(f"{prefix}/{name} is {sent} bytes, not the {size} listed; download it again.")
            if size % TAR_BLOCK:
                yield b"\0" * (TAR_BLOCK - size % TAR_BLOCK)
        yield b"\0" * (2 * TAR_BLOCK)

    return length, stream()


class StoredFilesMismatch(OSError):
    """What storage holds under a prefix is not what was written there (a copy cut short, a file renamed
    beside another's leftover): an I/O error (EIO), so the job that wrote them is retried."""

    def __init__(self, prefix: str, problems: list[str]):
        super().__init__(errno.EIO, f"the files stored under {prefix} are not those validated: {'; '.join(problems)}")


def storage_digests(prefix: str) -> dict[str, str]:
    """SHA-256 of every stored file under `prefix`, by its name relative to the prefix."""
    digests = {}
    for name in storage_files(prefix):
        digest = hashlib.sha256()
        for block in storage_read(name):
            digest.update(block)
        digests[name[len(prefix) + 1:]] = digest.hexdigest()
    return digests


def checkpoint_files_store(root: Path, prefix: str, file_sha256: dict[str, str], check: Callable[[], None]) -> None:
    """Store the validated files of `root` under `prefix`, so that what is stored is exactly what was
    validated (`file_sha256`: relative path -> SHA-256, the validation report's), or raise.

    Whatever an earlier, killed attempt left under the prefix is deleted first (storage would otherwise
    save beside a half-written file under another name); each file must land under its own name; then
    every stored file is read back and its hash compared with the report's. `check()` runs between files
    (a cancelled or taken-over job stops there)."""
    storage_delete_tree(prefix)
    for relative in sorted(file_sha256):
        with open(root / relative, "rb") as handle:
            name = default_storage.save(f"{prefix}/{relative}", File(handle))
        if name != f"{prefix}/{relative}":
            raise StoredFilesMismatch(prefix, [f"{relative} was stored as {name}"])
        check()
    stored = storage_digests(prefix)
    problems = [f"{relative} is missing" for relative in sorted(set(file_sha256) - set(stored))]
    problems += [f"{relative} was not validated" for relative in sorted(set(stored) - set(file_sha256))]
    problems += [f"{relative} differs from the validated file" for relative in sorted(set(stored) & set(file_sha256))
                 if stored[relative] != file_sha256[relative]]
    if problems:
        raise StoredFilesMismatch(prefix, problems)

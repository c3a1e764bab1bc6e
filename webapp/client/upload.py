"""Packing a checkpoint folder and sending it through the resumable chunked upload protocol.

POST /api/v1/uploads/ {filename, size, sha256} → PUT /api/v1/uploads/<id>/ chunks with
``Content-Range: bytes START-END/TOTAL`` → POST /api/v1/uploads/<id>/complete/. After a dropped
connection, a timeout or a 5xx, the client asks the server for the upload's ``offset`` and goes
on from there.
"""

from __future__ import annotations

import gzip
import hashlib
import sys
import tarfile
import time
from pathlib import Path

import requests
from tqdm import tqdm

from webapp.client.api import Api, ApiError, backoff_delay, is_transient

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".zip")
DEFAULT_CHUNK_BYTES = 64 * 1024**2  # fewer requests: each costs a DB commit and an fsync
READ_BLOCK = 1024**2
CHUNK_TIMEOUT = (10, 300)  # a chunk of tens of MiB on a slow link takes a while
COMPLETE_TIMEOUT = (10, 1800)  # the server hashes and stores the whole archive before it answers
MAX_CONSECUTIVE_FAILURES = 5


class UploadFailed(Exception):
    """The upload could not be finished; the message says why (resuming later starts a new upload)."""


def pack_folder(folder: Path, dest_dir: Path) -> Path:
    """A .tar.gz of `folder` under one top-level folder, written to `dest_dir` file by file.

    The same folder packs to the same bytes (gzip header time 0), so submitting it again is
    recognised by the server as a duplicate. Symlinks are followed: a Hugging Face snapshot folder
    is links into its blob cache, and the server refuses links in archives. Compression level 1:
    weights barely compress, and time matters more."""
    top = folder.resolve().name or "checkpoint"
    archive = Path(dest_dir) / f"{top}.tar.gz"
    with gzip.GzipFile(archive, "wb", compresslevel=1, mtime=0) as gz, tarfile.open(
        fileobj=gz, mode="w", dereference=True
    ) as tar:
        tar.add(folder, arcname=top)
    return archive


def file_sha256(path: Path, *, progress: bool = False) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle, tqdm(
        total=path.stat().st_size, unit="B", unit_scale=True, unit_divisor=1024, desc="sha256", disable=not progress
    ) as bar:
        for block in iter(lambda: handle.read(READ_BLOCK), b""):
            digest.update(block)
            bar.update(len(block))
    return digest.hexdigest()


class ChunkBody:
    """`length` bytes of an open file from its current position, as a request body.

    It has a length (so requests sends Content-Length, not chunked encoding) and yields the bytes
    block by block through one reused buffer (urllib3 sends each block before asking for the
    next), so memory stays small whatever the chunk size and no block is allocated afresh;
    every block moves the progress bar."""

    def __init__(self, handle, length: int, bar: tqdm):
        self.handle = handle
        self.length = length
        self.bar = bar

    def __len__(self) -> int:
        return self.length

    def __iter__(self):
        buffer = memoryview(bytearray(min(READ_BLOCK, self.length) or 1))
        remaining = self.length
        while remaining > 0:
            count = self.handle.readinto(buffer[:min(len(buffer), remaining)])
            if not count:
                raise OSError(f"{self.handle.name} ended {remaining} bytes early: did it change during the upload?")
            remaining -= count
            self.bar.update(count)
            yield buffer[:count]


def upload_archive(
    api: Api, archive: Path, *, sha256: str, name: str, visibility: str = "private", suites: list[str] | None = None,
    chunk_size: int = DEFAULT_CHUNK_BYTES, progress: bool = True, max_failures: int = MAX_CONSECUTIVE_FAILURES,
) -> tuple[dict, bool]:
    """Send `archive` in chunks, resuming from the server's offset after transient failures, then
    complete it. Returns (checkpoint, created): created is False when the server already had
    the same archive and answered with the existing checkpoint."""
    if chunk_size <= 0:
        raise ValueError("chunk_size must be a positive number of bytes.")
    size = archive.stat().st_size
    upload, _ = _retrying(api, lambda: api.post(
        "/api/v1/uploads/", {"filename": archive.name, "size": size, "sha256": sha256}
    ), max_failures)
    detail_path = f"/api/v1/uploads/{upload['id']}/"
    offset = upload["offset"]
    failures = 0
    with open(archive, "rb") as handle, tqdm(
        total=size, unit="B", unit_scale=True, unit_divisor=1024, desc="upload", disable=not progress
    ) as bar:
        while offset < size:
            length = min(chunk_size, size - offset)
            handle.seek(offset)
            bar.n = offset
            bar.refresh()
            try:
                response = api.request(
                    "PUT", detail_path, data=ChunkBody(handle, length, bar), timeout=CHUNK_TIMEOUT,
                    headers={"Content-Type": "application/octet-stream",
                             "Content-Range": f"bytes {offset}-{offset + length - 1}/{size}"},
                )
                offset = response.json()["offset"]
                failures = 0
            except (ApiError, requests.RequestException) as error:
                failures += 1
                if not is_transient(error):
                    raise  # the server refused the chunk: its message says why
                if failures > max_failures:
                    raise _gave_up(error, failures) from error
                bar.write(f"chunk at byte {offset} failed ({_describe(error)}); asking the server where to resume",
                          file=sys.stderr)
                time.sleep(backoff_delay(failures, api.retry_delay))
                offset = api.get(detail_path)["offset"]
        bar.n = size
        bar.refresh()
    payload = {"name": name, "visibility": visibility}
    if suites is not None:
        payload["suites"] = suites
    checkpoint, status_code = _retrying(
        api, lambda: api.post(f"{detail_path}complete/", payload, timeout=COMPLETE_TIMEOUT), max_failures
    )
    return checkpoint, status_code == 201


def _retrying(api: Api, call, max_failures: int):
    """`call()` again after transient failures. Both POSTs are safe to repeat: a completed upload
    completes again to the same checkpoint, and a start whose answer was lost leaves an unused
    upload that the server expires."""
    failures = 0
    while True:
        try:
            return call()
        except (ApiError, requests.RequestException) as error:
            failures += 1
            if not is_transient(error):
                raise
            if failures > max_failures:
                raise _gave_up(error, failures) from error
            time.sleep(backoff_delay(failures, api.retry_delay))


def _describe(error: Exception) -> str:
    if isinstance(error, ApiError):
        return f"the server answered {error.status_code}: {error}"
    return f"{error.__class__.__name__}: {error}"


def _gave_up(error: Exception, failures: int) -> UploadFailed:
    return UploadFailed(f"Upload failed after {failures} tries in a row; the last: {_describe(error)}")

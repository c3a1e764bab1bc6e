"""Safe extraction of uploaded checkpoint archives: .tar, .tar.gz / .tgz and .zip.

Uploads are untrusted. Every member is checked before it is written: no absolute paths, no ``..``,
no links, no device files or FIFOs, at most ``max_files`` members. Sizes are enforced on the bytes
actually written (headers can lie), against both ``max_total_bytes`` and ``max_ratio`` times the
archive's size on disk (zip bombs). On any refusal an ``ArchiveError`` names the member, the rule
and the limit, and everything extracted so far is removed.

No torch, no transformers: this runs on CPU workers.
"""

import gzip
import re
import shutil
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import BinaryIO

CHUNK_BYTES = 1 << 20
SUPPORTED_FORMATS = ".tar, .tar.gz / .tgz or .zip"
UNSUPPORTED_MAGIC = {
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"7z\xbc\xaf\x27\x1c": "7-Zip",
    b"Rar!\x1a\x07": "RAR",
}
WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")
# Errors the archive readers raise on damaged or unsupported input.
ARCHIVE_FORMAT_ERRORS = (
    tarfile.TarError,
    zipfile.BadZipFile,
    gzip.BadGzipFile,
    zlib.error,
    EOFError,
    NotImplementedError,
)


class ArchiveError(ValueError):
    """The archive is refused: unsupported, damaged, or breaks one of the extraction rules."""


def detect_archive_kind(path: str | Path) -> str:
    """``"tar"``, ``"tar.gz"`` or ``"zip"``, from the file's magic bytes (the extension is not trusted)."""
    path = Path(path)
    with path.open("rb") as file:
        head = file.read(512)
    if head.startswith(b"\x1f\x8b"):
        return "tar.gz"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if head[257:262] == b"ustar":
        return "tar"
    for magic, name in UNSUPPORTED_MAGIC.items():
        if head.startswith(magic):
            raise ArchiveError(f"{path.name}: {name} archives are not supported; upload {SUPPORTED_FORMATS}")
    raise ArchiveError(
        f"{path.name}: unknown archive format (first bytes: {head[:8].hex(' ') or 'none'}); upload {SUPPORTED_FORMATS}"
    )


def extract_archive(
    archive_path: str | Path, dest_dir: str | Path, *, max_total_bytes: int, max_files: int, max_ratio: float
) -> list[Path]:
    """Extract into ``dest_dir`` (missing or empty) and return the extracted regular files in archive order.

    ``max_files`` bounds the members (files and folders), ``max_total_bytes`` the uncompressed bytes,
    ``max_ratio`` the uncompressed bytes per byte of archive. Raises ``ArchiveError`` and leaves
    ``dest_dir`` as it was (removed if this call created it) when a rule is broken.
    """
    archive_path, dest_dir = Path(archive_path), Path(dest_dir)
    kind = detect_archive_kind(archive_path)
    if dest_dir.exists() and any(dest_dir.iterdir()):
        raise FileExistsError(f"{dest_dir} is not empty; extract into an empty or new folder")
    created_dest = not dest_dir.exists()
    dest_dir.mkdir(parents=True, exist_ok=True)
    writer = LimitedExtraction(archive_path, dest_dir, max_total_bytes, max_files, max_ratio)
    try:
        if kind == "zip":
            extract_zip(archive_path, writer)
        else:
            extract_tar(archive_path, kind, writer)
    except ARCHIVE_FORMAT_ERRORS as error:
        remove_extracted(dest_dir, created_dest)
        raise ArchiveError(f"{archive_path.name}: damaged or unsupported {kind} archive: {error}") from error
    except BaseException:
        remove_extracted(dest_dir, created_dest)
        raise
    return writer.files


def remove_extracted(dest_dir: Path, remove_dest: bool) -> None:
    if remove_dest:
        shutil.rmtree(dest_dir)
        return
    for child in dest_dir.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


class LimitedExtraction:
    """Writes members under ``dest_dir`` while counting members and bytes against the limits."""

    def __init__(self, archive_path: Path, dest_dir: Path, max_total_bytes: int, max_files: int, max_ratio: float):
        self.archive_name = archive_path.name
        self.archive_bytes = archive_path.stat().st_size
        self.dest_dir = dest_dir
        self.max_total_bytes = max_total_bytes
        self.max_files = max_files
        self.max_ratio = max_ratio
        self.members_seen = 0
        self.bytes_written = 0
        self.seen_paths: set[PurePosixPath] = set()
        self.files: list[Path] = []

    def refuse(self, member: str, reason: str) -> ArchiveError:
        return ArchiveError(f"{self.archive_name}: member {member!r}: {reason}")

    def safe_relative_path(self, member: str) -> PurePosixPath | None:
        """The member's path relative to ``dest_dir``, or None for the archive root entry (``./``)."""
        if "\x00" in member or "\\" in member:
            raise self.refuse(member, "backslashes and NUL characters are not allowed in member names")
        if member.startswith("/") or WINDOWS_DRIVE.match(member):
            raise self.refuse(member, "absolute paths are not allowed")
        parts = [part for part in PurePosixPath(member).parts if part != "."]
        if ".." in parts:
            raise self.refuse(member, "'..' path components are not allowed")
        return PurePosixPath(*parts) if parts else None

    def admit(self, member: str) -> Path | None:
        """Check a member's name and the member count; return where it goes (None: the root entry)."""
        self.members_seen += 1
        if self.members_seen > self.max_files:
            raise self.refuse(member, f"more than max_files={self.max_files} members in the archive")
        relative = self.safe_relative_path(member)
        if relative is None:
            return None
        if relative in self.seen_paths:
            raise self.refuse(member, "the same path appears twice in the archive")
        self.seen_paths.add(relative)
        return self.dest_dir.joinpath(relative)

    def reserve(self, member: str, size: int) -> None:
        """Refuse when ``size`` more bytes would break the total-size or ratio limit."""
        total = self.bytes_written + size
        if total > self.max_total_bytes:
            raise self.refuse(
                member, f"total uncompressed size exceeds max_total_bytes={self.max_total_bytes} (reached {total})"
            )
        if total > self.max_ratio * self.archive_bytes:
            raise self.refuse(
                member,
                f"compression ratio exceeds max_ratio={self.max_ratio} ({total} uncompressed bytes from a "
                f"{self.archive_bytes}-byte archive; a zip bomb?)",
            )

    def make_folder(self, member: str) -> None:
        target = self.admit(member)
        if target is not None:
            try:
                target.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                raise self.refuse(member, "conflicts with a file of the same path") from None

    def write_file(self, member: str, declared_size: int, source: BinaryIO) -> None:
        """Stream one regular file out, counting the bytes actually written, not the declared size."""
        target = self.admit(member)
        if target is None:
            raise self.refuse(member, "a file cannot take the archive root's place")
        self.reserve(member, declared_size)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            out = target.open("xb")
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            raise self.refuse(member, "conflicts with another member of the same path") from None
        self.files.append(target)
        with out:
            while chunk := source.read(CHUNK_BYTES):
                self.reserve(member, len(chunk))
                self.bytes_written += len(chunk)
                out.write(chunk)


def extract_tar(archive_path: Path, kind: str, writer: LimitedExtraction) -> None:
    """Stream mode: one pass, each member checked when reached, nothing decompressed twice."""
    with tarfile.open(archive_path, mode="r|gz" if kind == "tar.gz" else "r|") as archive:
        for member in archive:
            if member.issym() or member.islnk():
                raise writer.refuse(member.name, f"{'symbolic' if member.issym() else 'hard'} links are not allowed")
            if member.ischr() or member.isblk() or member.isfifo():
                raise writer.refuse(member.name, "device files and FIFOs are not allowed")
            if member.isdir():
                writer.make_folder(member.name)
            elif member.isfile():
                writer.write_file(member.name, member.size, archive.extractfile(member))
            else:
                raise writer.refuse(member.name, f"unsupported tar member type {member.type!r}")


def zip_member_kind(info: zipfile.ZipInfo) -> str:
    """``"dir"``, ``"file"``, or why the member is refused (from the Unix mode bits, when present)."""
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "symbolic links are not allowed"
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        return "device files and FIFOs are not allowed"
    if info.flag_bits & 0x1:
        return "encrypted members are not supported"
    return "dir" if info.is_dir() else "file"


def extract_zip(archive_path: Path, writer: LimitedExtraction) -> None:
    """The central directory is read first, so every rule is checked on the listing before any byte
    is written; the byte limits are then enforced again while writing."""
    with zipfile.ZipFile(archive_path) as archive:
        members = archive.infolist()
        if len(members) > writer.max_files:
            raise writer.refuse(
                members[writer.max_files].filename, f"more than max_files={writer.max_files} members in the archive"
            )
        declared_total = 0
        for info in members:
            writer.safe_relative_path(info.filename)
            kind = zip_member_kind(info)
            if kind not in ("dir", "file"):
                raise writer.refuse(info.filename, kind)
            declared_total += info.file_size
            writer.reserve(info.filename, declared_total)
        for info in members:
            if info.is_dir():
                writer.make_folder(info.filename)
            else:
                with archive.open(info) as source:
                    writer.write_file(info.filename, info.file_size, source)

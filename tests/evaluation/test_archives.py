"""Safe extraction of uploaded archives: every refusal names the member, the rule and the limit,
and leaves nothing behind."""

import bz2
import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from evaluation.archives import ArchiveError, detect_archive_kind, extract_archive

LIMITS = {"max_total_bytes": 10_000_000, "max_files": 100, "max_ratio": 100}


def make_tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]], compressed: bool = False) -> Path:
    """A tar (gzip-compressed when asked) of (name, content) files and ready-made TarInfo entries."""
    with tarfile.open(path, "w:gz" if compressed else "w") as archive:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                archive.addfile(member)
            else:
                name, content = member
                info = tarfile.TarInfo(name)
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
    return path


def make_zip(path: Path, members: list[zipfile.ZipInfo | tuple[str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member in members:
            if isinstance(member, zipfile.ZipInfo):
                archive.writestr(member, b"target")
            else:
                archive.writestr(*member)
    return path


def tar_entry(name: str, kind: bytes, link_target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link_target
    return info


def zip_entry_with_mode(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix: the high 16 bits of external_attr are st_mode
    info.external_attr = mode << 16
    return info


def refused(archive: Path, dest: Path, **limits) -> str:
    with pytest.raises(ArchiveError) as caught:
        extract_archive(archive, dest, **{**LIMITS, **limits})
    assert not dest.exists(), f"left behind: {list(dest.rglob('*'))}"
    return str(caught.value)


def test_kind_comes_from_magic_bytes_not_the_extension(tmp_path):
    assert detect_archive_kind(make_tar(tmp_path / "a.zip", [("x", b"1")], compressed=True)) == "tar.gz"
    assert detect_archive_kind(make_zip(tmp_path / "b.tar", [("x", b"1")])) == "zip"
    assert detect_archive_kind(make_tar(tmp_path / "c.tgz", [("x", b"1")])) == "tar"


def test_unknown_and_unsupported_formats_are_named(tmp_path):
    (tmp_path / "weights.tar.gz").write_bytes(b"\x01\x02\x03 not an archive")
    (tmp_path / "upload.tar.bz2").write_bytes(bz2.compress(b"data"))
    with pytest.raises(ArchiveError, match=r"weights.tar.gz: unknown archive format \(first bytes: 01 02 03 20"):
        detect_archive_kind(tmp_path / "weights.tar.gz")
    with pytest.raises(ArchiveError, match=r"bzip2 archives are not supported; upload .tar, .tar.gz / .tgz or .zip"):
        extract_archive(tmp_path / "upload.tar.bz2", tmp_path / "out", **LIMITS)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["tar", "tar.gz", "zip"])
def test_extracts_files_and_folders(tmp_path, kind):
    members = [("ckpt/config.json", b"{}"), ("ckpt/sub/weights.safetensors", os.urandom(3000)), ("./top.txt", b"t")]
    archive = tmp_path / f"upload.{kind}"
    if kind == "zip":
        make_zip(archive, [*members, ("ckpt/empty/", b"")])
    else:
        make_tar(archive, [tar_entry("ckpt/empty", tarfile.DIRTYPE), *members], compressed=kind == "tar.gz")
    dest = tmp_path / "out"
    files = extract_archive(archive, dest, **LIMITS)
    assert files == [dest / "ckpt/config.json", dest / "ckpt/sub/weights.safetensors", dest / "top.txt"]
    for (name, content), path in zip(members, files, strict=True):
        assert path.read_bytes() == content, name
    assert (dest / "ckpt/empty").is_dir()


@pytest.mark.parametrize(
    ("member", "rule"),
    [
        ("../evil.txt", "'..' path components are not allowed"),
        ("ckpt/../../evil.txt", "'..' path components are not allowed"),
        ("/etc/cron.d/evil", "absolute paths are not allowed"),
        ("C:/Windows/evil.dll", "absolute paths are not allowed"),
        ("..\\evil.txt", "backslashes and NUL characters are not allowed"),
    ],
)
@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_paths_escaping_the_destination_are_refused(tmp_path, kind, member, rule):
    members = [("ckpt/config.json", b"{}"), (member, b"payload")]  # a good member first: it must be removed too
    archive = make_zip(tmp_path / "a.zip", members) if kind == "zip" else make_tar(tmp_path / "a.tgz", members, True)
    message = refused(archive, tmp_path / "out")
    assert f"member {member!r}: {rule}" in message
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize(
    ("entry", "rule"),
    [
        (tar_entry("ckpt/link", tarfile.SYMTYPE, "/etc/passwd"), "symbolic links are not allowed"),
        (tar_entry("ckpt/hard", tarfile.LNKTYPE, "ckpt/config.json"), "hard links are not allowed"),
        (tar_entry("ckpt/tty", tarfile.CHRTYPE), "device files and FIFOs are not allowed"),
        (tar_entry("ckpt/pipe", tarfile.FIFOTYPE), "device files and FIFOs are not allowed"),
    ],
)
def test_tar_links_and_special_files_are_refused(tmp_path, entry, rule):
    archive = make_tar(tmp_path / "a.tar", [("ckpt/config.json", b"{}"), entry])
    assert f"member {entry.name!r}: {rule}" in refused(archive, tmp_path / "out")


@pytest.mark.parametrize(
    ("mode", "rule"),
    [(stat.S_IFLNK | 0o777, "symbolic links are not allowed"), (stat.S_IFIFO | 0o644, "device files and FIFOs")],
)
def test_zip_links_and_special_files_are_refused(tmp_path, mode, rule):
    archive = make_zip(tmp_path / "a.zip", [("ckpt/config.json", b"{}"), zip_entry_with_mode("ckpt/link", mode)])
    assert f"member 'ckpt/link': {rule}" in refused(archive, tmp_path / "out")


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_too_many_members_are_refused(tmp_path, kind):
    members = [(f"f{index}.txt", b"x") for index in range(5)]
    archive = make_zip(tmp_path / "a.zip", members) if kind == "zip" else make_tar(tmp_path / "a.tar", members)
    assert "member 'f3.txt': more than max_files=3 members in the archive" in refused(
        archive, tmp_path / "out", max_files=3
    )


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_zip_bomb_is_refused_by_compression_ratio(tmp_path, kind):
    members = [("ckpt/config.json", b"{}"), ("ckpt/zeros.bin", bytes(4_000_000))]
    archive = make_zip(tmp_path / "a.zip", members) if kind == "zip" else make_tar(tmp_path / "a.tgz", members, True)
    message = refused(archive, tmp_path / "out", max_ratio=50)
    size = archive.stat().st_size
    assert message.startswith(f"{archive.name}: member 'ckpt/zeros.bin': compression ratio exceeds max_ratio=50")
    assert f"uncompressed bytes from a {size}-byte archive; a zip bomb?" in message


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_total_size_over_the_limit_is_refused(tmp_path, kind):
    members = [(f"part{index}", os.urandom(400_000)) for index in range(3)]
    archive = make_zip(tmp_path / "a.zip", members) if kind == "zip" else make_tar(tmp_path / "a.tar", members)
    message = refused(archive, tmp_path / "out", max_total_bytes=1_000_000)
    assert "member 'part2': total uncompressed size exceeds max_total_bytes=1000000 (reached 1200000)" in message


def test_a_gzip_stream_that_inflates_past_the_limit_is_stopped_while_writing(tmp_path):
    """One member bigger than the whole budget: refused before its bytes are written out."""
    archive = make_tar(tmp_path / "a.tgz", [("big", bytes(3_000_000))], compressed=True)
    assert "member 'big': total uncompressed size exceeds max_total_bytes=1000000" in refused(
        archive, tmp_path / "out", max_total_bytes=1_000_000, max_ratio=10_000
    )


def test_duplicate_members_are_refused(tmp_path):
    archive = make_tar(tmp_path / "a.tar", [("config.json", b"{}"), ("./config.json", b'{"swapped": 1}')])
    assert "member './config.json': the same path appears twice" in refused(archive, tmp_path / "out")


def test_encrypted_zip_members_are_refused(tmp_path):
    archive = make_zip(tmp_path / "a.zip", [("secret.txt", b"x")])
    # zipfile cannot write encrypted members: set the "encrypted" flag bit in the local and central headers.
    data = bytearray(archive.read_bytes())
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        data[data.index(signature) + flag_offset] |= 0x1
    archive.write_bytes(bytes(data))
    assert "member 'secret.txt': encrypted members are not supported" in refused(archive, tmp_path / "out")


def test_damaged_archive_is_refused_and_cleaned_up(tmp_path):
    archive = make_tar(tmp_path / "a.tgz", [("a", os.urandom(200_000)), ("b", os.urandom(200_000))], compressed=True)
    archive.write_bytes(archive.read_bytes()[:250_000])
    assert "a.tgz: damaged or unsupported tar.gz archive" in refused(archive, tmp_path / "out")


def test_an_existing_empty_destination_is_kept_empty(tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    archive = make_tar(tmp_path / "a.tar", [("ok", b"fine"), ("../evil", b"x")])
    with pytest.raises(ArchiveError, match="'..' path components"):
        extract_archive(archive, dest, **LIMITS)
    assert dest.is_dir() and not any(dest.iterdir())


def test_a_non_empty_destination_is_not_touched(tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="is not empty"):
        extract_archive(make_tar(tmp_path / "a.tar", [("x", b"1")]), dest, **LIMITS)
    assert [path.name for path in dest.iterdir()] == ["keep.txt"]
